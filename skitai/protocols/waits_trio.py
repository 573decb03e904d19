"""The trio side of `skitai.protocols.waits`, imported only when trio runs."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import anyio.lowlevel
import trio


class TrioWakeup:
    """`waits.Wakeup` on trio: the waiting task parked until `set()` reschedules it."""

    __slots__ = ("_set", "_task")

    def __init__(self) -> None:
        self._set = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        task = self._task
        if task is None:
            self._set = True
        else:
            self._task = None
            trio.lowlevel.reschedule(task)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def wait(self) -> None:
        if self._set:
            self._set = False
            await anyio.lowlevel.checkpoint()
            return
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)


class TrioReadable:
    """`waits.ReadableWaiter` on trio: trio's own wait, its errors as anyio's."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def wait(self) -> None:
        try:
            await trio.lowlevel.wait_readable(self._sock)
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except trio.BusyResourceError:
            raise anyio.BusyResourceError("reading from") from None

    def close(self) -> None:
        trio.lowlevel.notify_closing(self._sock)
