"""An `async def` route reads request bodies that come without Content-Length (HTTP/2 streams)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from skitai.saddle import Saddle
from tests.saddle.conftest import client_for


def make_app() -> Saddle:
    app = Saddle(__name__)

    @app.route("/size", methods=["POST"])
    async def size(was):
        return str(len(was.request.get_body() or b""))

    return app


async def test_streamed_body_without_content_length_over_http2() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    async with client_for(("/", make_app()), http2=True) as client:
        response = await client.post("/size", content=pieces(),
                                     headers={"content-type": "application/octet-stream"})
    assert (response.http_version, response.text) == ("HTTP/2", "4000")
