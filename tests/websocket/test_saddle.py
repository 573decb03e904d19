"""Saddle routes that hand their handshake to an async `skitai.websocket` handler."""

from __future__ import annotations

import functools

import pytest

import skitai
from skitai.saddle import Saddle
from tests.support.servers import serving
from tests.support.wsclient import Closed, Refused
from tests.websocket.conftest import Transport


async def shout(ws: skitai.WebSocket, *, name: str, route: str) -> None:
    await ws.send(f"{route} route, hello {name}")
    async for message in ws:
        if message == "bye":
            await ws.close(4000, "bye")
            return
        await ws.send(message.upper() if isinstance(message, str) else message)


def make_app() -> Saddle:
    app = Saddle(__name__)
    app.debug = True
    greetings = skitai.websocket(functools.partial(shout, name="nobody", route="plain"))

    @app.route("/shout")
    def sync_route(was, name="you"):  # type: ignore[no-untyped-def]
        if "websocket_init" in was.env:
            was.env["websocket_init"] = skitai.websocket(functools.partial(shout, name=name, route="sync"))
            return ""
        return "this URL speaks WebSocket"

    @app.route("/shout/<name>")
    async def async_route(was, name):  # type: ignore[no-untyped-def]
        if "websocket_init" in was.env:
            was.env["websocket_init"] = skitai.websocket(functools.partial(shout, name=name, route="async"))
            return ""
        return "this URL speaks WebSocket"

    @app.route("/plain")
    def plain(was):  # type: ignore[no-untyped-def]
        if "websocket_init" in was.env:
            was.env["websocket_init"] = greetings
            return ""
        return "plain"

    return app


async def test_sync_and_async_routes_hand_over_with_their_arguments(transport: Transport) -> None:
    async with serving(mount=("/app", make_app()), **transport.options) as srv:
        for path, greeting in [("/app/shout?name=Hans", "sync route, hello Hans"),
                               ("/app/shout/Roh", "async route, hello Roh"),
                               ("/app/plain", "plain route, hello nobody")]:
            async with transport.connect(srv.port, path) as ws:
                assert await ws.recv() == greeting
                await ws.send("louder")
                assert await ws.recv() == "LOUDER"
                await ws.send(b"\x00bytes")
                assert await ws.recv() == b"\x00bytes"
                await ws.send("bye")
                with pytest.raises(Closed) as closed:
                    await ws.recv()
                assert closed.value.code == 4000


async def test_a_route_that_does_not_exist_declines_the_handshake(transport: Transport) -> None:
    async with serving(mount=("/app", make_app()), **transport.options) as srv:
        with pytest.raises(Refused) as refused:
            async with transport.connect(srv.port, "/app/nowhere"):
                pass
        assert refused.value.status == 404
