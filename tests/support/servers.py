"""Run a Skitai server inside a test's event loop, on an ephemeral port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

import skitai
from skitai.server import Server, prepare


@dataclass
class Served:
    server: Server
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


# The HTTP/1.1 parser serving() uses unless told otherwise; a conftest may switch it.
HTTP_PARSER = {"name": "auto"}
FD_SETTLE_STEPS = 100  # looks, 20 ms apart, while in-process clients close their sockets


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[Served]:
    """Serve `skitai.Config(**options)` (port 0 unless given) while the block runs.

    On exit the server is stopped gracefully and checked for leaks: no
    connection left open, no worker busy, no file descriptor left over.
    """
    options.setdefault("port", 0)
    options.setdefault("http_parser", HTTP_PARSER["name"])
    config = skitai.Config.from_options(options)
    server = Server(config, await anyio.to_thread.run_sync(prepare, config))
    fds_before = open_fds()
    async with anyio.create_task_group() as tg:
        addresses = await tg.start(lambda task_status: server.run(task_status=task_status))
        host, port = addresses[0]
        try:
            yield Served(server, host, port)
        finally:
            tg.cancel_scope.cancel()
    assert server.connection_count == 0, "connections left open"
    assert server.pool.statistics()["busy"] == 0, "worker threads left busy"
    # The listener, the wake-up socket pair and every connection are closed. Clients
    # in this process may close theirs a moment later (grpcio does so on its own
    # threads after channel.close()): a leak is what is still open after that.
    for _ in range(FD_SETTLE_STEPS):
        if open_fds() <= fds_before:
            break
        await anyio.sleep(0.02)
    assert open_fds() <= fds_before, f"file descriptors leaked: {open_fds() - fds_before}"
