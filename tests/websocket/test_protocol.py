"""The protocol as the server speaks it, probed with hand-made frames over HTTP/1.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from wsproto.events import CloseConnection, Ping, Pong

import skitai
from tests.support.parsers import PARSERS
from tests.support.servers import serving
from tests.support.wsraw import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    RawWebSocket,
    close_frame,
    frame,
)

seen: list[Any] = []


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    try:
        while True:
            await ws.send(await ws.receive())
    except skitai.WebSocketClosed as exc:
        seen.append(exc.code)
        raise


@asynccontextmanager
async def session(*, after: bytes = b"", parser: str = "auto", **options: Any) -> AsyncIterator[RawWebSocket]:
    seen.clear()
    async with serving(mount=("/", echo), http_parser=parser, **options) as srv:
        ws = await RawWebSocket.open(srv.port, after=after)
        try:
            assert ws.status == 101
            yield ws
        finally:
            await ws.aclose()


@pytest.mark.parametrize("parser", PARSERS)
async def test_a_frame_in_the_handshake_packet_is_read(parser: str) -> None:
    async with session(after=frame(TEXT, b"early") + frame(BINARY, b"bird"), parser=parser) as ws:
        assert await ws.next_event() == "early"
        assert await ws.next_event() == b"bird"


async def test_fragments_are_reassembled_with_a_ping_between_them() -> None:
    async with session() as ws:
        await ws.send(frame(TEXT, b"Hel", fin=False) + frame(CONTINUATION, b"lo ", fin=False)
                      + frame(PING, b"mid") + frame(CONTINUATION, "wörld".encode()))
        pong = await ws.next_event()
        assert isinstance(pong, Pong) and pong.payload == b"mid"
        assert await ws.next_event() == "Hello wörld"
        await ws.send(frame(BINARY, b"\x00", fin=False) + frame(CONTINUATION, b"\xff"))
        assert await ws.next_event() == b"\x00\xff"


async def test_utf8_split_between_fragments_is_fine() -> None:
    snowman = "☃".encode()
    async with session() as ws:
        await ws.send(frame(TEXT, snowman[:1], fin=False) + frame(CONTINUATION, snowman[1:]))
        assert await ws.next_event() == "☃"


@pytest.mark.parametrize(("frames", "code"), [
    pytest.param(frame(TEXT, b"\xff\xfe"), 1007, id="invalid UTF-8"),
    pytest.param(frame(TEXT, b"ok", fin=False) + frame(CONTINUATION, b"\xed\xa0\x80"), 1007,
                 id="a surrogate in a fragment"),
    pytest.param(close_frame(1000, b"\xff"), 1007, id="invalid UTF-8 close reason"),
    pytest.param(frame(0x3, b"x"), 1002, id="reserved opcode"),
    pytest.param(frame(0xB, b""), 1002, id="reserved control opcode"),
    pytest.param(frame(TEXT, b"x", rsv=4), 1002, id="RSV1 without an extension"),
    pytest.param(frame(TEXT, b"x", rsv=1), 1002, id="RSV3"),
    pytest.param(frame(TEXT, b"x", mask=None), 1002, id="unmasked"),
    pytest.param(frame(PING, b"x" * 126), 1002, id="control frame over 125 bytes"),
    pytest.param(frame(PING, b"x", fin=False), 1002, id="fragmented control frame"),
    pytest.param(frame(CONTINUATION, b"x"), 1002, id="continuation without a start"),
    pytest.param(frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002, id="new message inside one"),
    pytest.param(frame(CLOSE, b"\x03"), 1002, id="close with one byte"),
    pytest.param(close_frame(999), 1002, id="close code below the range"),
    pytest.param(close_frame(1005), 1002, id="close code for local use"),
    pytest.param(close_frame(2000), 1002, id="reserved close code"),
])
async def test_protocol_errors_close_with_their_code(frames: bytes, code: int) -> None:
    async with session() as ws:
        await ws.send(frame(TEXT, b"before") + frames)
        assert await ws.next_event() == "before"  # what came before the error is answered
        assert await ws.closed_with() == code
        await ws.read_to_eof()  # and the server ends the connection
    assert seen == [code]


@pytest.mark.parametrize(("frames", "limits"), [
    pytest.param(frame(TEXT, b"x" * 2000), {"websocket_max_message": 1000}, id="message"),
    pytest.param(frame(TEXT, b"x" * 600, fin=False) + frame(CONTINUATION, b"x" * 600),
                 {"websocket_max_message": 1000}, id="fragmented message"),
    pytest.param(frame(BINARY, b"x" * 600), {"websocket_max_frame": 500}, id="frame"),
    pytest.param(frame(BINARY, b"x" * 100, length=1 << 40), {}, id="a terabyte announced"),
])
async def test_oversized_messages_and_frames_close_1009(frames: bytes, limits: dict[str, int]) -> None:
    async with session(**limits) as ws:
        await ws.send(frames)
        assert await ws.closed_with() == 1009
        await ws.read_to_eof()


async def test_under_the_limits_is_fine() -> None:
    async with session(websocket_max_message=1000, websocket_max_frame=500) as ws:
        await ws.send(frame(TEXT, b"x" * 500, fin=False) + frame(CONTINUATION, b"y" * 500))
        assert await ws.next_event() == "x" * 500 + "y" * 500


async def test_ping_gets_its_payload_back_and_pong_is_ignored() -> None:
    async with session() as ws:
        await ws.send(frame(PONG, b"unasked") + frame(PING, b"payload"))
        pong = await ws.next_event()
        assert isinstance(pong, Pong) and pong.payload == b"payload"


async def test_the_client_close_is_echoed_and_reported() -> None:
    async with session() as ws:
        await ws.send(close_frame(1000, b"bye"))
        closed = await ws.next_event()
        assert isinstance(closed, CloseConnection) and (closed.code, closed.reason) == (1000, "bye")
        await ws.read_to_eof()
    assert seen == [1000]


async def test_a_close_without_status_is_answered_without_one() -> None:
    async with session() as ws:
        await ws.send(close_frame(None))
        closed = await ws.next_event()
        assert isinstance(closed, CloseConnection) and closed.code == 1005
        await ws.read_to_eof()
    assert seen == [1005]


async def test_a_vanished_client_is_reported_as_1006() -> None:
    async with session() as ws:
        await ws.send(frame(TEXT, b"one"))
        assert await ws.next_event() == "one"
        await ws.stream.send_eof()
        await ws.read_to_eof()
    assert seen == [1006]


async def test_silent_clients_are_pinged_and_kept_while_they_answer() -> None:
    async with session(websocket_ping_interval=0.05, websocket_ping_timeout=5) as ws:
        for _ in range(3):
            ping = await ws.next_event()
            assert isinstance(ping, Ping)
            await ws.send(frame(PONG, ping.payload))
        await ws.send(frame(TEXT, b"still here"))
        event = await ws.next_event()
        while isinstance(event, Ping):
            event = await ws.next_event()
        assert event == "still here"


async def test_an_unanswered_ping_closes_1011() -> None:
    async with session(websocket_ping_interval=0.05, websocket_ping_timeout=0.1) as ws:
        assert isinstance(await ws.next_event(), Ping)
        closed = await ws.next_event()
        assert isinstance(closed, CloseConnection) and closed.code == 1011
        await ws.send(close_frame(1011))
        await ws.read_to_eof()
    assert seen == [1011]


async def test_a_client_that_never_answers_the_close_is_dropped() -> None:
    @skitai.websocket
    async def closer(ws: skitai.WebSocket) -> None:
        await ws.close(1000)

    async with serving(mount=("/", closer), websocket_close_timeout=0.1) as srv:
        ws = await RawWebSocket.open(srv.port)
        try:
            assert await ws.closed_with() == 1000
            await ws.read_to_eof()  # without our answer
        finally:
            await ws.aclose()


async def test_shutdown_closes_sessions_with_1001() -> None:
    async with serving(mount=("/", echo)) as srv:
        ws = await RawWebSocket.open(srv.port)
        try:
            await ws.send(frame(TEXT, b"hi"))
            assert await ws.next_event() == "hi"
            async with anyio.create_task_group() as tg:
                tg.start_soon(srv.server.shutdown)
                assert await ws.closed_with() == 1001
                await ws.send(close_frame(1001))
                await ws.read_to_eof()
        finally:
            await ws.aclose()

