"""What the designs do at their edges: app failures, the keep-alive timeout, closed sockets."""

from __future__ import annotations

import threading
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest

import skitai
from tests.support.servers import serving
from tests.support.wsclient import Closed, connect

Environ = dict[str, Any]


def init(environ: Environ, start_response: Any, design: int, keep_alive: float,
         varname: str | None) -> list[bytes]:
    environ["websocket_init"] = (design, keep_alive, varname)
    start_response("200 OK", [])
    return [b""]


def reqdata(environ: Environ, start_response: Any) -> list[bytes]:
    if "websocket_init" in environ:
        return init(environ, start_response, skitai.WEBSOCKET_REQDATA, 60, "m")
    message = parse_qs(environ["QUERY_STRING"], encoding="latin-1")["m"][0]
    if message == "fail":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"boom"]
    if message == "quiet":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [message.encode("latin-1"), b"ignored second item"]


async def test_reqdata_answers_binary_with_binary_and_closes_1011_on_a_5xx() -> None:
    async with serving(mount=("/", reqdata)) as srv, connect(srv.port, "/?x=1", "h1") as ws:
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send("quiet")  # an empty first item sends nothing
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send("fail")
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == 1011


def crashing(environ: Environ, start_response: Any) -> list[bytes]:
    if "websocket_init" in environ:
        return init(environ, start_response, skitai.WEBSOCKET_DEDICATE, 60, None)
    ws = environ["websocket"]
    ws.getswait(10)
    raise RuntimeError("the app broke")


async def test_a_dedicated_app_that_raises_closes_1011(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(mount=("/", crashing)) as srv, connect(srv.port, "/", "h1") as ws:
        await ws.send("go")
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == 1011
    assert "WebSocket app failed" in caplog.text


def idle(environ: Environ, start_response: Any) -> list[bytes]:
    if "websocket_init" in environ:
        return init(environ, start_response, skitai.WEBSOCKET_DEDICATE, 0.2, None)
    ws = environ["websocket"]
    ws.send("ready")
    while (messages := ws.getswait(0.05)) is not None:
        for message in messages:
            ws.send(message)
    return [b""]


async def test_the_keep_alive_timeout_of_the_design_closes_idle_sessions_1001() -> None:
    async with serving(mount=("/", idle)) as srv, connect(srv.port, "/", "h1") as ws:
        assert await ws.recv() == "ready"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert (closed.value.code, closed.value.reason) == (1001, "idle timeout")


sent_after_close: list[bool] = []
closed_seen = threading.Event()


def sender(environ: Environ, start_response: Any) -> list[bytes]:
    if "websocket_init" in environ:
        return init(environ, start_response, skitai.WEBSOCKET_DEDICATE_THREADSAFE, 60, None)
    ws = environ["websocket"]
    assert ws.getswait(0.01) == []  # nothing yet: the wait ends empty
    assert ws.send("hi")
    while ws.getswait(10) is not None:
        pass
    sent_after_close.append(ws.send("too late"))
    sent_after_close.append(ws.closed)
    closed_seen.set()
    return [b""]


async def test_a_closed_dedicated_socket_refuses_sends_quietly() -> None:
    sent_after_close.clear()
    closed_seen.clear()
    async with serving(mount=("/", sender)) as srv:
        async with connect(srv.port, "/", "h1") as ws:
            assert await ws.recv() == "hi"
            assert await ws.close() == 1000
        assert await anyio.to_thread.run_sync(closed_seen.wait, 10)
    assert sent_after_close == [False, True]


def room(environ: Environ, start_response: Any) -> list[bytes]:
    if "websocket_init" in environ:
        return init(environ, start_response, skitai.WEBSOCKET_MULTICAST, 60, "r")
    ws = environ["websocket"]
    members: list[int] = []
    while (messages := ws.getswait(10)) is not None:
        for client_id, message in messages:
            if message == 1:  # the join notice
                members.append(client_id)
                ws.sendto(client_id, f"welcome {client_id}")
            elif message == "crash":
                raise RuntimeError("the room broke")
            elif message == "whisper":
                assert ws.sendto(members[0], f"from {client_id}")
                assert not ws.sendto(999_999, "nobody")
    return [b""]


async def test_sendto_reaches_one_member_and_a_crashing_room_closes_them_all_1011() -> None:
    async with serving(mount=("/", room)) as srv, connect(srv.port, "/?r=1", "h1") as a:
        first = (await a.recv()).split()[1]
        async with connect(srv.port, "/?r=1", "h1") as b:
            second = (await b.recv()).split()[1]
            await b.send("whisper")
            assert await a.recv() == f"from {second}"
            assert first != second
            await b.send("crash")
            for ws in (a, b):
                with pytest.raises(Closed) as closed:
                    await ws.recv()
                assert closed.value.code == 1011
        assert srv.server.websockets.rooms == {}


@skitai.websocket
async def echo_endpoint(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def test_idle_sessions_hold_no_thread() -> None:
    """Async endpoints never use a thread; REQDATA holds one only while a message is answered."""
    sessions = 24
    async with serving(mount=[("/async", echo_endpoint), ("/reqdata", reqdata)], threads=2) as srv:
        before = threading.active_count()
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(connect(srv.port, path, "h1"))
                       for path in ["/async", "/reqdata?x=1"] * (sessions // 2)]
            for client in clients:  # every session has answered once, and now idles
                await client.send("ping")
                assert await client.recv() in ("ping", b"ping")
            assert threading.active_count() <= before + 2  # the pool's own threads, at most
