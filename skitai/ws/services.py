"""What every WebSocket session of a server shares.

* The sweeper: one task for all sessions that calls their `check()` a few
  times a second (pings, idle and close timeouts), so an idle session costs
  no task of its own.
* Threads for the DEDICATE and MULTICAST designs: `websocket_threads` of
  them, reserved at the handshake (refused with 503 when none is free) and
  run through `anyio.to_thread` under a limiter of the same size.
* Short calls of a WSGI app (the handshake's `websocket_init` call, each
  REQDATA message) in the server's worker pool, like requests.
* The task group of MULTICAST rooms, which outlive any one member.
* Client ids, and the 1001 "going away" to every session at shutdown.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from skitai.config import Config
from skitai.protocols.timeouts import sweep_interval
from skitai.protocols.websocket import GOING_AWAY, WebSocketConnection
from skitai.threadpool import LoopCallbacks, WorkerPool

if TYPE_CHECKING:
    from skitai.ws.multicast import SeedRoom

T = TypeVar("T")


class WebSocketServices:
    def __init__(self, config: Config, pool: WorkerPool, callbacks: LoopCallbacks) -> None:
        self.config = config
        self.limits = config.limits
        self.pool = pool
        self.callbacks = callbacks
        self.sessions: set[WebSocketConnection] = set()
        self.rooms: dict[str, SeedRoom] = {}  # MULTICAST rooms by key
        self._ids = itertools.count(1)
        self._threads_free = config.websocket_threads
        self._limiter = anyio.CapacityLimiter(config.websocket_threads)
        self._tasks: anyio.abc.TaskGroup | None = None
        self.token: anyio.lowlevel.EventLoopToken | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sweep sessions and host rooms until cancelled. Run it as a server service."""
        self.token = anyio.lowlevel.current_token()
        limits = self.limits
        interval = sweep_interval(limits.websocket_ping_interval, limits.websocket_ping_timeout,
                                  limits.websocket_close_timeout)
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            task_status.started()
            try:
                while True:
                    await anyio.sleep(interval)
                    now = time.monotonic()
                    for session in list(self.sessions):
                        session.check(now)
            finally:
                self._tasks = None

    def next_id(self) -> int:
        return next(self._ids)

    def going_away(self) -> None:
        """Server shutdown: close every session with 1001."""
        for session in list(self.sessions):
            session.close_soon(GOING_AWAY, "server shutting down")

    # ------------------------------------------------------------ threads

    def reserve_thread(self) -> bool:
        """Take one of the `websocket_threads`; False when all are in use."""
        if self._threads_free <= 0:
            return False
        self._threads_free -= 1
        return True

    def release_thread(self) -> None:
        self._threads_free += 1

    async def in_thread(self, func: Callable[[], T]) -> T:
        """Run `func` in a thread reserved with `reserve_thread`.

        The thread cannot be cancelled: a cancelled caller stops waiting and
        the app's call ends by itself once it sees its socket closed.
        """
        return await anyio.to_thread.run_sync(func, limiter=self._limiter, abandon_on_cancel=True)

    async def in_pool(self, func: Callable[[], T]) -> T:
        """Run a short call of an app in the server's worker pool and wait for it."""
        done = anyio.Event()
        outcome: list[Any] = []

        def job() -> None:
            try:
                outcome.append((True, func()))
            except Exception as exc:  # handed to the caller on the loop
                outcome.append((False, exc))
            finally:
                self.callbacks.call_soon(done.set)

        self.pool.submit(job)
        await done.wait()
        if not outcome:
            raise RuntimeError("the app's call ended without a result")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def start_room(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a MULTICAST room's task, which lives as long as the room."""
        if self._tasks is None:
            raise RuntimeError("WebSocket services are not running")
        self._tasks.start_soon(func)
