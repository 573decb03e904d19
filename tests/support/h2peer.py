"""A client-role h2 peer for HTTP/2 tests, free to send what real clients never do.

`H2Peer` wraps an `h2` client connection around an anyio byte stream and
records what the server answers, stream by stream. Its h2 validates what
the server sends (a malformed answer raises), but not what the test sends:
headers go out as given, and `frame()` builds any frame byte by byte.

h2 stops processing a connection once a GOAWAY arrives; RFC 9113 6.8 says
the streams up to its last stream id still finish, so the peer's state
machine is widened to keep receiving (and sending) after one.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

from skitai.config import Limits
from skitai.protocols.http2 import AFTER_GOAWAY, HTTP2Connection
from skitai.protocols.timeouts import ConnectionControl, sweep, sweep_interval

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


Headers = Sequence[tuple[bytes, bytes]]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw frame: 9-byte header and payload, nothing checked."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def literal_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A header block that leaves both HPACK tables as they are (never-indexed literals)."""
    return hpack.Encoder().encode([(name, value, True) for name, value in headers])


@dataclass
class StreamResult:
    """What the server sent on one stream."""

    headers: list[tuple[bytes, bytes]] | None = None
    data: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: int | None = None  # the error code of the server's RST_STREAM

    @property
    def status(self) -> int:
        assert self.headers is not None, "no response headers"
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        assert self.headers is not None, "no response headers"
        return dict(self.headers).get(name)

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class _Unlimited(h2.connection.H2Connection):
    """h2, minus its refusal to open more streams than the server allows."""

    @property
    def open_outbound_streams(self) -> int:
        super().open_outbound_streams  # noqa: B018 - it also forgets closed streams
        return 0


class H2Peer:
    """An h2 client connection over one byte stream."""

    def __init__(
        self, stream: anyio.abc.ByteStream, *, settings: dict[int, int] | None = None,
        auto_ack: bool = True,
    ) -> None:
        self.stream = stream
        self.conn = _Unlimited(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False,
        ))
        self.conn.state_machine._transitions = {**self.conn.state_machine._transitions,
                                                **AFTER_GOAWAY}
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.auto_ack = auto_ack  # give received data back to the server's window at once
        self.streams: dict[int, StreamResult] = {}
        self.server_settings: dict[int, int] = {}
        self.settings_acked = False
        self.window_updates: list[tuple[int, int]] = []  # (stream id, increment)
        self.pings: list[bytes] = []
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self._unscanned = bytearray()  # received bytes not yet cut into frames

    @classmethod
    async def connect(
        cls, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, **options: Any
    ) -> H2Peer:
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(
            host, port, ssl_context=ssl_context, tls=ssl_context is not None,
            tls_standard_compatible=False,
        )
        return cls(stream, **options)

    async def start(self, *, wait: bool = True) -> H2Peer:
        """Preface and SETTINGS; then, unless told not to, wait for the server's and its ACK."""
        self.conn.initiate_connection()
        await self.flush()
        if wait:
            await self.wait_until(lambda: bool(self.server_settings) and self.settings_acked)
        return self

    async def aclose(self) -> None:
        await self.stream.aclose()

    # ----------------------------------------------------------- sending

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)

    async def send_raw(self, data: bytes) -> None:
        await self.flush()
        await self.stream.send(data)

    async def request(
        self, method: bytes = b"GET", path: bytes = b"/", headers: Headers = (), *,
        body: bytes | None = None, end_stream: bool = True, stream_id: int | None = None,
    ) -> int:
        """Open a stream with the usual pseudo-headers and `headers`; send `body` if given."""
        sid = stream_id or self.conn.get_next_available_stream_id()
        self.streams[sid] = StreamResult()
        head = [(b":method", method), (b":path", path), (b":scheme", b"http"),
                (b":authority", b"localhost"), *headers]
        self.conn.send_headers(sid, head, end_stream=end_stream and body is None)
        await self.flush()
        if body is not None:
            await self.send_body(sid, body, end_stream=end_stream)
        return sid

    async def header_block(
        self, headers: Headers, *, end_stream: bool = True, stream_id: int | None = None
    ) -> tuple[int, bytes]:
        """Open a stream in h2 but keep its HEADERS unsent: (stream id, the encoded block).

        The block comes from h2's own encoder, so both HPACK tables stay in step
        once the test sends it, framed however it likes.
        """
        await self.flush()
        sid = stream_id or self.conn.get_next_available_stream_id()
        self.streams[sid] = StreamResult()
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        raw = self.conn.data_to_send()
        assert raw[3] == HEADERS and len(raw) == 9 + int.from_bytes(raw[:3], "big"), raw[:9]
        return sid, raw[9:]

    async def send_body(self, sid: int, data: bytes, *, end_stream: bool = True) -> None:
        """Send `data` as the server's windows allow, waiting for WINDOW_UPDATEs."""
        view = memoryview(data)
        conn = self.conn
        while view:
            if self.streams[sid].done or self.eof:
                raise EOFError(f"stream {sid} ended while its body was being sent")
            window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if window <= 0:
                await self.receive()
                continue
            conn.send_data(sid, bytes(view[:window]))
            view = view[window:]
            await self.flush()
        if end_stream:
            conn.end_stream(sid)
            await self.flush()

    async def ping(self, opaque: bytes = b"12345678") -> None:
        """A PING round trip: whatever was sent before it has been processed."""
        self.conn.ping(opaque)
        await self.flush()
        count = self.pings.count(opaque) + 1
        await self.wait_until(lambda: self.pings.count(opaque) >= count)

    # ----------------------------------------------------------- receiving

    async def receive(self) -> list[Any]:
        """One read: its events, recorded. An empty list at EOF."""
        try:
            data = await self.stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.eof = True
            return []
        self._scan_resets(data)
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise AssertionError(f"the server sent what h2 rejects: {exc!r}") from exc
        for event in events:
            self._record(event)
        await self.flush()
        return events

    def _scan_resets(self, data: bytes) -> None:
        """Note every RST_STREAM as sent: h2 drops those on streams it has closed."""
        buffer = self._unscanned
        buffer += data
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            if buffer[3] == RST_STREAM and length == 4:
                sid = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                result = self.streams.setdefault(sid, StreamResult())
                if result.reset is None:
                    result.reset = int.from_bytes(buffer[9:13], "big")
            del buffer[:9 + length]

    def _record(self, event: Any) -> None:
        sid = getattr(event, "stream_id", None)
        result = self.streams.setdefault(sid, StreamResult()) if sid else None
        if isinstance(event, h2.events.ResponseReceived):
            assert result is not None
            result.headers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            assert result is not None
            result.data += event.data
            if self.auto_ack and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            assert result is not None
            result.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            assert result is not None
            result.ended = True
        elif isinstance(event, h2.events.StreamReset):
            assert result is not None
            result.reset = int(event.error_code)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.server_settings.update({int(k): v.new_value for k, v in event.changed_settings.items()})
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_updates.append((event.stream_id, event.delta))
        elif isinstance(event, h2.events.PingAckReceived):
            self.pings.append(event.ping_data)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    async def wait_until(self, done: Callable[[], bool], within: float = 10) -> None:
        """Read until `done()`; EOFError if the server closes first."""
        with anyio.fail_after(within):
            while not done():
                if self.eof:
                    raise EOFError("the server closed the connection")
                await self.receive()

    async def response(self, sid: int, within: float = 10) -> StreamResult:
        """The stream's answer, once it ended or was reset."""
        result = self.streams.setdefault(sid, StreamResult())
        await self.wait_until(lambda: result.done, within)
        return result

    async def goaway(self, within: float = 10) -> h2.events.ConnectionTerminated | None:
        """Read until a GOAWAY arrives (returned) or the server closes (None)."""
        with anyio.fail_after(within):
            while self.terminated is None and not self.eof:
                await self.receive()
        return self.terminated

    async def read_to_eof(self, within: float = 10) -> None:
        with anyio.fail_after(within):
            while not self.eof:
                await self.receive()


async def get(host: str, port: int, path: bytes = b"/") -> StreamResult:
    """One GET on a fresh prior-knowledge connection."""
    peer = await H2Peer.connect(host, port)
    try:
        await peer.start()
        return await peer.response(await peer.request(b"GET", path))
    finally:
        await peer.aclose()


async def socket_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (await anyio.abc.SocketStream.from_socket(a),
            await anyio.abc.SocketStream.from_socket(b))


@asynccontextmanager
async def http2_driver(
    handler: Callable[[Any], Awaitable[None]], *, limits: Limits | None = None
) -> AsyncIterator[tuple[H2Peer, ConnectionControl]]:
    """Run an HTTP2Connection with `handler` on one end of a socket pair; yield a peer on the other.

    On exit the peer closes its end and the driver must be done within 5 s.
    """
    server_end, client_end = await socket_pair()
    control = ConnectionControl(1)
    limits = limits or Limits()
    driver = HTTP2Connection(
        server_end, handler, limits=limits, scheme="http", client=("127.0.0.1", 40000),
        server=("127.0.0.1", 5000), control=control, server_header=b"Skitai",
    )
    finished = anyio.Event()
    sweeper = anyio.CancelScope()

    async def run_sweeper() -> None:
        with sweeper:
            await sweep([control], sweep_interval(limits.keep_alive_timeout, limits.header_timeout,
                                                  limits.body_timeout, limits.send_timeout))

    async def run_driver() -> None:
        try:
            await driver.run()
        finally:
            finished.set()
            sweeper.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_sweeper)
        tg.start_soon(run_driver)
        peer = H2Peer(client_end)
        try:
            yield peer, control
        finally:
            await client_end.aclose()
            with anyio.fail_after(5):
                await finished.wait()
