"""The two waits every request makes, at the event loop's own price.

A request served by a WSGI app waits twice on the event loop: for its
socket to become readable, and for its worker thread to post the response.
Through anyio each wait costs more than parsing the request: on asyncio,
`anyio.wait_readable` looks up a run variable, registers the socket with
the loop and unregisters it again (two `epoll_ctl` calls under uvloop), and
`anyio.Event` builds an `asyncio.Event` whose every use asks for the
running loop (a `getpid` system call on Python 3.11). Together they were
about a fifth of the event loop thread's time serving a small response.

This module gives the same waits straight on the backend that runs:

* `Wakeup`: a flag one task waits on and anyone on the loop sets; it
  resets when the waiter returns, so one object serves a whole exchange.
* `readable_waiter_factory()`: what makes, per socket, the object whose
  `wait()` returns once the socket is readable. On asyncio the socket stays registered with the loop between
  waits (it is unregistered only when it turns readable while nobody waits,
  or when it closes), so a keep-alive connection costs no registration
  per request. On trio it is trio's own `wait_readable`.

Both honour anyio cancellation: they are plain awaits of a future (asyncio)
or of `wait_task_rescheduled` (trio), which a cancel scope interrupts.
The trio side lives in `waits_trio`, imported only under trio (importing
trio costs an asyncio server about 4 MB). docs/discussion/sockets.md has
the measurements.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

import anyio
import anyio.lowlevel
import sniffio

if TYPE_CHECKING:
    from skitai.protocols.waits_trio import TrioReadable, TrioWakeup


def current_backend() -> str:
    """"asyncio" or "trio": what runs the calling task."""
    return sniffio.current_async_library()


class _AsyncioWakeup:
    __slots__ = ("_loop", "_set", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self._set = True
        else:
            self._waiter = None
            waiter.set_result(None)

    async def wait(self) -> None:
        if self._set:
            self._set = False
            await anyio.lowlevel.checkpoint()
            return
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        except BaseException:
            # Woken and cancelled at once: keep the wake-up for the next wait.
            if waiter.done() and not waiter.cancelled():
                self._set = True
            raise
        finally:
            if self._waiter is waiter:
                self._waiter = None


# A flag for one waiting task, set from the event loop (never from another
# thread): `wait()` returns once `set()` has been called since the last
# `wait()` returned; a `set()` while nobody waits is kept for the next one.
Wakeup = Union[_AsyncioWakeup, "TrioWakeup"]


def wakeup_factory() -> Callable[[], Wakeup]:
    """What makes `Wakeup`s for the running event loop; call it on that loop."""
    if current_backend() == "trio":
        from skitai.protocols.waits_trio import TrioWakeup

        return TrioWakeup
    loop = asyncio.get_running_loop()
    return lambda: _AsyncioWakeup(loop)


class _AsyncioReadable:
    """One socket's readable waits on an asyncio loop, registered once, not per wait.

    A loop's reader callback fires on every pass while the socket is
    readable (level-triggered), so the registration is dropped when that
    happens with nobody waiting, and taken again by the next wait.
    """

    __slots__ = ("_fd", "_loop", "_waiter", "_watching")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._waiter: asyncio.Future[None] | None = None
        self._watching = False

    def _readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            self._watching = False
            self._loop.remove_reader(self._fd)
        else:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        if self._waiter is not None:
            raise anyio.BusyResourceError("reading from")
        if self._fd < 0:
            raise anyio.ClosedResourceError
        if not self._watching:
            self._loop.add_reader(self._fd, self._readable)
            self._watching = True
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def close(self) -> None:
        """Unregister before the socket closes (its number may be reused at once); wake a waiter."""
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)
        self._fd = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(anyio.ClosedResourceError())


ReadableWaiter = Union[_AsyncioReadable, "TrioReadable"]


def readable_waiter_factory() -> Callable[[socket.socket], ReadableWaiter]:
    """What makes a socket's `ReadableWaiter` on the running loop; call it on that loop.

    Close the waiter before its socket.
    """
    if current_backend() == "trio":
        from skitai.protocols.waits_trio import TrioReadable

        return TrioReadable
    loop = asyncio.get_running_loop()
    return lambda sock: _AsyncioReadable(loop, sock.fileno())
