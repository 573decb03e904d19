"""h2load with 256 streams in flight for 8 s; the server survives the abrupt end."""

from __future__ import annotations

import os
import re
import shutil

import anyio
import httpx
import pytest

from tests.support import apps
from tests.support.servers import serving

H2LOAD = shutil.which("h2load")


@pytest.mark.skipif(H2LOAD is None and not os.environ.get("CI"),
                    reason="h2load (Debian nghttp2-client) is not installed")
async def test_server_survives_h2load() -> None:
    assert H2LOAD is not None
    async with serving(mount=("/", apps.hello), access_log=False) as srv:
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [H2LOAD, "-c16", "-m16", "-D", "8", f"{srv.url}/"], check=False
            )
        out = result.stdout.decode()
        done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
        assert done is not None, out
        succeeded, failed, errored = map(int, done.groups())
        assert succeeded > 0 and failed == 0 and errored == 0, out
        # The run ended with streams in flight; the server goes on serving.
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            response = await client.get(f"{srv.url}/")
        assert response.status_code == 200 and response.http_version == "HTTP/2"
