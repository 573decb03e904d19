"""One conversation with the HTTP/1.1 driver: bytes in, bytes out, nothing left over.

The driver runs on one end of a kernel socket pair, over Skitai's own
`SocketStream`, as it does behind a listener. The client sends the bytes in
the given pieces, half-closes, and reads until the server closes. On the
server side the stream ends each read at a piece boundary, so the driver sees
exactly those pieces, however the kernel and the scheduler group them; that
makes an answer a function of the bytes and the split alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio
import anyio.abc
import anyio.lowlevel

from skitai.config import Limits
from skitai.protocols import http11_driver
from skitai.protocols.events import Exchange
from skitai.protocols.sockets import SocketStream
from skitai.protocols.timeouts import ConnectionControl

BACKENDS = ("asyncio", "trio")
# Far above what any conversation needs: the client half-closes, so the
# driver never has a reason to wait. Reaching it means a hang.
CONVERSATION_TIMEOUT = 10.0
# Limits small enough for short inputs to reach every check, and timeouts
# long enough never to expire within a conversation (expiry is timing, not parsing).
SMALL_LIMITS = Limits(max_request_line=64, max_header_line=96, max_headers=8,
                      max_header_block=160, max_body_size=48,
                      header_timeout=60, body_timeout=60, keep_alive_timeout=60)
DEFAULT_LIMITS = Limits(header_timeout=60, body_timeout=60, keep_alive_timeout=60)
HANDLER_STATUSES = frozenset({200, 405})  # what the test handlers answer


def digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=6).hexdigest()


async def echo(exchange: Exchange) -> None:
    """Reads the whole body, then answers with a digest of everything it was given."""
    body = bytearray()
    while chunk := await exchange.receive_body(65536):
        body += chunk
    await _answer_with_digest(exchange, bytes(body))


async def no_read(exchange: Exchange) -> None:
    """Answers at once and leaves the body to the driver, as a 404 page would."""
    await _answer_with_digest(exchange, None)


async def _answer_with_digest(exchange: Exchange, body: bytes | None) -> None:
    request = exchange.request
    seen = digest(request.method, request.target, request.http_version, request.headers, body)
    echoed = f"{request.method} {seen} {-1 if body is None else len(body)}".encode("latin-1")
    # A 2xx to CONNECT would turn the connection into a tunnel; like
    # skitai.handler, refuse it.
    status = 405 if request.method == "CONNECT" else 200
    await exchange.respond(status, [(b"X-Echo", echoed)], echoed)


HANDLERS = {"echo": echo, "no_read": no_read}


class Pieces(anyio.abc.ByteStream):
    """A byte stream whose reads end where the pieces the peer sent end."""

    def __init__(self, stream: anyio.abc.ByteStream, sizes: Sequence[int]) -> None:
        self._stream = stream
        self._sizes = deque(sizes)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        sizes = self._sizes
        data = await self._stream.receive(min(max_bytes, sizes[0]) if sizes else max_bytes)
        if sizes:
            sizes[0] -= len(data)
            if sizes[0] <= 0:
                sizes.popleft()
        return data

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


def pieces_of(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """`data` cut after each size in turn; what is left over is the last piece."""
    out = []
    at = 0
    for size in sizes:
        if at >= len(data):
            break
        out.append(data[at : at + size])
        at += size
    if at < len(data):
        out.append(data[at:])
    return [piece for piece in out if piece]


PARSERS = ("h11", "httptools")


async def converse(pieces: Sequence[bytes], handler_name: str, limits: Limits, parser: str) -> bytes:
    """Everything the server sent until it closed, after it was sent `pieces` and EOF."""
    server_sock, client_sock = socket.socketpair()
    server_end = SocketStream(server_sock)
    client_end = SocketStream(client_sock)
    ended: list[ConnectionControl] = []
    control = ConnectionControl(1, on_close=ended.append)
    driver = http11_driver(parser)(
        Pieces(server_end, [len(piece) for piece in pieces]), HANDLERS[handler_name],
        limits=limits, scheme="http", client=("127.0.0.1", 40000), server=("127.0.0.1", 8080),
        control=control, server_header=b"Skitai",
    )
    received = await talk(driver.run, client_end, pieces)
    assert ended == [control], "the driver did not report its close"
    assert server_sock.fileno() == -1, "the driver left its socket open"
    return received


async def talk(
    serve: Callable[[], Awaitable[None]], client_end: SocketStream, pieces: Sequence[bytes]
) -> bytes:
    """Run `serve` while the client sends `pieces` and EOF; all it received once the server closed.

    Fails when the server does not close within CONVERSATION_TIMEOUT or leaves a task running.
    """
    tasks_before = len(anyio.get_running_tasks())
    received = bytearray()
    try:
        with anyio.fail_after(CONVERSATION_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve)
                tg.start_soon(_send, client_end, pieces)
                await _receive_all(client_end, received)
    except TimeoutError:
        raise AssertionError(f"no close within {CONVERSATION_TIMEOUT} s; "
                             f"received {bytes(received)[:200]!r}") from None
    finally:
        await client_end.aclose()
    assert len(anyio.get_running_tasks()) == tasks_before, "tasks left running"
    return bytes(received)


async def _send(stream: anyio.abc.ByteStream, pieces: Sequence[bytes]) -> None:
    try:
        for piece in pieces:
            await stream.send(piece)
            await anyio.lowlevel.checkpoint()  # let the driver read it alone
        await stream.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the server answered and closed before reading everything


async def _receive_all(stream: anyio.abc.ByteStream, received: bytearray) -> None:
    while True:
        try:
            received += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return  # a reset comes after all the data that arrived before it


# ---------------------------------------------------------------- leftovers


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def driver_errors() -> Iterator[list[logging.LogRecord]]:
    """The driver's ERROR records (crashes) while the block runs; its warnings are dropped.

    Every rejected request logs a warning, which is expected here and would
    only fill pytest's log capture during a long run.
    """
    logger = logging.getLogger("skitai.server")
    collector = _Collector()
    level = logger.level
    logger.setLevel(logging.ERROR)
    logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)


def converse_cleanly(backend: str, pieces: Sequence[bytes], handler_name: str,
                     limits: Limits, parser: str) -> bytes:
    """`converse` in its own event loop, then check nothing of it is left in the process."""
    fds_before = open_fds()
    threads_before = set(threading.enumerate())
    with driver_errors() as errors:
        output = anyio.run(converse, pieces, handler_name, limits, parser, backend=backend)
    assert not errors, "the driver failed: " + "; ".join(r.getMessage() for r in errors)
    new_threads = set(threading.enumerate()) - threads_before
    assert not new_threads, f"threads left behind: {new_threads}"
    assert open_fds() == fds_before, f"file descriptors: {fds_before} before, {open_fds()} after"
    return output
