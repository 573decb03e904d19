"""The seed's four designs over every transport: its Saddle examples as Saddle routes,
and the same examples as raw WSGI apps."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.support.servers import serving
from tests.support.wsclient import Closed
from tests.websocket import seedapps
from tests.websocket.conftest import Transport

Mounts = list[tuple[str, Any]]

RAW: Mounts = [("/websocket/echo", seedapps.echo), ("/websocket/talk", seedapps.talk),
       ("/websocket/calculate", seedapps.calculate), ("/websocket/chat", seedapps.chat)]
SADDLE: Mounts = [("/", "tests.saddle.seedsite.websocket:app")]


@pytest.fixture(params=["saddle", "raw"])
def mounts(request: pytest.FixtureRequest) -> Mounts:
    return SADDLE if request.param == "saddle" else RAW


async def test_reqdata_echoes_through_the_app(transport: Transport, mounts: Mounts) -> None:
    async with serving(mount=mounts, **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/echo?lang=en") as ws:
        for text in ("Hello", "with spaces & = signs", "ünïcode ✓"):
            await ws.send(text)
            assert await ws.recv() == f"ECHO:{text}"
        assert await ws.close() == 1000


async def test_dedicate_talks_in_its_own_thread(transport: Transport, mounts: Mounts) -> None:
    async with serving(mount=mounts, **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/talk?name=Member") as ws:
        await ws.send("hello")
        assert await ws.recv() == "Hello, Member"
        await ws.send("what")
        assert await ws.recv() == "You Said:what"
        await ws.send("bye")
        assert await ws.recv() == "Bye, have a nice day.bye"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == 1000  # the app's ws.close()
    assert srv.server.websockets._threads_free == srv.server.config.websocket_threads


async def test_dedicate_threadsafe_streams_from_helper_threads(transport: Transport, mounts: Mounts) -> None:
    async with serving(mount=mounts, **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/calculate") as ws:
        await ws.send("run 5")
        assert [await ws.recv() for _ in range(5)] == ["0\n", "1\n", "4\n", "9\n", "16\n"]
        await ws.send("huh")
        assert await ws.recv() == "You said huh but I can't understatnd"
        await ws.send("bye")
        assert await ws.recv() == "Bye, have a nice day.bye"
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert closed.value.code == 1000


class Chat:
    """Members of the seed's chat room, each with the messages it has yet to read."""

    def __init__(self) -> None:
        self.members: dict[int, Any] = {}

    async def join(self, ws: Any) -> int:
        notice = await ws.recv()  # its own join notice comes first
        assert notice.startswith("Client ") and notice.endswith(" Said: 1"), notice
        client_id = int(notice.split()[1])
        await self.expect(f"Client {client_id} Said: 1")
        self.members[client_id] = ws
        return client_id

    async def expect(self, text: str) -> None:
        """Every member receives `text` next."""
        for ws in self.members.values():
            assert await ws.recv() == text

    async def leave(self, client_id: int) -> None:
        ws = self.members.pop(client_id)
        assert await ws.close() == 1000
        await self.expect(f"Client {client_id} Said: -1")


async def test_multicast_room_outlives_its_first_member(transport: Transport, mounts: Mounts) -> None:
    chat = Chat()
    async with serving(mount=mounts, **transport.options) as srv, \
            transport.connect(srv.port, "/websocket/chat?roomid=1") as a, \
            transport.connect(srv.port, "/websocket/chat?roomid=2") as elsewhere:
        first = await chat.join(a)
        other_room = await Chat().join(elsewhere)
        async with AsyncExitStack() as members:
            # One joins after the other: two joins at once may reach the room in either order.
            b = await members.enter_async_context(transport.connect(srv.port, "/websocket/chat?roomid=1"))
            second = await chat.join(b)
            c = await members.enter_async_context(transport.connect(srv.port, "/websocket/chat?roomid=1"))
            third = await chat.join(c)
            assert len({first, second, third, other_room}) == 4
            await a.send("hello")
            await chat.expect(f"Client {first} Said: hello")
            await chat.leave(first)  # the member that made the room
            await b.send("still here")
            await chat.expect(f"Client {second} Said: still here")
            async with transport.connect(srv.port, "/websocket/chat?roomid=1") as d:
                fourth = await chat.join(d)
                await chat.leave(second)
                await d.send("last ones")
                await chat.expect(f"Client {fourth} Said: last ones")
                await c.send(b"bytes too")
                await chat.expect(f"Client {third} Said: b'bytes too'")
                await chat.leave(fourth)
                await chat.leave(third)
        await elsewhere.send("quiet here")
        assert await elsewhere.recv() == f"Client {other_room} Said: quiet here"
        assert list(srv.server.websockets.rooms) == ["/websocket/chat/2"]


async def test_multicast_room_starts_again_after_its_last_member(
    transport: Transport, mounts: Mounts
) -> None:
    async with serving(mount=mounts, **transport.options) as srv:
        for _ in range(2):
            async with transport.connect(srv.port, "/websocket/chat?roomid=7") as ws:
                chat = Chat()
                member = await chat.join(ws)
                await ws.send("anyone?")
                await chat.expect(f"Client {member} Said: anyone?")
                assert await ws.close() == 1000
        assert srv.server.websockets.rooms == {}
