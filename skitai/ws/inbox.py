"""The bounded queue of received messages of an app in a thread (DEDICATE).

It holds at most `limit` bytes: the reader's `put` waits beyond that, so a
slow app pauses reading and the client's own TCP window does the rest.
Messages queued before the close are still delivered; after them the app
learns the close. (Apps on the event loop have the driver's MessageQueue.)
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import anyio

from skitai.protocols.websocket import Data

_END = object()  # a ThreadInbox's last item


def take_arrived(items: queue.SimpleQueue[Any], timeout: float | None) -> list[Any]:
    """Thread side: what a queue holds, waiting up to `timeout` for a first item; [] if none came."""
    try:
        taken = [items.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            taken.append(items.get_nowait())
        except queue.Empty:
            return taken


class ThreadInbox:
    """The `MessageSink` of an app in a thread; `take()` is its thread side.

    The loop never waits on a lock the thread may hold: it hands messages
    over through a `SimpleQueue` and the thread reports what it took
    through the server's loop callbacks.
    """

    __slots__ = ("_call_soon", "_closed", "_ended", "_limit", "_queue", "_room", "_size")

    def __init__(self, limit: int, call_soon: Callable[..., None]) -> None:
        self._limit = limit
        self._call_soon = call_soon
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._size = 0  # loop side: bytes put and not yet reported taken
        self._room: anyio.Event | None = None
        self._closed = False  # loop side: end() has been called
        self._ended = False  # thread side: the end has been taken

    async def put(self, message: Data) -> None:
        while self._size >= self._limit and not self._closed:
            self._room = anyio.Event()
            await self._room.wait()
        if self._closed:
            return
        self._size += len(message)
        self._queue.put(message)

    def end(self, code: int, reason: str) -> None:
        self._closed = True
        self._queue.put(_END)
        if self._room is not None:
            self._room.set()

    def take(self, timeout: float | None) -> list[Data] | None:
        """Thread side: what has arrived, waiting up to `timeout` for a first message; None once closed."""
        if self._ended:
            return None
        items = take_arrived(self._queue, timeout)
        if not items:
            return []
        if items[-1] is _END:
            self._ended = True
            items.pop()
            if not items:
                return None
        size = sum(len(item) for item in items)
        if size:
            self._call_soon(self._taken, size)
        return items

    def _taken(self, size: int) -> None:
        self._size = max(0, self._size - size)
        if self._room is not None and self._size < self._limit:
            self._room.set()
