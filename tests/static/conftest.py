from __future__ import annotations

from pathlib import Path

import pytest

from tests.static.site import build_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    build_site(root)
    return root
