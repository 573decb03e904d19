"""WebSocket (RFC 6455, permessage-deflate RFC 7692) server driver on wsproto.

Theory: the opening handshake is HTTP's business (`websocket_handshake.py`
checks it, the exchange answers it and hands over a `Tunnel`); from there
wsproto owns framing, masking, UTF-8 validation, deflate and the close
codes, and this module owns the tunnel. The connection's task reads:
it feeds wsproto, answers PING with PONG and a close frame with its echo,
reassembles fragmented messages within the size limits and puts each
complete message to the app. There are two ways to run a session:

* `serve(app)`, for apps on the event loop: the app runs in the
  connection's own task and its `receive()` does the reading, so an idle
  session is one waiting task. An app that has not been in `receive()`
  for `BACKGROUND_AFTER` seconds gets a reader task beside it for the rest
  of the session, so pings are still answered and a close still seen.
* `run(app)`, for apps in threads and rooms: the connection's task reads
  into the app's `MessageSink`, and the app (if any) is a second task.

Either way the session's task group holds what runs beside the
connection's task, and `run`/`serve` return when all of it is done.

Writing has no task of its own. Frames are queued in the order wsproto
makes them (deflate contexts depend on it), and the task that finds no
write in progress writes everything queued, then returns; others return at
once while less than `websocket_queue` bytes wait, and wait for room
beyond that, so a client that does not read slows its senders and never
grows the server's memory. `send_nowait` (broadcasts) never waits: a
client with a full queue is closed with 1008 instead of slowing a room.
A write cut short (the client is gone, or a task was cancelled inside a
frame) ends the connection, since its framing is lost.

Timers cost no task either: the server's sweeper calls `check(now)` a few
times a second to ping silent clients, close on an unanswered ping (1011)
or an idle session (1001), and drop clients that never answer a close.

Close codes: the client's code is echoed at once and reported as sent
(1000 stays 1000); a frame wsproto refuses closes with the code it names
(1002, 1007 for invalid UTF-8); an oversized message or frame with 1009;
an app that returns closes with 1000, one that raises with 1011; a
connection that just ends is reported as 1006. On a protocol error reading
stops, and the messages that came before the bad frame are still the
app's: the close frame follows once the app is done with them (or after
`websocket_close_timeout`), so a client gets its answers and then the code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

import anyio
import anyio.abc
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, Frame, FrameDecoder, Opcode, ParseFailed

from skitai.config import Limits
from skitai.errors import ClientDisconnected, WebSocketClosed
from skitai.protocols.events import Tunnel, WebSocketStats
from skitai.protocols.websocket_queue import MessageQueue

log = logging.getLogger("skitai.server")

Data = str | bytes
# With deflate, wsproto inflates whatever it is given at once; feeding it in
# steps bounds what one step can inflate to (1032 x the step at worst).
INFLATE_STEP = 16384
BACKGROUND_AFTER = 1.0  # seconds an app may stay out of receive() before a reader joins it
NORMAL, GOING_AWAY, POLICY, INTERNAL, TRY_AGAIN_LATER, ABNORMAL = 1000, 1001, 1008, 1011, 1013, 1006


class MessageSink(Protocol):
    """Where the reader puts complete messages: the app's side of the connection."""

    async def put(self, message: Data) -> None:
        """Take a message; may wait while the app is behind (reading pauses meanwhile)."""

    def end(self, code: int, reason: str) -> None:
        """No more messages will come: the connection is closing or closed."""


class _Failure(Exception):
    """The client broke the protocol: close with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _SizeLimits(FrameDecoder):
    """wsproto's frame decoder, refusing what is too big with 1009 as soon as it is known.

    A frame, and a message sent as it is, by the lengths their heads announce,
    before any of the payload is read, so the answer does not depend on how
    the bytes arrive. A compressed message by what it inflates to, as it does.
    A frame out of sequence (a continuation without a message, a new message
    inside one) is refused by its head too: wsproto would find out only after
    inflating its payload, and then with 1007 or 1002 depending on how much of
    it had arrived.
    """

    def __init__(self, extensions: list[Extension], limits: Limits) -> None:
        super().__init__(client=False, extensions=extensions)
        self.max_frame = limits.websocket_max_frame
        self.max_message = limits.websocket_max_message
        self.message_size = 0  # of the message being read: announced, or inflated so far
        self.compressed = False
        self.in_message = False  # a data frame without FIN has come: continuations follow

    def parse_header(self) -> bool:
        if not super().parse_header():
            return False
        head = self.header
        assert head is not None
        if head.payload_len > self.max_frame:
            raise ParseFailed(f"frame over {self.max_frame} bytes", CloseReason.MESSAGE_TOO_BIG)
        if not head.opcode.iscontrol():
            if (head.opcode is Opcode.CONTINUATION) is not self.in_message:
                raise ParseFailed("continuation without a message" if not self.in_message
                                  else "new message inside a fragmented one")
            self.in_message = not head.fin
            if head.opcode is not Opcode.CONTINUATION:
                self.message_size = 0
                self.compressed = head.rsv.rsv1
            if not self.compressed:
                self._count(head.payload_len)
        return True

    def process_buffer(self) -> Frame | None:
        frame = super().process_buffer()
        if frame is not None and self.compressed and not frame.opcode.iscontrol():
            self._count(len(frame.payload))  # bytes as inflated, before UTF-8 decoding
        return frame

    def _count(self, size: int) -> None:
        self.message_size += size
        if self.message_size > self.max_message:
            raise ParseFailed(f"message over {self.max_message} bytes", CloseReason.MESSAGE_TOO_BIG)


class WebSocketConnection:
    """One WebSocket session on a tunnel, server side."""

    __slots__ = (
        "_app_left",
        "_app_reading",
        "_background",
        "_closing_since",
        "_failure",
        "_frame_size",
        "_inflate_step",
        "_last_message",
        "_last_received",
        "_limits",
        "_message_size",
        "_messages",
        "_parts",
        "_peer",
        "_pending",
        "_pending_size",
        "_ping_sent",
        "_read_over",
        "_room",
        "_tasks",
        "_tunnel",
        "_undrained",
        "_writing",
        "_ws",
        "broken",
        "close_code",
        "close_reason",
        "keep_alive",
        "sink",
        "stats",
    )

    def __init__(
        self,
        tunnel: Tunnel,
        *,
        limits: Limits,
        extensions: list[Extension],
        peer: str = "-",
        keep_alive: float = 0.0,
    ) -> None:
        self._tunnel = tunnel
        self._limits = limits
        self._ws = Connection(ConnectionType.SERVER, extensions)
        proto = self._ws._proto  # no public way in: the size limits go into its frame decoder
        proto._frame_decoder = _SizeLimits(proto.extensions, limits)
        self._inflate_step = INFLATE_STEP if any(e.enabled() for e in extensions) else 0
        self._peer = peer
        self.keep_alive = keep_alive  # seconds without a message either way before 1001; 0: none
        self.sink: MessageSink | None = None
        self.stats = WebSocketStats()
        self.close_code: int | None = None
        self.close_reason = ""
        self.broken = False  # a write failed: the framing is lost
        self._failure: _Failure | None = None  # the protocol error to close with once the app is done
        self._parts: list[Data] = []  # of a fragmented message
        self._pending: list[bytes] = []  # frames not yet written
        self._pending_size = 0
        self._writing = False
        self._room: anyio.Event | None = None  # senders waiting for the queue to drain
        self._tasks: anyio.abc.TaskGroup | None = None
        self._read_over = False  # the close handshake is done, failed, or the connection is gone
        self._messages: MessageQueue | None = None  # serve(): where messages wait for receive()
        self._app_reading = False  # serve(): the app is reading inside receive()
        self._background = False  # serve(): a reader task has joined the app
        self._undrained = False  # serve(): wsproto holds frames not yet turned into messages
        now = time.monotonic()
        self._app_left = now  # serve(): when the app last left receive()
        self._last_received = now
        self._last_message = now
        self._ping_sent = 0.0
        self._closing_since = 0.0

    # ------------------------------------------------------------ state

    @property
    def open(self) -> bool:
        """Messages can still be sent: no close frame has gone either way."""
        return self._ws.state is ConnectionState.OPEN and not self.broken

    @property
    def closed(self) -> bool:
        """A close frame has been sent or received, or the connection is gone."""
        return not self.open

    # ------------------------------------------------------------ main loops

    async def serve(self, app: Callable[[], Awaitable[None]]) -> None:
        """Run `app` in this task, reading for it in `receive()`; close as it ends."""
        self._messages = self.sink = MessageQueue(self._limits.websocket_queue)
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                await self._run_app(app)
                if not self._background and not self._read_over:
                    await self._read()  # the client's answer to our close
                    self._over()
        finally:
            await self._end()

    async def run(self, app: Callable[[], Awaitable[None]] | None) -> None:
        """Read in this task into `sink`, with `app` (if any) as a task beside; close as it ends.

        Once the connection is closed the app gets `websocket_close_timeout`
        seconds to finish on its own, and is cancelled after that.
        """
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                if app is not None:
                    tasks.start_soon(self._run_app, app)
                try:
                    await self._read()
                finally:
                    self._over()
            if self._failure is not None:
                await self._finish()  # no app, or one cancelled before it closed
        finally:
            await self._end()

    async def _end(self) -> None:
        self._tasks = None
        if not self.broken:
            with anyio.CancelScope(shield=True):
                await self._tunnel.end()
        if self.close_code is None:
            self.close_code = ABNORMAL
        self.stats.close_code = self.close_code

    async def receive(self) -> Data:
        """The next message (`serve` only); WebSocketClosed once the session is closed."""
        queue = self._messages
        assert queue is not None, "receive() is for apps run by serve()"
        while True:
            message = queue.take_nowait()
            if message is not None:
                return message
            if queue.ended is not None:
                raise WebSocketClosed(*queue.ended)
            if self._background or self._read_over:
                return await queue.get()
            self._app_reading = True
            try:
                more = await self._read_once()
            finally:
                self._app_reading = False
                self._app_left = time.monotonic()
            if not more:
                self._over()

    async def _run_app(self, app: Callable[[], Awaitable[None]]) -> None:
        try:
            await app()
        except ClientDisconnected:
            pass  # it sent after the close, or the client left: the session is over anyway
        except Exception:
            log.exception("%s WebSocket app failed", self._peer)
            if self._failure is None:
                self._failure = _Failure(INTERNAL, "app failed")
        await self._finish()

    async def _finish(self) -> None:
        """Close after the app: with the failure's code if there is one, else 1000."""
        failure = self._failure or _Failure(NORMAL, "")
        try:
            await self.close(failure.code, failure.reason)
        except ClientDisconnected:
            pass

    def _over(self) -> None:
        """Reading has ended; the app gets `websocket_close_timeout` more seconds."""
        if self._read_over:
            return
        self._read_over = True
        if self.close_code is None:
            self.close_code = ABNORMAL  # it ended without a closing handshake
        self._end_sink()
        if self._tasks is not None:
            scope = self._tasks.cancel_scope
            scope.deadline = min(scope.deadline,
                                 anyio.current_time() + self._limits.websocket_close_timeout)

    async def _read(self) -> None:
        """Read until the session is over."""
        while await self._read_once():
            pass

    async def _read_in_background(self) -> None:
        await self._read()
        self._over()

    async def _read_once(self) -> bool:
        """One read from the tunnel, acted on; False once the session is over."""
        if self._ws.state is ConnectionState.CLOSED or self.broken:
            return False
        try:
            if self._undrained:
                self._undrained = False
                return await self._act()
            data = await self._tunnel.receive()
            self._last_received = time.monotonic()
            if not data:
                return False  # the client went away without a close
            step = self._inflate_step
            if step and len(data) > step:
                for start in range(0, len(data), step):
                    if self._undrained:  # kept compressed until the app wants more
                        self._ws.receive_data(data[start:])
                        break
                    if not await self._feed(data[start:start + step]):
                        return False
                return True
            return await self._feed(data)
        except _Failure as failure:
            log.warning("%s WebSocket closed %d: %s", self._peer, failure.code, failure.reason)
            self._failure = failure
            self.close_code, self.close_reason = failure.code, failure.reason
            return False
        except ClientDisconnected:
            return False

    async def _feed(self, data: bytes) -> bool:
        """Give wsproto bytes and act on its events; False once the session is over."""
        if self._ws.state is ConnectionState.CLOSED:
            return False
        self._ws.receive_data(data)
        return await self._act()

    async def _act(self) -> bool:
        """Act on wsproto's events; False once the session is over.

        wsproto inflates a frame only as its event is taken. While the app
        reads for itself (it cannot be made to wait for room) and a queue's
        worth of messages waits, the rest stays in wsproto until the app asks
        again: what waits stays within `websocket_queue` plus one message.
        """
        ws = self._ws
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                message = self._assemble(event)
                if message is not None:
                    await self._deliver(message)
                    if self._app_reading and self._messages is not None and self._messages.full:
                        self._undrained = True
                        return True
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    await self._write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                return await self._closed_by_client(event)
        return True

    async def _closed_by_client(self, event: CloseConnection) -> bool:
        ws = self._ws
        if ws.state is ConnectionState.REMOTE_CLOSING:
            # The client closes: echo its code (RFC 6455 5.5.1) and report it as it is.
            self.close_code, self.close_reason = event.code, event.reason or ""
            self._end_sink()
            await self._write(ws.send(event.response()))
            return False
        if ws.state is ConnectionState.CLOSED:
            return False  # the answer to our close
        # wsproto refused a frame and says with which code to fail
        raise _Failure(event.code, event.reason or "protocol error")

    def _assemble(self, event: TextMessage | BytesMessage) -> Data | None:
        """A complete message, or None while its frames are arriving (sizes: see _SizeLimits)."""
        data = event.data
        if isinstance(data, bytearray):
            data = bytes(data)
        if not event.message_finished:
            self._parts.append(data)
            return None
        if self._parts:
            parts, self._parts = self._parts, []
            parts.append(data)
            data = "".join(cast(list[str], parts)) if isinstance(data, str) else b"".join(
                cast(list[bytes], parts))
        return data

    async def _deliver(self, message: Data) -> None:
        stats = self.stats
        stats.messages_in += 1
        stats.bytes_in += len(message)
        self._last_message = self._last_received
        if self._ws.state is not ConnectionState.OPEN:
            return
        if self._app_reading:
            assert self._messages is not None
            self._messages.put_nowait(message)  # the app reads for itself: it cannot wait for room
        elif self.sink is not None:
            await self.sink.put(message)

    def _end_sink(self) -> None:
        if self.sink is not None:
            sink, self.sink = self.sink, None
            sink.end(self.close_code or ABNORMAL, self.close_reason)

    # ------------------------------------------------------------ sending

    async def send(self, message: Data) -> None:
        """Send a message; waits while `websocket_queue` bytes are not yet written."""
        while self._pending_size >= self._limits.websocket_queue and self.open:
            await self._wait_room()
        await self._write(self._frame(message))

    def send_nowait(self, message: Data) -> bool:
        """Queue a message without waiting; False if closed. A client this far behind is closed 1008."""
        if not self.open:
            return False
        if self._pending_size >= self._limits.websocket_queue:
            log.warning("%s WebSocket closed %d: not reading", self._peer, POLICY)
            self.close_soon(POLICY, "not reading fast enough")
            return False
        self._queue(self._frame(message))
        return True

    def _frame(self, message: Data) -> bytes:
        """The frame of a message, counted; WebSocketClosed once a close has gone either way."""
        if self._ws.state is not ConnectionState.OPEN or self.broken:
            raise WebSocketClosed(self.close_code or ABNORMAL, self.close_reason)
        stats = self.stats
        stats.messages_out += 1
        stats.bytes_out += len(message)
        self._last_message = time.monotonic()
        # What Connection.send does for a message in the OPEN state, without
        # building an event object for it on every message.
        return bytes(self._ws._proto.send_data(message, True))

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake; the reader completes it. Does nothing once closing."""
        if self._failure is not None:
            code, reason = self._failure.code, self._failure.reason  # the client's error wins
        if self._ws.state is ConnectionState.OPEN and not self.broken:
            self._start_close(code, reason)
            await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))

    def close_soon(self, code: int, reason: str) -> None:
        """`close()` without waiting: for timers, broadcasts and shutdown."""
        if self._ws.state is ConnectionState.OPEN and not self.broken:
            self._start_close(code, reason)
            self._queue(self._ws.send(CloseConnection(code=code, reason=reason)))

    def _start_close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self._closing_since = time.monotonic()
        self._end_sink()

    def abort(self) -> None:
        """End the session now, without a closing handshake: what runs in it is cancelled."""
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    def _queue(self, frame: bytes) -> None:
        """Queue frame bytes; have them written by a task of the session if none is writing."""
        self._pending.append(frame)
        self._pending_size += len(frame)
        if not self._writing and self._tasks is not None:
            self._writing = True  # now, so no other task starts writing before this one runs
            self._tasks.start_soon(self._flush_quietly)

    async def _write(self, frame: bytes) -> None:
        """Queue frame bytes and write them, unless another task is writing already."""
        if self.broken:
            raise WebSocketClosed(self.close_code or ABNORMAL, self.close_reason)
        self._pending.append(frame)
        self._pending_size += len(frame)
        if not self._writing:
            self._writing = True
            await self._flush()

    async def _flush(self) -> None:
        """Write until nothing is queued; the caller has set `_writing`."""
        pending = self._pending
        try:
            while pending:
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                await self._tunnel.send(data)
                self._pending_size -= len(data)
                if self._room is not None and self._pending_size < self._limits.websocket_queue:
                    self._room.set()
        except BaseException:
            self.broken = True
            pending.clear()
            self._pending_size = 0
            if self._room is not None:
                self._room.set()
            self.abort()
            raise
        finally:
            self._writing = False

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except ClientDisconnected:
            pass

    async def _wait_room(self) -> None:
        if self._room is None:
            self._room = anyio.Event()
        room = self._room
        try:
            await room.wait()
        finally:
            if self._room is room and room.is_set():
                self._room = None

    # ------------------------------------------------------------ timers

    def check(self, now: float) -> None:
        """Ping, idle and close timeouts; the server's sweeper calls it a few times a second."""
        limits = self._limits
        if self._closing_since:
            if now - self._closing_since >= limits.websocket_close_timeout:
                self.abort()  # the client never answered our close
            return
        if not self.open:
            return
        if self._ping_sent:
            if self._last_received >= self._ping_sent:
                self._ping_sent = 0.0  # it answered, or at least spoke
            elif now - self._ping_sent >= limits.websocket_ping_timeout:
                log.info("%s WebSocket closed %d: ping unanswered", self._peer, INTERNAL)
                self.close_soon(INTERNAL, "ping timeout")
                return
        elif limits.websocket_ping_interval and now - self._last_received >= limits.websocket_ping_interval:
            self._ping_sent = now
            self._queue(self._ws.send(Ping(payload=b"skitai")))
        if self.keep_alive and now - self._last_message >= self.keep_alive:
            self.close_soon(GOING_AWAY, "idle timeout")
        if (self._messages is not None and not self._background and not self._app_reading
                and now - self._app_left >= BACKGROUND_AFTER and self._tasks is not None):
            self._background = True  # the app is busy elsewhere: read for it from now on
            self._tasks.start_soon(self._read_in_background)

