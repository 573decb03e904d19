"""`skitai.websocket` endpoints: async handlers on the event loop, over every transport."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

import skitai
from tests.support.servers import serving
from tests.support.wsclient import Closed
from tests.websocket.conftest import Transport


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def test_echo_text_and_binary(transport: Transport) -> None:
    async with serving(mount=("/echo", echo), **transport.options) as srv, \
            transport.connect(srv.port, "/echo") as ws:
        for message in ("hello", b"\x00\xff binary", "", b"", "x" * 100_000, b"y" * 300_000):
            await ws.send(message)
            assert await ws.recv() == message
        assert await ws.close() == 1000


async def test_the_handler_sees_the_request_and_the_client_close(transport: Transport) -> None:
    seen: list[Any] = []
    done = anyio.Event()

    @skitai.websocket
    async def handler(ws: skitai.WebSocket) -> None:
        seen.append((ws.environ["PATH_INFO"], ws.environ["QUERY_STRING"], ws.environ["SCRIPT_NAME"],
                     ws.environ["REQUEST_METHOD"], ws.id > 0))
        try:
            await ws.receive()
        except skitai.WebSocketClosed as exc:
            seen.append((exc.code, exc.reason, ws.close_code, ws.closed))
        finally:
            done.set()

    async with serving(mount=("/app", handler), **transport.options) as srv:
        async with transport.connect(srv.port, "/app/room?x=1") as ws:
            assert await ws.close(3001, "leaving") == 3001  # the server echoes the client's code
        with anyio.fail_after(10):
            await done.wait()
    assert seen == [("/room", "x=1", "/app", "GET", True), (3001, "leaving", 3001, True)]


@pytest.mark.parametrize(("behaviour", "code"), [("return", 1000), ("raise", 1011), ("close", 4000)])
async def test_the_handler_ending_closes_with_its_code(transport: Transport, behaviour: str,
                                                         code: int) -> None:
    @skitai.websocket
    async def handler(ws: skitai.WebSocket) -> None:
        await ws.send(await ws.receive())
        if behaviour == "raise":
            raise RuntimeError("the app broke")
        if behaviour == "close":
            await ws.close(4000, "done")
            with pytest.raises(skitai.WebSocketClosed):
                await ws.send("too late")

    async with serving(mount=("/", handler), **transport.options) as srv, \
            transport.connect(srv.port, "/") as ws:
        await ws.send("one")
        assert await ws.recv() == "one"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == code


async def test_subprotocol_is_the_servers_first_choice_the_client_offers(transport: Transport) -> None:
    @skitai.websocket(subprotocols=["chat.v2", "chat"])
    async def handler(ws: skitai.WebSocket) -> None:
        await ws.send(str(ws.subprotocol))

    async with serving(mount=("/", handler), **transport.options) as srv:
        async with transport.connect(srv.port, "/", subprotocols=["chat", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert await ws.recv() == "chat.v2"
        async with transport.connect(srv.port, "/", subprotocols=["chat"]) as ws:
            assert await ws.recv() == "chat"
        async with transport.connect(srv.port, "/") as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "None"


async def test_permessage_deflate_is_negotiated_unless_switched_off(transport: Transport) -> None:
    async with serving(mount=("/", echo), **transport.options) as srv, \
            transport.connect(srv.port, "/") as ws:
        assert ws.extensions is not None and ws.extensions.startswith("permessage-deflate")
        await ws.send("compressible " * 1000)
        assert await ws.recv() == "compressible " * 1000
    async with serving(mount=("/", echo), websocket_compression=False, **transport.options) as srv, \
            transport.connect(srv.port, "/") as ws:
        assert ws.extensions is None
        await ws.send("plain")
        assert await ws.recv() == "plain"


rooms = skitai.Rooms()


@skitai.websocket
async def chat(ws: skitai.WebSocket) -> None:
    with rooms.join(ws.environ["QUERY_STRING"], ws) as room:
        room.broadcast(f"{ws.id} joined")
        async for message in ws:
            room.broadcast(f"{ws.id}: {message}")
        room.broadcast(f"{ws.id} left", exclude=ws)


async def test_rooms_broadcast_to_every_member_until_the_last_leaves(transport: Transport) -> None:
    async with serving(mount=("/chat", chat), **transport.options) as srv, \
            transport.connect(srv.port, "/chat?lobby") as a, \
            transport.connect(srv.port, "/chat?other") as stranger:
        first = (await a.recv()).split()[0]
        elsewhere = (await stranger.recv()).split()[0]
        async with transport.connect(srv.port, "/chat?lobby") as b, \
                transport.connect(srv.port, "/chat?lobby") as c:
            second = (await b.recv()).split()[0]
            assert await a.recv() == f"{second} joined"
            third = (await c.recv()).split()[0]
            for ws in (a, b):
                assert await ws.recv() == f"{third} joined"
            await a.close()  # the member that made the room leaves
            for ws in (b, c):
                assert await ws.recv() == f"{first} left"
            await c.send("hi")
            for ws in (b, c):
                assert await ws.recv() == f"{third}: hi"
            lobby = rooms.get("lobby")
            assert lobby is not None and sorted(lobby.ids) == sorted([int(second), int(third)])
        await stranger.send("alone")
        assert await stranger.recv() == f"{elsewhere}: alone"
        assert list(room.name for room in rooms) == ["other"]
    assert len(rooms) == 0


async def test_idle_session_closes_after_its_keep_alive(transport: Transport) -> None:
    @skitai.websocket(keep_alive=0.2)
    async def quiet(ws: skitai.WebSocket) -> None:
        await ws.send("hello")
        async for message in ws:
            await ws.send(message)

    async with serving(mount=("/", quiet), **transport.options) as srv, \
            transport.connect(srv.port, "/") as ws:
        assert await ws.recv() == "hello"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert (closed.value.code, closed.value.reason) == (1001, "idle timeout")


async def test_a_plain_request_to_an_endpoint_gets_426() -> None:
    async with serving(mount=("/ws", echo)) as srv, httpx.AsyncClient() as client:
        response = await client.get(f"{srv.url}/ws")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"


async def test_a_wsgi_app_hands_a_handshake_to_an_endpoint(transport: Transport) -> None:
    """What a framework does for its async routes: set websocket_init to an endpoint."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if "websocket_init" in environ and environ["PATH_INFO"] == "/echo":
            environ["websocket_init"] = echo
            start_response("200 OK", [])
            return [b""]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route"]

    async with serving(mount=("/", app), **transport.options) as srv:
        async with transport.connect(srv.port, "/echo") as ws:
            await ws.send("through the app")
            assert await ws.recv() == "through the app"


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def test_an_endpoint_and_an_app_share_a_mount_point(transport: Transport) -> None:
    async with serving(mount=[("/", hello), ("/", echo), ("/only", echo)], **transport.options) as srv:
        async with transport.connect(srv.port, "/anything") as ws:
            await ws.send("to the endpoint")
            assert await ws.recv() == "to the endpoint"
        if transport.name.startswith("h1"):
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{srv.url}/anything")).text == "hello"
                assert (await client.get(f"{srv.url}/only/x")).status_code == 426
