"""A slow client slows its own session and nothing else; the server's buffers stay bounded."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import anyio
from wsproto.connection import Connection, ConnectionType
from wsproto.extensions import PerMessageDeflate

import skitai
from skitai.protocols.websocket import BACKGROUND_AFTER
from tests.support.servers import serving
from tests.support.wsraw import BINARY, TEXT, RawWebSocket, frame

PIECE = 64 * 1024
COUNT = 300  # 19 MiB each way: more than the kernel's buffers and ours together
QUEUE = 256 * 1024


async def until_still(progress: Callable[[], int]) -> int:
    """Wait until `progress()` stops moving (it is blocked), within bounds; its value."""
    last, still = -1, 0
    for _ in range(400):
        await anyio.sleep(0.02)
        now = progress()
        still = still + 1 if now == last else 0
        if still >= 10:
            return now
        last = now
    raise AssertionError("never stopped moving")


def pending(srv: object) -> int:
    (session,) = srv.server.websockets.sessions  # type: ignore[attr-defined]
    return int(session._pending_size)


async def test_a_client_that_does_not_read_holds_its_sender() -> None:
    sent = [0]

    @skitai.websocket
    async def firehose(ws: skitai.WebSocket) -> None:
        await ws.receive()
        for n in range(COUNT):
            await ws.send(f"{n:08d}" + "x" * (PIECE - 8))
            sent[0] += 1

    async with serving(mount=("/", firehose), websocket_queue=QUEUE) as srv:
        ws = await RawWebSocket.open(srv.port)
        try:
            await ws.send(frame(TEXT, b"go"))
            assert await until_still(lambda: sent[0]) < COUNT
            assert pending(srv) <= QUEUE + PIECE + 14  # one message past the limit at most
            for n in range(COUNT):
                message = await ws.next_event()
                assert message[:8] == f"{n:08d}"
            assert sent[0] == COUNT
        finally:
            await ws.aclose()


async def test_an_app_that_does_not_receive_pauses_reading() -> None:
    go = anyio.Event()
    inbox_sizes: list[int] = []

    @skitai.websocket
    async def sleeper(ws: skitai.WebSocket) -> None:
        await go.wait()
        total = 0
        for _ in range(COUNT):
            total += len(await ws.receive())
        await ws.send(str(total))

    async with serving(mount=("/", sleeper), websocket_queue=QUEUE) as srv:
        ws = await RawWebSocket.open(srv.port)
        sent = [0]

        async def flood() -> None:
            for _ in range(COUNT):
                await ws.send(frame(TEXT, b"y" * PIECE))
                sent[0] += 1

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(flood)
                assert await until_still(lambda: sent[0]) < COUNT
                (session,) = srv.server.websockets.sessions
                inbox_sizes.append(session.sink._size)
                go.set()
            assert await ws.next_event() == str(COUNT * PIECE)
        finally:
            await ws.aclose()
    assert inbox_sizes[0] <= QUEUE + PIECE


rooms = skitai.Rooms()
both_in: list[anyio.Event] = []


@skitai.websocket
async def broadcaster(ws: skitai.WebSocket) -> None:
    with rooms.join("room", ws) as room:
        if len(room) == 2:
            both_in[0].set()
        async for message in ws:
            if message == "go":
                for n in range(COUNT):
                    room.broadcast(f"{n:08d}" + "z" * (PIECE - 8))
                    await anyio.lowlevel.checkpoint()  # let the fast member's writes go out


async def test_a_slow_room_member_is_closed_1008_and_the_others_get_everything() -> None:
    both_in[:] = [anyio.Event()]
    async with serving(mount=("/", broadcaster), websocket_queue=QUEUE) as srv:
        slow = await RawWebSocket.open(srv.port)
        fast = await RawWebSocket.open(srv.port)
        try:
            with anyio.fail_after(10):
                await both_in[0].wait()
            await fast.send(frame(TEXT, b"go"))
            for n in range(COUNT):
                message = await fast.next_event()
                assert message[:8] == f"{n:08d}"
            assert await slow.closed_with() == 1008
        finally:
            await slow.aclose()
            await fast.aclose()


def deflated(message: bytes) -> bytes:
    """A binary message compressed as permessage-deflate sends it (RFC 7692 7.2.1), framed."""
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return frame(BINARY, payload[:-4], rsv=4)


async def test_compressed_messages_wait_within_the_queue_limit() -> None:
    """Regression: while an app read for itself, one read of compressed frames was inflated
    whole into its queue: 40 MiB waiting behind a 256 KiB limit, from 40 KiB on the wire."""
    big, count = 1 << 20, 40
    go = anyio.Event()
    queued: list[int] = []

    @skitai.websocket
    async def slow_reader(ws: skitai.WebSocket) -> None:
        total = len(await ws.receive())
        await go.wait()
        for _ in range(count - 1):
            total += len(await ws.receive())
        await ws.send(str(total))

    async with serving(mount=("/", slow_reader), websocket_queue=QUEUE) as srv:
        ws = await RawWebSocket.open(srv.port, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        try:
            assert ws.header(b"sec-websocket-extensions") == b"permessage-deflate"
            deflate = PerMessageDeflate()
            deflate.finalize("permessage-deflate")
            ws.ws = Connection(ConnectionType.CLIENT, [deflate])  # the reply comes compressed
            await ws.send(b"".join(deflated(bytes(big)) for _ in range(count)))
            (session,) = srv.server.websockets.sessions
            queued.append(await until_still(lambda: session._messages._size))
            await anyio.sleep(BACKGROUND_AFTER)  # a reader joins the app that stays away...
            queued.append(await until_still(lambda: session._messages._size))  # ...and waits for room
            go.set()
            assert await ws.next_event() == str(count * big)
        finally:
            await ws.aclose()
    assert max(queued) <= QUEUE + big
    assert queued[1] > 0  # the reader did join
