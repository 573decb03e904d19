"""Worker threads for blocking work, and the way back from them to the event loop.

Thread hops dominate the cost of serving a WSGI request (about 100 µs each
way on our machines, see docs/discussion/threads.md), so this module keeps
them few:

* `WorkerPool` queues jobs in a thread-safe deque and keeps at most `size`
  calls of `anyio.to_thread.run_sync` (under a `CapacityLimiter(size)`)
  draining it. Under load a thread runs job after job without going back
  to the loop in between.
* `LoopCallbacks` is the one-way road back: a worker thread queues a
  callback and, unless the loop has already been woken, writes one byte to
  a socket pair the loop listens on. Many completions share one wake-up.

Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from skitai.protocols.waits import Wakeup, wakeup_factory

log = logging.getLogger(__name__)

Job = Callable[[], None]


class LoopCallbacks:
    """Run callbacks on the event loop, queued from any thread, one way."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._pending: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._signalled = False
        self._closed = False
        self._new_wakeup: Callable[[], Wakeup] | None = None

    def new_wakeup(self) -> Wakeup:
        """A `Wakeup` for a task on the loop, for a callback from a worker to set."""
        if self._new_wakeup is None:
            self._new_wakeup = wakeup_factory()
        return self._new_wakeup()

    def call_soon(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue `func(*args)` to run on the loop. Safe from any thread."""
        self._pending.append((func, args))
        if not self._signalled:
            self._signalled = True
            try:
                self._writer.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # a full pipe already means a wake-up is coming; closed means shutdown

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver queued callbacks until cancelled. Run it as a task."""
        stream = await anyio.abc.SocketStream.from_socket(self._reader)
        task_status.started()
        try:
            while True:
                await stream.receive(4096)
                # Clear the flag before draining: a callback queued from now on
                # either lands in this drain or sends a fresh byte.
                self._signalled = False
                self.drain()
        finally:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            self._writer.close()

    def drain(self) -> None:
        pending = self._pending
        while pending:
            func, args = pending.popleft()
            try:
                func(*args)
            except Exception:
                log.exception("loop callback %r failed", func)


class WorkerPool:
    """Runs blocking jobs in at most `size` anyio worker threads.

    A job wakes a sleeping runner only when no runner is active; while one
    is, it picks new jobs up as it finishes old ones, so a burst of fast
    requests costs one trip into a thread, not one each. A watchdog wakes
    another runner when the queue has not moved for `STALL` seconds, so a
    slow app blocks only its own thread.
    """

    STALL = 0.002

    def __init__(self, size: int) -> None:
        self.size = size
        self.limiter = anyio.CapacityLimiter(size)
        self._jobs: deque[Job] = deque()
        self._idle: list[anyio.Event] = []
        self._active = 0
        self._taken = 0  # jobs picked up by threads; only compared, so races are harmless
        self._watch = anyio.Event()
        self._closed = False

    def submit(self, job: Job) -> None:
        """Queue a job; it must not raise (wrap its own errors). Loop thread only."""
        self._jobs.append(job)
        if self._active == 0:
            self._wake_runner()
        else:
            self._watch.set()

    def close(self) -> None:
        """Take no more jobs; threads still running a job stop after it."""
        self._closed = True
        self._jobs.clear()

    def statistics(self) -> dict[str, int]:
        return {"threads": self.size, "busy": self._active, "queued": len(self._jobs)}

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the runners going until cancelled. Run it as a task."""
        async with anyio.create_task_group() as tg:
            for _ in range(self.size):
                tg.start_soon(self._runner)
            tg.start_soon(self._watchdog)
            task_status.started()

    def _wake_runner(self) -> None:
        if self._idle:
            self._idle.pop().set()

    async def _watchdog(self) -> None:
        while True:
            await self._watch.wait()
            self._watch = anyio.Event()
            while self._jobs:
                taken = self._taken
                await anyio.sleep(self.STALL)
                if self._jobs and self._taken == taken:
                    self._wake_runner()

    async def _runner(self) -> None:
        while True:
            if not self._jobs:
                wake = anyio.Event()
                self._idle.append(wake)
                try:
                    await wake.wait()
                finally:
                    if wake in self._idle:
                        self._idle.remove(wake)
            self._active += 1
            try:
                # The runners are cancelled only once every connection has
                # finished or been cancelled at the grace deadline; an app
                # still running then is left to finish on its own thread.
                await anyio.to_thread.run_sync(self._drain, limiter=self.limiter,
                                               abandon_on_cancel=True)
            finally:
                self._active -= 1

    def _drain(self) -> None:
        jobs = self._jobs
        while not self._closed:
            try:
                job = jobs.popleft()
            except IndexError:
                return
            self._taken += 1
            try:
                job()
            except Exception:
                log.exception("worker job %r raised", job)
