"""The seed's Flask-style WebSocket examples, with a real Flask app, over every transport."""

from __future__ import annotations

import pytest
from flask import Flask, request

import skitai
from tests.support.servers import serving
from tests.support.wsclient import Closed, Refused
from tests.websocket.conftest import Transport


def make_app() -> Flask:
    app = Flask(__name__)
    app.debug = True

    # The seed's example, as printed (Python 3 spelling only).
    @app.route("/websocket/echo")
    def echo():  # type: ignore[no-untyped-def]
        if "websocket_init" in request.environ:
            request.environ["websocket_init"] = (skitai.WEBSOCKET_REQDATA, 60, "message")
            return ""
        return "ECHO:" + request.args.get("message")

    # The seed's dedicated and multicast examples, in the same Flask style.
    @app.route("/websocket/talk")
    def talk():  # type: ignore[no-untyped-def]
        if "websocket_init" in request.environ:
            request.environ["websocket_init"] = (skitai.WEBSOCKET_DEDICATE, 60, None)
            return ""
        name = request.args.get("name")
        ws = request.environ["websocket"]
        while 1:
            messages = ws.getswait(10)
            if messages is None:
                break
            for m in messages:
                if m.lower() == "bye":
                    ws.send("Bye, have a nice day." + m)
                    ws.close()
                    break
                elif m.lower() == "hello":
                    ws.send("Hello, " + name)
                else:
                    ws.send("You Said:" + m)
        return ""

    @app.route("/websocket/chat")
    def chat():  # type: ignore[no-untyped-def]
        if "websocket_init" in request.environ:
            request.environ["websocket_init"] = (skitai.WEBSOCKET_MULTICAST, 60, "roomid")
            return ""
        ws = request.environ["websocket"]
        while 1:
            messages = ws.getswait(10)
            if messages is None:
                break
            for client_id, m in messages:
                ws.sendall(f"Client {client_id} Said: {m}")
        return ""

    @app.route("/websocket/private")
    def private():  # type: ignore[no-untyped-def]
        return "members only", 403

    return app


async def test_seed_flask_echo(transport: Transport) -> None:
    async with serving(mount=("/", make_app()), **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/echo") as ws:
        for text in ("Hello", "a=b&c", "ünïcode"):
            await ws.send(text)
            assert await ws.recv() == f"ECHO:{text}"


async def test_flask_dedicated_talk(transport: Transport) -> None:
    async with serving(mount=("/", make_app()), **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/talk?name=Member") as ws:
        await ws.send("hello")
        assert await ws.recv() == "Hello, Member"
        await ws.send("bye")
        assert await ws.recv() == "Bye, have a nice day.bye"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == 1000


async def test_flask_chat_room(transport: Transport) -> None:
    async with serving(mount=("/", make_app()), **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/chat?roomid=1") as a:
        joined = await a.recv()
        async with transport.connect(srv.port, "/websocket/chat?roomid=1") as b:
            second = await b.recv()
            assert await a.recv() == second
            await a.send("hi")
            assert await a.recv() == await b.recv() == joined.replace("Said: 1", "Said: hi")


async def test_flask_routes_decide_the_handshake(transport: Transport) -> None:
    """A path Flask does not know gets Flask's 404, a route that answers 403 declines."""
    async with serving(mount=("/", make_app()), **transport.options) as srv:
        with pytest.raises(Refused) as refused:
            async with transport.connect(srv.port, "/websocket/nowhere"):
                pass
        assert refused.value.status == 404
        with pytest.raises(Refused) as refused:
            async with transport.connect(srv.port, "/websocket/private"):
                pass
        assert refused.value.status == 403


async def test_flask_echo_on_a_mount_point(transport: Transport) -> None:
    async with serving(mount=("/flask", make_app()), **transport.options) as srv, \
            transport.connect(srv.port, "/flask/websocket/echo?x=1") as ws:
        await ws.send("mounted")
        assert await ws.recv() == "ECHO:mounted"
