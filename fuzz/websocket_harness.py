"""One conversation with the WebSocket driver: frames in, frames out, nothing left over.

The driver runs an echo app (as `serve` runs async handlers) on one end of
a kernel socket pair, over Skitai's own `SocketStream` read in exactly the
pieces the client sent (see harness.Pieces). The client sends its bytes,
half-closes and reads until the server closes; what the server sent is
decoded by a client-role wsproto, which fails on anything malformed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from fuzz.harness import Pieces, driver_errors, open_fds, talk
from skitai.config import Limits
from skitai.errors import ClientDisconnected, WebSocketClosed
from skitai.protocols.sockets import SocketStream
from skitai.protocols.websocket import WebSocketConnection

Data = str | bytes

# Timers never fire here (nothing calls check()); limits small enough to reach.
SMALL_LIMITS = Limits(websocket_max_message=200, websocket_max_frame=120, websocket_queue=256)
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Outcome:
    """What the server sent: messages, pongs (payloads), and its close code (None: no close)."""

    messages: tuple[Data, ...]
    pongs: tuple[bytes, ...]
    close: int | None


class StreamTunnel:
    """A byte stream as the `Tunnel` of an upgraded connection."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream

    async def receive(self) -> bytes:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return b""

    async def send(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise ClientDisconnected(str(exc)) from exc

    async def end(self) -> None:
        """The connection is closed after the session, as the HTTP/1.1 driver does."""


def deflate() -> list[Extension]:
    extension = PerMessageDeflate()
    extension.finalize("permessage-deflate")  # as if negotiated
    return [extension]


async def converse(pieces: Sequence[bytes], limits: Limits, compressed: bool) -> bytes:
    server_sock, client_sock = socket.socketpair()
    server_end = SocketStream(server_sock)
    client_end = SocketStream(client_sock)
    conn = WebSocketConnection(StreamTunnel(Pieces(server_end, [len(p) for p in pieces])),
                               limits=limits, extensions=deflate() if compressed else [])

    async def echo() -> None:
        try:
            while True:
                await conn.send(await conn.receive())
        except WebSocketClosed:
            pass

    async def serve() -> None:
        try:
            await conn.serve(echo)
        finally:
            await server_end.aclose()

    received = await talk(serve, client_end, pieces)
    assert server_sock.fileno() == -1, "the server's socket was left open"
    assert conn.stats.close_code is not None, "the session did not report a close code"
    return received


def converse_cleanly(backend: str, pieces: Sequence[bytes], limits: Limits, compressed: bool) -> bytes:
    fds_before = open_fds()
    threads_before = set(threading.enumerate())
    with driver_errors() as errors:
        output = anyio.run(converse, pieces, limits, compressed, backend=backend)
    assert not errors, "the driver failed: " + "; ".join(r.getMessage() for r in errors)
    assert not set(threading.enumerate()) - threads_before, "threads left behind"
    assert open_fds() == fds_before, f"file descriptors: {fds_before} before, {open_fds()} after"
    return output


def decode(output: bytes, compressed: bool) -> Outcome:
    """The server's frames as a client sees them; AssertionError if they are not valid."""
    client = Connection(ConnectionType.CLIENT, deflate() if compressed else [])
    client.receive_data(output)
    messages: list[Data] = []
    pongs: list[bytes] = []
    parts: list[Data] = []
    close = None
    for event in client.events():
        if isinstance(event, TextMessage | BytesMessage):
            parts.append(event.data)
            if event.message_finished:
                messages.append(_joined(parts))
                parts = []
        elif isinstance(event, Pong):
            pongs.append(bytes(event.payload))
        elif isinstance(event, Ping):
            raise AssertionError("the server pinged without a timer")
        elif isinstance(event, CloseConnection):
            # a close frame puts wsproto in REMOTE_CLOSING; frames it refuses leave it OPEN
            assert client.state is ConnectionState.REMOTE_CLOSING, f"bad frames: {event.reason}"
            close = event.code
    assert not parts, "a message left unfinished"
    return Outcome(tuple(messages), tuple(pongs), close)


def reference(data: bytes, compressed: bool) -> tuple[list[Data], int | None, int | None]:
    """What a plain wsproto server reads from `data`: the complete messages up to its
    first close, the client's close code if that close is the client's own, and the
    code wsproto fails with if a protocol error comes first."""
    server = Connection(ConnectionType.SERVER, deflate() if compressed else [])
    server.receive_data(data)
    messages: list[Data] = []
    parts: list[Data] = []
    for event in server.events():
        if isinstance(event, TextMessage | BytesMessage):
            parts.append(event.data)
            if event.message_finished:
                messages.append(_joined(parts))
                parts = []
        elif isinstance(event, CloseConnection):
            if server.state is ConnectionState.REMOTE_CLOSING:
                return messages, event.code, None
            return messages, None, event.code
    return messages, None, None


def _joined(parts: list[Data]) -> Data:
    if isinstance(parts[0], str):
        return "".join(str(part) for part in parts)
    return b"".join(bytes(part) for part in parts)  # type: ignore[arg-type]
