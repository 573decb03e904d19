"""A connected pair of anyio socket streams (a kernel socketpair) for driver tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from skitai.config import Limits
from skitai.protocols import http11_driver as driver_for
from skitai.protocols.timeouts import ConnectionControl, sweep, sweep_interval
from tests.support.servers import HTTP_PARSER


async def socket_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (await anyio.abc.SocketStream.from_socket(a),
            await anyio.abc.SocketStream.from_socket(b))


@asynccontextmanager
async def http11_driver(
    handler: Callable[[Any], Awaitable[None]], *, limits: Limits | None = None
) -> AsyncIterator[tuple[anyio.abc.SocketStream, ConnectionControl]]:
    """Run an HTTP11Connection with `handler` on one end; yield the client end."""
    server_end, client_end = await socket_pair()
    control = ConnectionControl(1)
    limits = limits or Limits()
    driver = driver_for(HTTP_PARSER["name"])(
        server_end, handler, limits=limits, scheme="http",
        client=("127.0.0.1", 40000), server=("127.0.0.1", 5000), control=control,
        server_header=b"Skitai",
    )
    sweeper = anyio.CancelScope()

    async def run_sweeper() -> None:
        with sweeper:
            await sweep([control], sweep_interval(limits.keep_alive_timeout,
                                                  limits.header_timeout, limits.body_timeout))

    async def run_driver() -> None:
        try:
            await driver.run()
        finally:
            sweeper.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_sweeper)
        tg.start_soon(run_driver)
        try:
            yield client_end, control
        finally:
            await client_end.aclose()
