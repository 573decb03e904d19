"""The transports every WebSocket design is tested over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.wsclient import TLS, connect

TRANSPORTS = ["h1-h11", "h1-httptools", "tls", "h2"]


@dataclass
class Transport:
    """How a test reaches the server: HTTP/1.1 on either parser, HTTP/1.1 over TLS, or HTTP/2."""

    name: str
    tls: TLS | None

    @property
    def options(self) -> dict[str, Any]:
        """What `serving()` needs for this transport."""
        options: dict[str, Any] = {"http_parser": "h11" if self.name == "h1-h11" else "httptools"}
        if self.tls is not None:
            options["certfile"] = self.tls.certfile
        return options

    @asynccontextmanager
    async def connect(self, port: int, path: str, **options: Any) -> AsyncIterator[Any]:
        kind = self.name.split("-")[0]
        async with connect(port, path, kind, tls=self.tls, **options) as client:
            yield client


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Transport:
    return Transport(request.param, TLS(tmp_path) if request.param == "tls" else None)
