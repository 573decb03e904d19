"""The bounded queue of received messages of a WebSocket app on the event loop.

The connection's reader puts complete messages in; the app takes them out.
At most `limit` bytes wait: a reader with more waits for room, so a slow
app pauses reading and the client's own TCP window does the rest. Messages
queued before the close are still taken; after them `get` raises
`WebSocketClosed`. A list, not a deque: every idle session keeps one, and
an empty deque costs ten times an empty list.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from skitai.errors import WebSocketClosed

Data = str | bytes


class MessageQueue:
    __slots__ = ("_arrived", "_limit", "_messages", "_room", "_size", "ended")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._messages: list[Data] = []
        self._size = 0
        self._arrived: anyio.Event | None = None
        self._room: anyio.Event | None = None
        self.ended: tuple[int, str] | None = None  # (close code, reason) once no more will come

    async def put(self, message: Data) -> None:
        """Add a message, waiting while `limit` bytes are queued (a reader of its own does)."""
        while self._size >= self._limit and self.ended is None:
            self._room = anyio.Event()
            await self._room.wait()
        self.put_nowait(message)

    def put_nowait(self, message: Data) -> None:
        """Add a message now: for an app that reads for itself, emptying the queue first."""
        if self.ended is not None:
            return
        self._messages.append(message)
        self._size += len(message)
        if self._arrived is not None:
            self._arrived.set()

    @property
    def full(self) -> bool:
        """`limit` bytes or more wait."""
        return self._size >= self._limit

    def end(self, code: int, reason: str) -> None:
        self.ended = (code, reason)
        for event in (self._arrived, self._room):
            if event is not None:
                event.set()

    def take_nowait(self) -> Data | None:
        """The next message if one is queued."""
        if not self._messages:
            return None
        message = self._messages.pop(0)
        self._size -= len(message)
        if self._room is not None and self._size < self._limit:
            self._room.set()
        return message

    async def get(self) -> Data:
        """The next message, waiting for one; WebSocketClosed once all before the close are taken."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        while True:
            message = self.take_nowait()
            if message is not None:
                return message
            if self.ended is not None:
                raise WebSocketClosed(*self.ended)
            arrived = self._arrived = anyio.Event()
            await arrived.wait()
