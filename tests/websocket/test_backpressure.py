"""A slow client slows its own session and nothing else; the server's buffers stay bounded."""

from __future__ import annotations

from collections.abc import Callable

import anyio

import skitai
from tests.support.servers import serving
from tests.support.wsraw import TEXT, RawWebSocket, frame

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
