"""Saddle tests: apps served by a real server, driven by independent clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.servers import serving


@asynccontextmanager
async def client_for(mount: Any, *, http2: bool = False, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on a server (`tests.support.servers.serving`) with these mounts."""
    async with serving(mount=mount, **options) as served, \
            httpx.AsyncClient(base_url=served.url, http1=not http2, http2=http2) as client:
        yield client
