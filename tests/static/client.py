"""A server with the test site mounted at "/", and an httpx client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import serving


@asynccontextmanager
async def site_client(
    root: Path, *, headers: dict[str, str] | None = None, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Serve `root` at "/" with `options`; yield a client sending `headers` by default."""
    async with serving(mount=("/", str(root)), **options) as srv, \
            httpx.AsyncClient(base_url=srv.url, headers=headers) as client:
        yield client
