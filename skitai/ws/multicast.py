"""WEBSOCKET_MULTICAST: one thread runs the app for a room of connections.

    ws = env["websocket"]
    while True:
        messages = ws.getswait(10)      # [(client_id, message), ...]; None once the room is empty
        if messages is None:
            break
        for client_id, m in messages:
            ws.sendall("Client %d said: %s" % (client_id, m))

The room key is the request path and the value of the query parameter
named by `varname` (`/websocket/chat?roomid=1`). The first connection makes
the room and starts its thread, running the app once with `env["websocket"]`
(the first member's environ). A join arrives as `(client_id, 1)` and a
leave as `(client_id, -1)`. The room lives exactly as long as it has
members, whichever joined first; after the last one leaves `getswait`
returns None, and the next connection starts a new room. When the app
returns (or raises) the members still there are closed with 1000 (1011).

Messages from all members share one bounded queue to the thread;
`sendall` and `sendto` never wait on a slow member (see `rooms.Room`).
"""

from __future__ import annotations

import functools
import logging
import queue
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from skitai.protocols.websocket import INTERNAL, NORMAL, TRY_AGAIN_LATER, Data, WebSocketConnection
from skitai.ws.inbox import take_arrived
from skitai.ws.rooms import Room
from skitai.ws.services import WebSocketServices
from skitai.ws.specs import JOINED, LEFT, WsgiApp, run_once, session_environ

log = logging.getLogger("skitai.server")

_END = object()


class _Member:
    """A room member: the connection and its id."""

    __slots__ = ("conn", "id")

    def __init__(self, conn: WebSocketConnection, client_id: int) -> None:
        self.conn = conn
        self.id = client_id

    def send_nowait(self, message: Data) -> bool:
        return self.conn.send_nowait(message)


class _MemberSink:
    """A member's received messages, into the room's queue."""

    __slots__ = ("_id", "_room")

    def __init__(self, room: SeedRoom, client_id: int) -> None:
        self._room = room
        self._id = client_id

    async def put(self, message: Data) -> None:
        await self._room.put((self._id, message))

    def end(self, code: int, reason: str) -> None:
        """Nothing to do: leaving the room is the session's last step."""


class SeedRoom:
    """A MULTICAST room: its members, its queue to the app's thread, and that thread."""

    def __init__(self, key: str, services: WebSocketServices) -> None:
        self.key = key
        self.room = Room(key)
        self._members: dict[int, _Member] = {}
        self._services = services
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._size = 0  # loop side: message bytes queued and not yet taken
        self._room_free: anyio.Event | None = None
        self._ended = False  # loop side: the room takes no more members
        self._thread_done = False  # thread side: the end has been taken
        self.socket = RoomSocket(self)

    # ---------------------------------------------------------- loop side

    def join(self, conn: WebSocketConnection, client_id: int) -> None:
        member = self._members[client_id] = _Member(conn, client_id)
        self.room.add(member)
        conn.sink = _MemberSink(self, client_id)
        self._queue.put((client_id, JOINED))

    def leave(self, client_id: int) -> None:
        member = self._members.pop(client_id, None)
        if member is None:
            return
        self.room.discard(member)
        self._queue.put((client_id, LEFT))
        if not self.room:
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._services.rooms.get(self.key) is self:
                del self._services.rooms[self.key]
            self._queue.put(_END)
            if self._room_free is not None:
                self._room_free.set()

    async def put(self, item: tuple[int, Data]) -> None:
        limit = self._services.limits.websocket_queue
        while self._size >= limit and not self._ended:
            self._room_free = anyio.Event()
            await self._room_free.wait()
        if not self._ended:
            self._size += len(item[1])
            self._queue.put(item)

    def _taken(self, size: int) -> None:
        self._size = max(0, self._size - size)
        if self._room_free is not None and self._size < self._services.limits.websocket_queue:
            self._room_free.set()

    async def run(self, app: WsgiApp, environ: dict[str, Any]) -> None:
        """The room's task: the app's one call in the reserved thread, then the room's end."""
        code = NORMAL
        try:
            await self._services.in_thread(lambda: run_once(app, environ))
        except Exception:
            log.exception("WebSocket room %r: app failed", self.key)
            code = INTERNAL
        finally:
            self._services.release_thread()
            self._end()
            for member in list(self._members.values()):
                member.conn.close_soon(code, "room closed")

    # ---------------------------------------------------------- thread side

    def take(self, timeout: float | None) -> list[tuple[int, Any]] | None:
        if self._thread_done:
            return None
        items = take_arrived(self._queue, timeout)
        if _END in items:
            self._thread_done = True
            items = items[: items.index(_END)]
            if not items:
                return None
        size = sum(len(message) for _, message in items if isinstance(message, str | bytes))
        if size:
            self._services.callbacks.call_soon(self._taken, size)
        return items


class RoomSocket:
    """`env["websocket"]` of a MULTICAST room; its methods are called from the room's thread."""

    def __init__(self, room: SeedRoom) -> None:
        self._room = room

    def getswait(self, timeout: float | None = None) -> list[tuple[int, Any]] | None:
        """`(client_id, message)` pairs that have arrived, joins as `(id, 1)` and leaves as `(id, -1)`,
        waiting up to `timeout` seconds for one; None once the room is empty."""
        return self._room.take(timeout)

    def sendall(self, message: Data) -> int:
        """Send to every member; how many took it."""
        return self._call(self._room.room.broadcast, message) or 0

    def sendto(self, client_id: int, message: Data) -> bool:
        """Send to one member; False if it is not (or no longer) in the room."""
        return bool(self._call(self._room.room.send_to, client_id, message))

    @property
    def closed(self) -> bool:
        return self._room._thread_done

    def _call(self, func: Any, *args: Any) -> Any:
        token = self._room._services.token
        try:
            return anyio.from_thread.run_sync(func, *args, token=token)
        except RuntimeError:  # the server has stopped
            return None


async def serve_member(
    conn: WebSocketConnection, key: str, app: WsgiApp, environ: dict[str, Any],
    services: WebSocketServices, client_id: int, *, reserved: bool,
) -> None:
    """Join (or start) the room of `key` for the life of the connection.

    `reserved`: the handshake found no room and reserved a thread for one;
    the room may have come or gone since.
    """
    room = services.rooms.get(key)
    if room is not None and reserved:
        services.release_thread()  # another connection started the room meanwhile
    elif room is None:
        if not reserved and not services.reserve_thread():
            log.warning("WebSocket room %r: no thread free", key)
            await conn.close(TRY_AGAIN_LATER, "no thread free for the room")
            await conn.run(None)
            return
        room = services.rooms[key] = SeedRoom(key, services)
        room_environ = session_environ(environ, websocket=room.socket)
        services.start_room(functools.partial(room.run, app, room_environ))
    room.join(conn, client_id)
    try:
        await conn.run(None)
    finally:
        room.leave(client_id)
