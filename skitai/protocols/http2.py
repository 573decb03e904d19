"""HTTP/2 server driver on h2.

Theory: the connection task reads frames and feeds h2; each request
becomes a `Stream` served by its own task in the connection's task group,
through the same `Exchange` interface as HTTP/1.1, so WSGI, static files
and the access log need nothing of HTTP/2. Every task talks to the one h2
state machine (all on the event loop thread, so no lock is needed for it)
and then asks the connection's one writer task to send what h2 has queued;
the writer takes everything pending at once, so the frames of many streams
leave in one write. A stream that has queued more than `WRITE_AHEAD` bytes
waits until they are written.

A WebSocket over HTTP/2 (RFC 8441) is an extended CONNECT with `:protocol`
websocket, allowed by SETTINGS_ENABLE_CONNECT_PROTOCOL: its exchange
switches protocols by answering 200 and goes on as a `StreamTunnel`, the
stream's DATA frames both ways.

Flow control is honoured both ways. A stream's received data is
acknowledged (its window reopened) only as the app reads it, so a slow app
slows its client, and the server never holds more of a body than the
windows it advertised. Response data goes out in pieces no larger than the
stream's and the connection's windows allow; a stream waits for a
WINDOW_UPDATE, and a send does not return before its bytes are written.

h2 refuses a stream over the advertised SETTINGS_MAX_CONCURRENT_STREAMS by
killing the whole connection, before it has decoded the stream's headers
(hypercorn#335). `_H2Connection` keeps h2 from counting, and the driver
refuses just that stream with REFUSED_STREAM (RFC 9113 5.1.2 allows either).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
from h2.connection import ConnectionInputs, ConnectionState
from h2.errors import ErrorCodes

from skitai.config import Limits
from skitai.errors import (
    BodyTooLarge,
    ClientDisconnected,
    MalformedRequest,
    RemoteProtocolError,
    RequestTimeout,
)
from skitai.protocols.events import Exchange, ExchangeStats, Headers, Request, Tunnel
from skitai.protocols.headers import DATE
from skitai.protocols.hpack_coders import Decoder, Encoder
from skitai.protocols.http1_rules import READ_SIZE, peer, split_target
from skitai.protocols.http2_request import check_trailers, to_request
from skitai.protocols.timeouts import IDLE, ConnectionControl
from skitai.protocols.waits import Wakeup, wakeup_factory

log = logging.getLogger("skitai.server")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS, _ACK = 0x4, 0x1  # frame type and flag (RFC 9113 6.5)
MAX_CONCURRENT_STREAMS = 100
_FORGET_AFTER = 2 * MAX_CONCURRENT_STREAMS  # h2 stream objects kept before closed ones are dropped
# The connection-level request window; each stream's starts at the SETTINGS value.
CONNECTION_WINDOW = 1 << 24
STREAM_WINDOW = 1 << 20
WRITE_AHEAD = 1 << 18  # queued response bytes after which a stream waits for the writer
# Request headers a pushed request inherits from the one that promised it.
_PUSHED_HEADERS = frozenset({b"accept-encoding", b"accept-language", b"cookie", b"user-agent"})
_CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

Handler = Callable[[Exchange], Awaitable[None]]
StreamWork = Callable[["Stream", Any], Coroutine[Any, Any, None]]


# h2 refuses every frame once a GOAWAY has been sent or received; RFC 9113
# 6.8 wants the streams up to the GOAWAY's last stream id served to their
# end, so after it every input stays valid (new streams are refused by the
# driver).
AFTER_GOAWAY: dict[tuple[ConnectionState, ConnectionInputs], tuple[None, ConnectionState]] = {
    (ConnectionState.CLOSED, event): (None, ConnectionState.CLOSED)
    for event in ConnectionInputs
    if event not in (ConnectionInputs.SEND_PUSH_PROMISE, ConnectionInputs.SEND_ALTERNATIVE_SERVICE)
}


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


def upgrade_settings_valid(value: bytes) -> bool:
    """An HTTP2-Settings value (RFC 7540 3.2.1) that is base64url of whole, valid settings.

    Checked before the 101 of an h2c upgrade, so a malformed one is no
    reason to switch protocols (3.2.1 says not to) instead of a failure after it.
    """
    if not _BASE64URL.fullmatch(value):
        return False
    try:
        payload = base64.urlsafe_b64decode(value)
    except binascii.Error:
        return False
    if len(payload) % 6:
        return False
    settings = h2.settings.Settings(client=True)
    try:
        for offset in range(0, len(payload), 6):
            code, number = struct.unpack_from(">HI", payload, offset)
            settings[code] = number  # h2 refuses a value out of range
    except h2.exceptions.InvalidSettingsValueError:
        return False
    return True


class _FrameBuffer(h2.frame_buffer.FrameBuffer):
    """RFC 9113 6.5: a SETTINGS ACK with a payload is a FRAME_SIZE_ERROR (h2 says PROTOCOL_ERROR)."""

    def __next__(self) -> Any:
        data = self._data
        if len(data) >= 9 and data[3] == _SETTINGS and data[4] & _ACK and data[:3] != b"\0\0\0":
            raise h2.exceptions.FrameDataMissingError("SETTINGS ACK with a payload")
        return super().__next__()


class _H2Connection(h2.connection.H2Connection):
    """h2, minus its connection-killing check of the inbound stream limit,
    and still working after a GOAWAY."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        machine = self.state_machine
        machine._transitions = {**machine._transitions, **AFTER_GOAWAY}
        self.incoming_buffer = _FrameBuffer(server=not config.client_side)
        decoder = Decoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        self.decoder = decoder
        self.encoder = Encoder()

    def clear_outbound_data_buffer(self) -> None:
        """Keep what is queued when a GOAWAY arrives (h2 would drop it).

        The client's GOAWAY still lets the streams up to its last stream id
        finish (RFC 9113 6.8), and our own SETTINGS may still be unsent.
        """

    @property
    def open_inbound_streams(self) -> int:
        # h2 asks on every new stream; counting also forgets closed streams,
        # a walk over all of them, so do that only once enough have gathered.
        if len(self.streams) > _FORGET_AFTER:
            super().open_inbound_streams  # noqa: B018
        return 0


class Stream:
    """The receiving side of one HTTP/2 stream: its body as it arrives."""

    __slots__ = ("body", "ended", "exchange", "id", "reset", "scope", "tunneled", "waiting")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.body: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled length)
        self.ended = False
        self.reset = False
        self.waiting: anyio.Event | None = None  # for data, the end, a reset or window
        self.scope: anyio.CancelScope | None = None  # its work, while it runs
        self.tunneled = False  # it carries another protocol, which learns of a reset as its EOF
        self.exchange: HTTP2Exchange | None = None
        self.tunneled = False  # it carries another protocol, which learns of a reset as its EOF

    def signal(self) -> None:
        if self.waiting is not None:
            self.waiting.set()

    def cancel(self) -> None:
        """Stop the stream's work (RST_STREAM); work not yet started never starts."""
        self.reset = True
        if self.scope is not None and not self.tunneled:
            self.scope.cancel()
        self.signal()

    async def wait(self) -> None:
        self.waiting = anyio.Event()
        try:
            await self.waiting.wait()
        finally:
            self.waiting = None


class HTTP2Connection:
    """Serves HTTP/2 on one byte stream until either side closes it."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        handler: Handler,
        *,
        limits: Limits,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int],
        control: ConnectionControl,
        server_header: bytes,
        initial_data: bytes = b"",
        upgrade: tuple[bytes, Request, bytes] | None = None,
    ) -> None:
        self._stream = stream
        self._handler = handler
        self._limits = limits
        self._scheme = scheme
        self._client = client
        self._server = server
        self.control = control
        self._server_header = server_header
        self._initial_data = initial_data
        self._upgrade = upgrade  # (HTTP2-Settings, the request, its body) of an h2c upgrade
        self._h2 = _H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False,
            normalize_inbound_headers=False,  # checked in http2_request, in one pass
        ))
        self._streams: dict[int, Stream] = {}
        self._new_wakeup = wakeup_factory()
        self._write_wanted = self._new_wakeup()  # the writer's: something is queued
        self._write_done = anyio.Event()  # for every flush() of a batch: replaced per batch
        self._queued_writes = 0  # flush() calls made
        self._written = 0  # flush() calls whose data has been written
        self._writer_gone = False
        self._closed = False
        self.unwritten = 0  # response bytes queued in h2 since the writer last took them
        self._tasks: anyio.abc.TaskGroup | None = None
        self._last_stream = 0
        self._client_streams = 0  # streams the client opened that are still served
        self._requests = 0
        self._closing = False
        self._goaway_sent = False
        self._reading: anyio.CancelScope | None = None  # the reader's wait for frames
        self._queued: deque[tuple[StreamWork, Stream, Any]] = deque()  # streams to serve
        self._parked: list[Wakeup] = []  # stream tasks waiting for the next stream

    # -------------------------------------------------------------- I/O

    def write_soon(self) -> None:
        """Have the writer send what h2 has queued. Never waits."""
        self._write_wanted.set()

    async def flush(self) -> None:
        """Have the writer send what h2 has queued, and wait until it is written."""
        wanted = self._queued_writes = self._queued_writes + 1
        self._write_wanted.set()
        while self._written < wanted and not self._writer_gone:
            waiter = self._write_done
            await waiter.wait()
        if self._writer_gone:
            raise ClientDisconnected("the connection is closed")

    async def _writer(self) -> None:
        """The one task that writes to the socket."""
        control = self.control
        try:
            while True:
                await self._write_wanted.wait()
                # Let every task that is ready queue its frames first.
                await anyio.lowlevel.checkpoint()
                batch = self._queued_writes
                data = self._h2.data_to_send()
                self.unwritten = 0
                if data:
                    # Its own deadline: the reader's (idle) one stands meanwhile.
                    control.arm_send(self._limits.send_timeout)
                    try:
                        await self._stream.send(data)
                    finally:
                        control.disarm_send()
                self._written = batch
                done, self._write_done = self._write_done, anyio.Event()
                done.set()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            pass  # the client is gone; the reader sees it too
        finally:
            self._writer_gone = True
            self._write_done.set()

    async def _write_now(self) -> None:
        """Send what is queued from the calling task; only once the writer has stopped."""
        data = self._h2.data_to_send()
        if data and not self._closed:
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
                pass

    # -------------------------------------------------------------- main loop

    async def run(self) -> None:
        """Serve until the connection ends. Never raises, except cancellation."""
        control = self.control
        control.on_drain = self._drain
        try:
            with control.scope:
                async with anyio.create_task_group() as writing:
                    writing.start_soon(self._writer)
                    async with anyio.create_task_group() as tasks:
                        self._tasks = tasks
                        try:
                            await self._start()
                            await self._read_frames()
                        except ClientDisconnected:
                            pass
                        finally:
                            self._closing = True
                            self._release_parked()
                    self._tasks = None
                    with suppress(ClientDisconnected):
                        await self.flush()  # what the last streams queued
                    writing.cancel_scope.cancel()
        except Exception:
            log.exception("connection %d failed", control.number)
        finally:
            with anyio.CancelScope(shield=True):
                if control.expired == IDLE or (control.draining and not self._goaway_sent):
                    await self._goaway(ErrorCodes.NO_ERROR)
                elif self._goaway_sent and control.expired is None:
                    with anyio.move_on_after(1):
                        await self._write_now()  # a GOAWAY queued as the writer stopped
                self._closed = True
                await self._stream.aclose()
            if control.on_close is not None:
                control.on_close(control)

    async def _start(self) -> None:
        h = self._h2
        h.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self._limits.max_header_block,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,  # WebSocket, RFC 8441
        })
        if self._upgrade is not None:
            settings, request, body = self._upgrade
            h.initiate_upgrade_connection(settings)
            self._serve_upgraded(request, body)
        else:
            h.initiate_connection()
        h.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.write_soon()
        if self._initial_data:
            await self._feed(self._initial_data)

    def _drain(self) -> None:
        """Graceful stop: GOAWAY now, then serve the streams in flight to their end.

        Synchronous: the server's shutdown calls it at any point of the
        connection's life, even while its task group is closing, so it only
        queues the frame for the writer. Once the writer is gone, run()'s
        ending sends the GOAWAY itself.
        """
        if self._goaway_sent or self._writer_gone or self._closed:
            return
        self._goaway_sent = True
        try:
            self._h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=self._last_stream)
        except h2.exceptions.ProtocolError:
            return
        self.write_soon()

    async def _read_frames(self) -> None:
        """Read until EOF, or until no stream is left once the connection is ending.

        Reading goes on while streams are in flight, even after a GOAWAY:
        they need the client's WINDOW_UPDATEs and the rest of their bodies.
        """
        control = self.control
        limits = self._limits
        while True:
            if not self._streams:
                self._release_parked()
                if self._closing or control.draining:
                    return
                control.idle = True
                control.arm(IDLE, limits.keep_alive_timeout)
            data: bytes | None = None
            with anyio.CancelScope() as self._reading:
                try:
                    data = await self._stream.receive(READ_SIZE)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                        OSError):
                    data = b""
                finally:
                    control.idle = False
                    control.disarm()
            self._reading = None
            if data is None:
                continue  # the last stream of an ending connection is done
            if not data:
                self._closing = True
                for stream in list(self._streams.values()):
                    if not stream.ended:  # the rest of its body will never come
                        stream.reset = True
                        stream.signal()
                return
            await self._feed(data)

    async def _feed(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued the GOAWAY with the right code (except for a bad
            # preface, which it rejects before looking at frames): send it, end everything.
            log.warning("%s HTTP/2 protocol error: %s", peer(self._client), exc)
            if self._h2.state_machine.state is not ConnectionState.CLOSED:
                self._h2.close_connection(exc.error_code)
            self._closing = True
            self._goaway_sent = True
            await self.flush()
            assert self._tasks is not None
            self._tasks.cancel_scope.cancel()
            return
        for event in events:
            self._dispatch(event)
        self.write_soon()

    def _dispatch(self, event: Any) -> None:
        kind = type(event)
        if kind is h2.events.RequestReceived:
            self._open_stream(event)
        elif kind is h2.events.DataReceived:
            self._receive_data(event)
        elif kind is h2.events.StreamEnded:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                stream.signal()
        elif kind is h2.events.StreamReset:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.cancel()
        elif kind is h2.events.WindowUpdated or kind is h2.events.RemoteSettingsChanged:
            self._open_windows(getattr(event, "stream_id", 0))
        elif kind is h2.events.ConnectionTerminated:
            self._closing = True
        elif kind is h2.events.TrailersReceived:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                try:
                    check_trailers(event.headers)
                except MalformedRequest as exc:
                    log.warning("%s stream %d: %s", peer(self._client), stream.id, exc)
                    self._reset(stream, ErrorCodes.PROTOCOL_ERROR)
                    stream.cancel()
                stream.ended = True
                stream.signal()

    def _open_windows(self, stream_id: int) -> None:
        streams = self._streams.values() if stream_id == 0 else [self._streams.get(stream_id)]
        for stream in streams:
            if stream is not None:
                stream.signal()

    def _receive_data(self, event: h2.events.DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.reset:
            # nobody will read it: give the window back at once
            if event.flow_controlled_length:
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        stream.body.append((event.data, event.flow_controlled_length))
        if event.stream_ended is not None:
            stream.ended = True
        stream.signal()

    # -------------------------------------------------------------- streams

    def _open_stream(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        self._last_stream = max(self._last_stream, stream_id)
        if self._closing or self.control.draining or self._client_streams >= MAX_CONCURRENT_STREAMS:
            try:
                self._h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            except h2.exceptions.StreamClosedError:
                pass  # the client reset it in the same read: nothing left to refuse
            return
        stream = Stream(stream_id)
        stream.ended = event.stream_ended is not None
        self._streams[stream_id] = stream
        self._client_streams += 1
        self._requests += 1
        try:
            request = to_request(
                event.headers, limits=self._limits, scheme=self._scheme, client=self._client,
                server=self._server, stream_id=stream_id, connection_number=self.control.number,
                request_number=self._requests,
            )
        except MalformedRequest as exc:
            log.warning("%s stream %d: malformed request: %s", peer(self._client), stream_id, exc)
            self._reset(stream, ErrorCodes.PROTOCOL_ERROR)
            self._close_stream(stream)
            return
        except RemoteProtocolError as exc:
            self._serve_soon(self._refuse, stream, exc)
            return
        request.body_follows = not stream.ended
        self._serve_soon(self._serve_stream, stream, request)

    def push(self, exchange: HTTP2Exchange, target: bytes) -> bool:
        """PUSH_PROMISE a GET of `target` on the exchange's stream and serve it as a stream."""
        h = self._h2
        request = exchange.request
        if (not h.remote_settings.enable_push or exchange.response_started or self._closing
                or self.control.draining or not target.startswith(b"/")):
            return False
        authority = request.header(b"host") or b"%s:%d" % (self._server[0].encode(), self._server[1])
        headers = [(b":method", b"GET"), (b":path", target), (b":scheme", self._scheme.encode()),
                   (b":authority", authority)]
        headers += [(name, value) for name, value in request.headers if name in _PUSHED_HEADERS]
        promised = h.get_next_available_stream_id()
        try:
            h.push_stream(exchange.stream.id, promised, headers)
        except h2.exceptions.ProtocolError:
            return False  # over the client's stream limit, or it refused pushes meanwhile
        stream = Stream(promised)
        stream.ended = True
        self._streams[promised] = stream
        path, query = split_target("GET", target)
        pushed = Request(
            method="GET", target=target, path=path, query=query, http_version="2",
            headers=[(b"host", authority), *headers[4:]], scheme=self._scheme,
            client=self._client, server=self._server, stream_id=promised,
            connection_number=self.control.number, request_number=self._requests, pushed=True,
            body_follows=False,
        )
        self._serve_soon(self._serve_stream, stream, pushed)
        return True

    def _serve_upgraded(self, request: Request, body: bytes) -> None:
        """Stream 1 of an h2c upgrade: the HTTP/1.1 request, its body already read."""
        stream = Stream(1)
        stream.ended = True
        if body:
            stream.body.append((body, 0))
        self._streams[1] = stream
        self._last_stream = 1
        self._requests += 1
        upgraded = Request(
            method=request.method, target=request.target, path=request.path,
            query=request.query, http_version="2", headers=request.headers,
            scheme=self._scheme, client=request.client, server=request.server,
            stream_id=1, connection_number=request.connection_number, request_number=1,
            body_follows=bool(body),
        )
        self._client_streams += 1
        self._serve_soon(self._serve_stream, stream, upgraded)

    def _serve_soon(self, work: StreamWork, stream: Stream, arg: Any) -> None:
        """Have a task of the connection's task group do `work` for the stream.

        Starting a task costs about a tenth of a small request, so a task that
        has served a stream stays parked for the next one while the connection
        is busy; the parked tasks end once it goes idle or closes.
        """
        self._queued.append((work, stream, arg))
        if self._parked:
            self._parked.pop().set()
        else:
            assert self._tasks is not None
            self._tasks.start_soon(self._stream_task, name="h2 stream")

    async def _stream_task(self) -> None:
        queued = self._queued
        wake = self._new_wakeup()
        while True:
            while queued:
                work, stream, arg = queued.popleft()
                if stream.reset:  # reset before it started: nothing to serve
                    self._close_stream(stream)
                    continue
                with anyio.CancelScope() as stream.scope:
                    await work(stream, arg)
                stream.scope = None
            if self._closing:
                return
            self._parked.append(wake)
            await wake.wait()
            if not queued:
                return  # released: the connection is idle or closing

    def _release_parked(self) -> None:
        while self._parked:
            self._parked.pop().set()

    async def _serve_stream(self, stream: Stream, request: Request) -> None:
        exchange = stream.exchange = HTTP2Exchange(self, stream, request)
        try:
            try:
                await self._handler(exchange)
            except RemoteProtocolError as exc:
                if exchange.response_started:
                    self._reset(stream, exc.h2_code)
                else:
                    await self._answer(exchange, exc)
                return
            if not exchange.finished:
                if exchange.response_started:
                    self._reset(stream, ErrorCodes.INTERNAL_ERROR)
                else:
                    await exchange.respond(500, [(b"content-type", b"text/plain")], b"no response")
        except ClientDisconnected:
            if exchange.response_started and not exchange.finished:
                self._reset(stream, ErrorCodes.INTERNAL_ERROR)  # abandoned mid-body
        except Exception:
            log.exception("stream %d of connection %d failed", stream.id, self.control.number)
            self._reset(stream, ErrorCodes.INTERNAL_ERROR)
        finally:
            self._close_stream(stream)

    async def _refuse(self, stream: Stream, exc: RemoteProtocolError) -> None:
        log.warning("%s stream %d: %d %s", peer(self._client), stream.id, exc.status, exc.message)
        try:
            body = f"{exc.status} {exc.message}\n".encode()
            headers = [(b":status", str(exc.status).encode()),
                       (b"content-type", b"text/plain; charset=utf-8"),
                       (b"content-length", str(len(body)).encode())]
            self._h2.send_headers(stream.id, headers)
            self._h2.send_data(stream.id, body, end_stream=True)
            self.write_soon()
        except h2.exceptions.ProtocolError:
            pass
        finally:
            self._close_stream(stream)

    async def _answer(self, exchange: HTTP2Exchange, exc: RemoteProtocolError) -> None:
        log.warning("%s stream %d: %d %s", peer(self._client), exchange.stream.id, exc.status,
                    exc.message)
        body = f"{exc.status} {exc.message}\n".encode()
        await exchange.respond(exc.status, [(b"content-type", b"text/plain; charset=utf-8")], body)

    def _reset(self, stream: Stream, code: int) -> None:
        if not stream.reset:
            stream.reset = True
            try:
                self._h2.reset_stream(stream.id, code)
            except h2.exceptions.ProtocolError:
                pass

    def _close_stream(self, stream: Stream) -> None:
        if self._streams.pop(stream.id, None) is not None and stream.id % 2:
            self._client_streams -= 1
        if not self._streams and self._reading is not None:
            control = self.control
            if self._closing or control.draining:
                self._reading.cancel()
            else:
                # The last stream is done while the reader waits: idle from now on.
                control.idle = True
                control.arm(IDLE, self._limits.keep_alive_timeout)
        # What the app left unread: give the connection window back.
        unread = sum(length for _, length in stream.body)
        stream.body.clear()
        h = self._h2
        try:
            if unread:
                h.acknowledge_received_data(unread, stream.id)
            if not stream.ended and not stream.reset:
                # the response is complete but the request is not: stop its upload
                self._reset(stream, ErrorCodes.NO_ERROR)
        except h2.exceptions.ProtocolError:
            pass
        self.write_soon()

    async def _goaway(self, code: int) -> None:
        self._goaway_sent = True
        try:
            self._h2.close_connection(code, last_stream_id=self._last_stream)
        except h2.exceptions.ProtocolError:
            return
        with anyio.move_on_after(1):
            if self._writer_gone:
                await self._write_now()
            else:
                try:
                    await self.flush()
                except ClientDisconnected:
                    pass


class HTTP2Exchange:
    """One request/response on an HTTP/2 stream."""

    __slots__ = ("_conn", "_is_head", "finished", "request", "response_started", "stats", "stream")

    def __init__(self, conn: HTTP2Connection, stream: Stream, request: Request) -> None:
        self._conn = conn
        self.stream = stream
        self.request = request
        self.stats = ExchangeStats(started=time.monotonic())
        self.response_started = False
        self.finished = False
        self._is_head = request.method == "HEAD"

    @property
    def expects_continue(self) -> bool:
        return False  # HTTP/2 flow control makes 100-continue unnecessary; it is never sent

    def close_after_response(self) -> None:
        """Nothing to close on a multiplexed connection: the stream ends with its response."""

    def promise(self, target: bytes) -> bool:
        return self._conn.push(self, target)

    async def receive_body(self, max_bytes: int) -> bytes:
        stream = self.stream
        conn = self._conn
        limits = conn._limits
        while not stream.body:
            if stream.ended or stream.reset:
                return b""
            with anyio.move_on_after(limits.body_timeout or None) as waited:
                await stream.wait()
            if waited.cancelled_caught:
                raise RequestTimeout("request body stalled")
        data, length = stream.body.popleft()
        self.stats.bytes_in += len(data)
        if limits.max_body_size and self.stats.bytes_in > limits.max_body_size:
            raise BodyTooLarge(f"body over {limits.max_body_size} bytes")
        if length:
            # the app has it now: the client may send as much again
            conn._h2.acknowledge_received_data(length, stream.id)
            conn.write_soon()
        return data

    def _headers(self, status: int, headers: Headers) -> list[tuple[bytes, bytes]]:
        out = [(b":status", str(status).encode("ascii"))]
        has_date = has_server = False
        for name, value in headers:
            lower = name.lower()
            if lower in _CONNECTION_HEADERS:
                continue
            if b"\r" in value or b"\n" in value or b"\x00" in value:
                raise ValueError(f"invalid response header {name!r}")
            if lower == b"date":
                has_date = True
            elif lower == b"server":
                has_server = True
            out.append((lower, value))
        if not has_date:
            out.append((b"date", DATE.now()))
        if not has_server:
            out.append((b"server", self._conn._server_header))
        return out

    def _send_headers(self, status: int, headers: Headers, end_stream: bool) -> None:
        if self.response_started:
            raise RuntimeError("response already started")
        if self.stream.reset:
            raise ClientDisconnected("stream reset by the client")
        self.response_started = True
        self.stats.status = status
        self.stats.responded = time.monotonic()
        self._conn._h2.send_headers(self.stream.id, self._headers(status, headers),
                                    end_stream=end_stream)

    async def start_response(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        self._send_headers(status, headers, end_stream=False)

    async def send_body(self, data: bytes) -> None:
        if data and not self._is_head:
            await self._send(data, end_stream=False)

    async def _send(self, data: bytes, *, end_stream: bool) -> None:
        """DATA frames as the windows allow; the last one ends the stream if asked."""
        conn = self._conn
        h = conn._h2
        stream = self.stream
        view = memoryview(data)
        while view:
            if stream.reset:
                raise ClientDisconnected("stream reset by the client")
            window = min(h.local_flow_control_window(stream.id), h.max_outbound_frame_size)
            if window <= 0:
                conn.write_soon()
                await stream.wait()
                continue
            last = len(view) <= window
            h.send_data(stream.id, bytes(view[:window]), end_stream=end_stream and last)
            view = view[window:]
            conn.unwritten += window
            if conn.unwritten > WRITE_AHEAD:
                await conn.flush()
            else:
                conn.write_soon()
        self.stats.bytes_out += len(data)

    async def switch_protocol(self, headers: Headers) -> Tunnel:
        """200 to an extended CONNECT: the stream carries the new protocol from now on."""
        if self.request.method != "CONNECT" or self.request.protocol is None:
            raise RuntimeError("the request did not ask for a protocol switch")
        self._send_headers(200, headers, end_stream=False)
        self._conn.write_soon()
        self.finished = True
        self.stream.tunneled = True
        return StreamTunnel(self)

    async def end_response(self, trailers: Headers = ()) -> None:
        if self.stream.reset:
            raise ClientDisconnected("stream reset by the client")
        h = self._conn._h2
        if trailers and not self._is_head:
            h.send_headers(self.stream.id, [(n.lower(), v) for n, v in trailers], end_stream=True)
        else:
            h.end_stream(self.stream.id)
        self._conn.write_soon()
        self.finished = True
        self.stats.finished = time.monotonic()

    async def respond(
        self, status: int, headers: Headers, body: bytes = b"", reason: bytes = b""
    ) -> None:
        headers = list(headers)
        if not any(name.lower() == b"content-length" for name, _ in headers) and status >= 200 \
                and status not in (204, 304):
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        send_body = bool(body) and not self._is_head and status not in (204, 304)
        self._send_headers(status, headers, end_stream=not send_body)
        if send_body:
            await self._send(body, end_stream=True)
        self._conn.write_soon()
        self.finished = True
        self.stats.finished = time.monotonic()


class StreamTunnel:
    """The DATA frames of one stream as a byte stream, after an extended CONNECT."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: HTTP2Exchange) -> None:
        self._exchange = exchange

    async def receive(self) -> bytes:
        stream = self._exchange.stream
        conn = self._exchange._conn
        while True:
            while not stream.body:
                if stream.ended or stream.reset:
                    return b""
                await stream.wait()
            data, length = stream.body.popleft()
            if length:
                # read now: the client may send as much again
                conn._h2.acknowledge_received_data(length, stream.id)
                conn.write_soon()
            if data:
                return data

    async def send(self, data: bytes) -> None:
        await self._exchange._send(data, end_stream=False)

    async def end(self) -> None:
        exchange = self._exchange
        if exchange.stream.reset:
            return
        try:
            exchange._conn._h2.end_stream(exchange.stream.id)
        except h2.exceptions.ProtocolError:
            return  # the stream is already closed
        exchange._conn.write_soon()
