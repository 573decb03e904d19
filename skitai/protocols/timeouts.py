"""Connection timeouts without a cancel scope per wait.

Arming a cancel scope with a deadline for every read and write costs more
than the rest of a small request's I/O. Instead a connection notes what it
is waiting for (`phase`) and until when (`deadline`, on `time.monotonic()`);
one sweeper task per server looks at every connection a few times a second
and cancels the scope of those whose deadline has passed. Timeouts are
therefore honoured within one sweep interval.

A connection whose reading and writing are separate tasks (HTTP/2) keeps
its write deadline apart (`arm_send`), so a write never takes the place of
the deadline the reader waits under, nor the reader's of the writer's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import anyio

IDLE = "idle"  # between requests: expiry closes silently
HEAD = "head"  # a request head is arriving: expiry answers 408
BODY = "body"  # waiting for more of a request body: 408 if no response yet
SEND = "send"  # the client is not reading what we write: expiry drops it


class ConnectionControl:
    """What the server and the sweeper can ask of one live connection."""

    __slots__ = (
        "deadline", "draining", "expired", "idle", "number", "on_close", "on_drain", "phase", "scope",
        "send_deadline",
    )

    def __init__(self, number: int, on_close: Callable[[ConnectionControl], None] | None = None) -> None:
        self.number = number
        self.on_close = on_close  # called once the connection is closed
        self.on_drain: Callable[[], None] | None = None  # a driver's own graceful stop
        self.scope = anyio.CancelScope()  # covers the connection's whole life
        self.draining = False  # finish the current response, then close
        self.idle = False  # waiting for the next request: safe to close at once
        self.phase: str | None = None
        self.deadline = math.inf
        self.send_deadline = math.inf  # a write of a writer task, beside `deadline`
        self.expired: str | None = None  # the phase whose deadline passed

    def renew(self) -> None:
        """A fresh scope for a driver that takes over this connection."""
        if not self.scope.cancel_called:
            self.scope = anyio.CancelScope()

    def arm(self, phase: str, timeout: float) -> None:
        self.phase = phase
        self.deadline = time.monotonic() + timeout if timeout else math.inf

    def disarm(self) -> None:
        self.deadline = math.inf

    def arm_send(self, timeout: float) -> None:
        """A write's deadline, kept apart from the phase's; expiry is SEND."""
        self.send_deadline = time.monotonic() + timeout if timeout else math.inf

    def disarm_send(self) -> None:
        self.send_deadline = math.inf

    def drain(self) -> None:
        self.draining = True
        if self.idle:
            self.scope.cancel()
        elif self.on_drain is not None:
            self.on_drain()

    def check(self, now: float) -> None:
        if now >= self.deadline:
            self.expired = self.phase
        elif now >= self.send_deadline:
            self.expired = SEND
        else:
            return
        self.deadline = self.send_deadline = math.inf
        self.scope.cancel()


def sweep_interval(*timeouts: float) -> float:
    """A quarter of the shortest timeout, within 50 ms and 500 ms."""
    shortest = min((t for t in timeouts if t > 0), default=2.0)
    return min(0.5, max(0.05, shortest / 4))


async def sweep(controls: Iterable[ConnectionControl], interval: float) -> None:
    """Expire connections whose deadline has passed, until cancelled."""
    while True:
        await anyio.sleep(interval)
        now = time.monotonic()
        for control in list(controls):
            control.check(now)
