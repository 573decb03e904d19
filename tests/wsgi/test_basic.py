from __future__ import annotations

import httpx

from tests.support import apps
from tests.support.servers import serving


async def test_hello() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello World"
    assert response.headers["server"] == "Skitai"
    assert "date" in response.headers
