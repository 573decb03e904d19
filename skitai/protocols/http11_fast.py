"""HTTP/1.1 (and 1.0) server driver on httptools (llhttp), for speed.

The same contract as the h11 driver in `http11.py` (the same `Exchange`,
limits, timeouts and answers to bad input), at a fraction of the cost per
request: llhttp parses in C, and response heads are assembled here instead
of by a general-purpose state machine. `Config.http_parser` picks it ("auto"
does when httptools is installed); docs/discussion/http11-parsers.md says
why both exist.

Theory: llhttp is push-style: `feed_data()` calls back for each piece of a
message. The callbacks only append events ("head", "body", "end") to a
list; the driver then pulls from the list exactly as the h11 driver pulls
from h11, and reads from the socket only when the list is empty. llhttp
stops parsing at a request with `Upgrade`. A WebSocket handshake (no body)
is served here, and the bytes behind it start its tunnel; any other
upgrade (h2c) is handed, with the rest of the connection, to the h11
driver, which knows how to read its body. So is a request whose method
llhttp does not know: llhttp knows a fixed list, RFC 9110 allows any token.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import anyio
import anyio.abc
import httptools

from skitai.config import Limits
from skitai.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    HeadersTooLarge,
    NotImplementedHere,
    RemoteProtocolError,
    VersionNotSupported,
)
from skitai.protocols import http11
from skitai.protocols.events import ExchangeStats, Headers, Request, Tunnel
from skitai.protocols.headers import DATE, TOKEN, reason_phrase
from skitai.protocols.http1_base import Handler, HTTP1Driver, Outcome
from skitai.protocols.http1_rules import (
    FORBIDDEN_TRAILERS,
    READ_SIZE,
    drain_body,
    peer,
    too_much_left,
)
from skitai.protocols.timeouts import BODY, HEAD, IDLE

log = logging.getLogger("skitai.server")

_NO_BODY_STATUS = frozenset({204, 304})
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


# What the parser waits for next. The framing is followed here, outside
# llhttp, so that each head, chunk-size line and trailer section is measured
# whole before llhttp parses it (see _Parser).
_HEAD, _BODY, _CHUNK_LINE, _CHUNK_DATA, _TRAILERS, _CLOSED, _PARSING = range(7)
_TOO_LARGE = {
    _HEAD: "request head over the size limit",
    _CHUNK_LINE: "chunk-size line over the size limit",
    _TRAILERS: "trailer section over the size limit",
}
_BLANK_LINE = re.compile(rb"\n\r?\n")  # ends a head or a trailer section, as h11 finds it
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]+")
_TOKEN = TOKEN.pattern
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"'
# RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF, with the whitespace (BWS) the
# grammar allows around ";" and "=", which llhttp does not accept. The line is
# checked here and llhttp is given the size alone. 16 hex digits fit 64 bits.
_CHUNK_LINE_SYNTAX = re.compile(
    rb"([0-9a-fA-F]{1,16})(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*\r\n" % (_TOKEN, _TOKEN, _QUOTED)
)
# A request line with a method llhttp does not know but RFC 9110 9.1 allows
# (any token): such a request, and the rest of its connection, is h11's.
_OTHER_METHOD = re.compile(rb"%s [^ \r\n]" % _TOKEN)


class _Parser:
    """llhttp callbacks turned into a list of events, with the size limits applied.

    The size limits are the h11 driver's: h11 holds at most
    `max_header_block` + 1 bytes of what it waits for (a head, a chunk-size
    line, a trailer section) and answers 431 when that is not all of it.
    llhttp parses bytes as they come and has no such limit, so they are not
    given to it as they come: a head, chunk-size line or trailer section is
    held here until it is whole (431 when it cannot be, within the limit),
    then parsed at once; the bytes of a body go straight through. The limit
    and llhttp's errors are then found in the same order however the bytes
    were cut into reads, and as h11 finds them: a head too long is 431 even
    where llhttp would have found it malformed.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # A list, not a deque: an idle connection keeps it, and an empty
        # deque costs ten times an empty list; it rarely holds more than three.
        self.events: list[tuple[Any, ...]] = []
        self.parser = httptools.HttpRequestParser(self)
        # 1.0 requests and "Connection: close" end the connection after their
        # response: the driver decides that; llhttp must not fail on what follows.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.stage = _HEAD
        self.pending = bytearray()  # an unfinished head, chunk-size line or trailer section
        self.remaining = 0  # bytes of the body, or of a chunk and its CRLF, still to come
        self.method = b""  # of the message being parsed, known from its URL on
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers = False
        self.error: RemoteProtocolError | None = None  # found after events still to be used
        # From the first byte of a request llhttp cannot parse and h11 can (a
        # method llhttp does not know) to the end of what has arrived.
        self.unparsed: bytes | None = None

    @property
    def in_head(self) -> bool:
        """Part of a request head has arrived, not all of it."""
        return self.stage == _HEAD and bool(self.pending)

    def feed(self, data: bytes) -> bytes | None:
        """Parse data; the bytes after a head llhttp stopped at to upgrade, else None.

        An error found after complete events waits in `error` until they
        are used up, so what came before it is answered as it would be had
        the bytes arrived one by one.
        """
        if self.error is not None:
            raise self.error
        try:
            return self._feed(data)
        except RemoteProtocolError as error:
            if not self.events:
                raise
            self.error = error
            return None

    def _feed(self, data: bytes) -> bytes | None:
        at, end = 0, len(data)
        unit: bytes | None
        while at < end:
            stage = self.stage
            if stage == _HEAD and not self.pending:
                while data[at] in b"\r\n":
                    at += 1  # empty lines before a request line (RFC 9112 2.2)
                    if at == end:
                        return None
                if data[at] < 0x21:  # refused from its first byte, as h11 does
                    raise BadRequest("illegal request line")
                # The usual case: the whole head is here.
                match = _BLANK_LINE.search(data, at, at + self.limits.max_header_block + 1)
                if match is not None:
                    stop = match.end()
                    unit = data if at == 0 and stop == end else data[at:stop]
                    at = stop
                else:
                    unit, at = self._take(data, at)
            elif stage in (_BODY, _CHUNK_DATA):
                size = self.remaining
                if at == 0 and size >= end:
                    piece = data
                    size = end
                else:
                    size = min(size, end - at)
                    piece = data[at : at + size]
                try:
                    self.parser.feed_data(piece)
                except httptools.HttpParserError as exc:
                    raise _translate(exc) from exc
                at += size
                self.remaining -= size
                if not self.remaining:
                    if stage == _CHUNK_DATA:
                        self.stage = _CHUNK_LINE
                    elif self.stage == _BODY:  # llhttp ends the message at its last byte
                        raise BadRequest("request body framing")
                continue
            elif stage == _CLOSED:
                return None  # the connection ends after this request: what follows is not read
            else:
                unit, at = self._take(data, at)
            if unit is None:
                return None  # held in `pending` until more arrives
            if stage == _CHUNK_LINE:
                unit = _chunk_size_line(unit)
            self.stage = _PARSING  # the callbacks say what comes next
            try:
                self.parser.feed_data(unit)
            except httptools.HttpParserUpgrade as upgrade:
                return bytes(unit[int(upgrade.args[0]):]) + data[at:]
            except httptools.HttpParserInvalidMethodError as exc:
                if stage != _HEAD or not _OTHER_METHOD.match(unit):
                    raise _translate(exc) from exc
                self.unparsed = bytes(unit) + data[at:]
                self.stage = _CLOSED
                return None
            except httptools.HttpParserError as exc:
                raise _translate(exc) from exc
            if self.stage == _BODY:  # a head with a body to come
                self._frame(self.events[-1][4])
            elif stage == _CHUNK_LINE:
                size_match = _CHUNK_SIZE.match(unit)
                if size_match is None:
                    raise BadRequest("invalid chunk size")
                size = int(size_match.group(), 16)
                self.stage = _CHUNK_DATA if size else _TRAILERS
                self.remaining = size + 2  # the CRLF after the chunk's data
            elif self.stage == _PARSING:
                raise BadRequest("malformed request head" if stage == _HEAD else "malformed trailer section")
        return None

    def _take(self, data: bytes, at: int) -> tuple[bytes | None, int]:
        """The head, chunk-size line or trailer section starting in `pending` or at `at`, whole.

        None while it is unfinished (its bytes wait in `pending`), and
        HeadersTooLarge once it cannot end within `max_header_block` + 1
        bytes; with the offset in data of what follows.
        """
        limit = self.limits.max_header_block + 1
        pending = self.pending
        if not pending:
            stop = self._end(data, at, at, min(len(data), at + limit))
            if stop is not None:
                return data[at:stop], stop
            if len(data) - at >= limit:
                raise HeadersTooLarge(_TOO_LARGE[self.stage])
            pending += data[at:]
            return None, len(data)
        held = len(pending)
        pending += data[at : at + limit - held]
        stop = self._end(pending, 0, max(0, held - 2), len(pending))
        if stop is None:
            if len(pending) >= limit:
                raise HeadersTooLarge(_TOO_LARGE[self.stage])
            return None, len(data)
        unit = bytes(pending[:stop])
        pending.clear()
        return unit, at + stop - held

    def _end(self, data: bytes | bytearray, first: int, start: int, stop: int) -> int | None:
        """Where what starts at `first` ends, searching data[start:stop]; None if not there."""
        if self.stage == _CHUNK_LINE:  # h11 ends it at CRLF only
            found = data.find(b"\r\n", start, stop)
            return None if found < 0 else found + 2
        if self.stage == _TRAILERS:  # none: the empty line alone
            if data[first : first + 1] == b"\n" and first + 1 <= stop:
                return first + 1
            if data[first : first + 2] == b"\r\n" and first + 2 <= stop:
                return first + 2
        match = _BLANK_LINE.search(data, start, stop)
        return None if match is None else match.end()

    def _frame(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Follow the body of the request with these headers: chunked, or so many bytes."""
        length = b"0"
        for name, value in headers:
            if name == b"transfer-encoding":
                self.stage = _CHUNK_LINE  # llhttp refuses any other last coding
                return
            if name == b"content-length":
                length = value.strip()
        if not length.isdigit():
            raise BadRequest("invalid Content-Length")
        self.remaining = int(length)

    def release(self) -> None:
        """Let llhttp go: the connection has switched protocols and parses no more HTTP."""
        del self.parser

    # ---- llhttp callbacks

    def on_message_begin(self) -> None:
        self.trailers = False
        self.method = b""
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.method = self.parser.get_method()
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if self.trailers:
            # Their size was measured with the trailer section; WSGI has no place for them.
            if name in FORBIDDEN_TRAILERS:
                raise BadRequest(f"{name.decode()} is not allowed in a trailer")
            return
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self.headers
        if len(headers) > self.limits.max_headers:
            raise HeadersTooLarge(f"more than {self.limits.max_headers} header fields")
        self.stage = _BODY  # unless the message ends here; its framing is read after the head
        parser = self.parser
        self.events.append(
            ("head", parser.get_method(), self.url, parser.get_http_version(), headers)
        )
        self.trailers = True
        self.url = b""  # the event owns them now; an idle connection keeps nothing
        self.headers = []

    def on_body(self, body: bytes) -> None:
        self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("end",))
        self.trailers = False
        self.stage = _HEAD if self.parser.should_keep_alive() else _CLOSED


def _chunk_size_line(line: bytes) -> bytes:
    """The chunk-size line for llhttp: its size alone, once the whole line is found well-formed."""
    match = _CHUNK_LINE_SYNTAX.fullmatch(line)
    if match is None:
        raise BadRequest("invalid chunk-size line")
    return match.group(1) + b"\r\n"


def _translate(exc: httptools.HttpParserError) -> RemoteProtocolError:
    """The answer to what llhttp refused."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        context = exc.__context__
        if isinstance(context, RemoteProtocolError):
            return context
        return BadRequest(str(exc))
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return BadRequest("malformed method")
    message = str(exc)
    if "Transfer-Encoding" in message and "Content-Length" not in message:
        return NotImplementedHere(message)
    if message == "Invalid HTTP version":  # a well-formed version we do not speak
        return VersionNotSupported("HTTP version not supported on this port")
    return BadRequest(message)


class FastHTTP11Connection(HTTP1Driver):
    """Serves HTTP/1.x requests on one byte stream until either side closes."""

    __slots__ = ("_body_complete", "_parser", "_switching", "_upgrade")

    def __init__(self, stream: anyio.abc.ByteStream, handler: Handler, **options: Any) -> None:
        super().__init__(stream, handler, **options)
        self._parser = _Parser(self._limits)
        self._upgrade: bytes | None = None  # bytes after a head llhttp stopped at
        self._switching = False  # the request being served is a WebSocket handshake
        self._body_complete = False

    # -------------------------------------------------------------- I/O

    async def receive(self) -> bytes:
        return await self._read()

    def feed(self, data: bytes) -> None:
        leftover = self._parser.feed(data)
        if leftover is not None:
            self._upgrade = leftover
            # llhttp stopped after the last head it parsed: that request asked to
            # upgrade. Mark it; what llhttp said after it, h11 will read again.
            events = self._parser.events
            heads = [index for index, event in enumerate(events) if event[0] == "head"]
            if not heads:
                raise BadRequest("upgrade without a request")
            events[heads[-1]] = ("upgrade", *events[heads[-1]][1:])
            while len(events) > heads[-1] + 1:
                events.pop()

    # -------------------------------------------------------------- main loop

    @property
    def _handing_over(self) -> bool:
        """What follows is the h11 driver's: an upgrade llhttp stopped at, or a method it does not know."""
        return self._upgrade is not None or self._parser.unparsed is not None

    def _after_last_request(self) -> Outcome:
        return self._hand_over if self._handing_over else super()._after_last_request()

    def _new_exchange(self, request: Request) -> FastExchange:
        exchange = FastExchange(self, request, self._body_complete)
        if self._switching:
            exchange.close_connection = True  # what follows the head is not HTTP any more
        return exchange

    async def _next_cycle(self, exchange: FastExchange) -> bool:
        if exchange.close_connection or exchange.continue_unanswered:
            return False
        return await self._finish_body(exchange)

    async def _finish_body(self, exchange: FastExchange) -> bool:
        """Discard what the app left of the request body, within bounds."""
        if exchange.body_done:
            return True
        drained = await drain_body(exchange)
        self.linger_on_close = not drained
        return drained

    async def _receive_request(self) -> Request | None:
        parser = self._parser
        control = self.control
        if not parser.events and parser.error is not None:
            raise parser.error
        if not parser.events and not self._handing_over:
            limits = self._limits
            if control.draining and not parser.in_head:
                return None
            # Idle only with nothing of the next request here yet.
            control.idle = not parser.in_head
            control.arm(IDLE if control.idle else HEAD,
                        limits.keep_alive_timeout if control.idle else limits.header_timeout)
            try:
                data = await self._stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                data = b""
            finally:
                control.idle = False
            if not data:
                if parser.in_head:
                    raise BadRequest("connection closed inside a request head")
                return None
            if not self._requests and not parser.in_head:
                sniffed = await self._sniff_http2(data)
                if sniffed is None:
                    return None  # HTTP/2 with prior knowledge
                data = sniffed
            self.feed(data)
            if not parser.events and not self._handing_over:
                control.arm(HEAD, limits.header_timeout)
                while not parser.events and not self._handing_over:
                    data = await self.receive()
                    if not data:
                        if parser.in_head:
                            raise BadRequest("connection closed inside a request head")
                        return None  # only the empty lines RFC 9112 2.2 lets us skip
                    self.feed(data)
            control.disarm()
        if not parser.events:
            return None  # an upgrade: the h11 driver takes over
        event = parser.events[0]
        if event[0] == "upgrade" and not _websocket_handshake(event[4]):
            return None  # this request is the h11 driver's
        parser.events.pop(0)
        if event[0] == "upgrade":
            self._switching = True  # a WebSocket handshake, served here
        elif event[0] != "head":
            raise BadRequest("request data out of place")
        self._answering_head = event[1] == b"HEAD"
        self._requests += 1
        _, method, target, version, headers = event
        request = self._make_request(method, target, version, headers)
        self._body_complete = self._switching or (bool(parser.events) and parser.events[0][0] == "end")
        if self._body_complete and parser.events:
            parser.events.pop(0)
        return request

    async def _hand_over(self) -> None:
        """Continue this connection on the h11 driver, from the request llhttp stopped at."""
        self.control.renew()
        if self._upgrade is not None:
            event = self._parser.events.pop(0)
            _, method, target, version, headers = event
            head = b"%s %s HTTP/%s\r\n" % (method, target, version.encode("ascii"))
            head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
            initial_data = head + self._upgrade
        else:
            initial_data = self._parser.unparsed or b""
        driver = http11.HTTP11Connection(
            self._stream, self._handler, limits=self._limits, scheme=self._scheme,
            client=self._client, server=self._server, control=self.control,
            server_header=self._server_header, initial_data=initial_data,
            requests=self._requests,
        )
        await driver.run()

    async def _answer_error(self, exc: RemoteProtocolError) -> None:
        log.warning("%s %d %s", peer(self._client), exc.status, exc.message)
        exchange = self._exchange
        if exchange is not None and exchange.response_started:
            return
        body = f"{exc.status} {reason_phrase(exc.status).decode()}: {exc.message}\n".encode()
        head = _status_line(exc.status, b"") + (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
            b"Connection: close\r\nDate: %s\r\nServer: %s\r\n\r\n"
            % (len(body), DATE.now(), self._server_header)
        )
        try:
            answering_head = self._answering_head or self._parser.method == b"HEAD"
            await self.send(head if answering_head else head + body)
        except ClientDisconnected:
            pass


def _status_line(status: int, reason: bytes) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason or reason_phrase(status))


class FastExchange:
    """One request/response on an HTTP/1.x connection, framed by hand."""

    __slots__ = (
        "_chunked", "_conn", "_head", "_is_head", "_remaining", "body_done", "close_connection",
        "continue_unanswered", "finished", "request", "response_started", "stats",
    )

    def __init__(self, conn: FastHTTP11Connection, request: Request, body_complete: bool) -> None:
        self._conn = conn
        self.request = request
        self.stats = ExchangeStats(started=time.monotonic())
        self.response_started = False
        self.finished = False
        self.body_done = body_complete
        self._head = b""
        self._is_head = request.method == "HEAD"
        self._chunked = False
        self._remaining: int | None = None
        self.close_connection = False
        # As h11 does: the expectation stands whether or not the body has
        # already arrived, so the answer does not depend on how it was read.
        self.continue_unanswered = (
            request.http_version == "1.1" and _declares_body(request)
            and b"100-continue" in (v.lower() for v in request.header_list(b"expect"))
        )

    @property
    def expects_continue(self) -> bool:
        return self.continue_unanswered

    def promise(self, target: bytes) -> bool:
        return False  # HTTP/1.x has no push

    def close_after_response(self) -> None:
        self.close_connection = True
        self._conn.control.draining = True

    async def switch_protocol(self, headers: Headers) -> Tunnel:
        """101 Switching Protocols; the bytes llhttp left behind the head start the tunnel."""
        conn = self._conn
        if not conn._switching:
            raise RuntimeError("the request did not ask for a protocol switch")
        if self.response_started:
            raise RuntimeError("response already started")
        self.response_started = self.finished = True
        self.stats.status = 101
        self.stats.responded = time.monotonic()
        head = b"".join([_status_line(101, b"Switching Protocols"),
                         *(name + b": " + value + b"\r\n" for name, value in headers),
                         b"Date: %s\r\nServer: %s\r\n\r\n" % (DATE.now(), conn._server_header)])
        await conn.send(head)
        leftover, conn._upgrade = conn._upgrade or b"", None
        conn._parser.release()
        return conn.upgraded_stream(leftover)

    async def receive_body(self, max_bytes: int) -> bytes:
        conn = self._conn
        if self.continue_unanswered:
            if self.response_started:
                return b""  # answered without the body: the client will not send it
            self.continue_unanswered = False
            await conn.send(_CONTINUE)
        if self.body_done:
            return b""
        events = conn._parser.events
        limits = conn._limits
        while not events:
            if conn._parser.error is not None:
                raise conn._parser.error
            conn.control.arm(BODY, limits.body_timeout)
            try:
                data = await conn.receive()
            finally:
                conn.control.disarm()
            if not data:
                raise BadRequest("connection closed inside a request body")
            conn.feed(data)
        event = events.pop(0)
        if event[0] == "body":
            self.stats.bytes_in += len(event[1])
            if limits.max_body_size and self.stats.bytes_in > limits.max_body_size:
                raise BodyTooLarge(f"body over {limits.max_body_size} bytes")
            return bytes(event[1])
        if event[0] == "end":
            self.body_done = True
            return b""
        raise BadRequest("request data out of place")

    def _head_bytes(
        self, status: int, headers: Headers, reason: bytes, body_length: int | None
    ) -> bytes:
        if self.response_started:
            raise RuntimeError("response already started")
        self.response_started = True
        self.stats.status = status
        self.stats.responded = time.monotonic()
        conn = self._conn
        request = self.request
        lines = [_status_line(status, reason)]
        length: int | None = None
        has_date = has_server = False
        app_close = False
        for name, value in headers:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name or b":" in name:
                raise ValueError(f"invalid response header {name!r}")
            lower = name.lower()
            if lower in _FRAMING:
                if lower == b"content-length":
                    length = int(value)
                elif lower == b"connection" and b"close" in value.lower():
                    app_close = True
                continue
            if lower == b"date":
                has_date = True
            elif lower == b"server":
                has_server = True
            lines.append(name + b": " + value + b"\r\n")
        if not has_date:
            lines.append(b"Date: " + DATE.now() + b"\r\n")
        if not has_server:
            lines.append(b"Server: " + conn._server_header + b"\r\n")
        no_body = status in _NO_BODY_STATUS or status < 200
        if length is not None:
            # a 304 may repeat the length of what a GET would get; a 204 has none
            if not no_body or status == 304:
                lines.append(b"Content-Length: %d\r\n" % length)
            self._remaining = 0 if no_body or self._is_head else length
        elif body_length is not None and not no_body:
            lines.append(b"Content-Length: %d\r\n" % body_length)
            self._remaining = 0 if self._is_head else body_length
        elif not no_body:
            if request.http_version == "1.1":
                lines.append(b"Transfer-Encoding: chunked\r\n")
                self._chunked = not self._is_head
            elif not self._is_head:
                self.close_connection = True  # the body ends with the connection
        limit = conn._limits.max_requests_per_connection
        if not self.continue_unanswered and too_much_left(request, self.stats.bytes_in, status):
            conn.linger_on_close = True  # more body on its way than is worth reading away
            self.close_connection = True
        if (app_close or conn.control.draining or (limit and conn._requests >= limit)
                or _client_closes(request) or self.continue_unanswered):
            self.close_connection = True
        if self.close_connection:
            lines.append(b"Connection: close\r\n")
        elif request.http_version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def start_response(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        self._head = self._head_bytes(status, headers, reason, None)

    async def send_body(self, data: bytes) -> None:
        if not data or self._is_head:
            return
        if self._remaining is not None:
            if len(data) > self._remaining:
                raise ValueError("response body longer than its Content-Length")
            self._remaining -= len(data)
            out = data
        elif self._chunked:
            out = b"%x\r\n%s\r\n" % (len(data), data)
        else:
            out = data
        self.stats.bytes_out += len(data)
        if self._head:
            out = self._head + out
            self._head = b""
        await self._conn.send(out)

    async def end_response(self, trailers: Headers = ()) -> None:
        if self._remaining:
            raise ValueError("response body shorter than its Content-Length")
        out = self._head
        self._head = b""
        if self._chunked:
            tail = b"".join(name + b": " + value + b"\r\n" for name, value in trailers
                            if b"\r" not in value and b"\n" not in value)
            out += b"0\r\n" + tail + b"\r\n"
        if out:
            await self._conn.send(out)
        self.finished = True
        self.stats.finished = time.monotonic()

    async def respond(
        self, status: int, headers: Headers, body: bytes = b"", reason: bytes = b""
    ) -> None:
        out = self._head_bytes(status, headers, reason, len(body))
        if body and not self._is_head and status not in _NO_BODY_STATUS:
            if self._remaining is not None and len(body) != self._remaining:
                raise ValueError("response body does not match its Content-Length")
            out += body
            self.stats.bytes_out += len(body)
        self._remaining = None
        await self._conn.send(out)
        self.finished = True
        self.stats.finished = time.monotonic()


def _websocket_handshake(headers: list[tuple[bytes, bytes]]) -> bool:
    """A head that asks to switch to WebSocket and has no body."""
    websocket = False
    for name, value in headers:
        if name in (b"content-length", b"transfer-encoding"):
            return False
        if name == b"upgrade" and b"websocket" in value.lower():
            websocket = True
    return websocket


def _declares_body(request: Request) -> bool:
    for name, value in request.headers:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


def _client_closes(request: Request) -> bool:
    tokens = [v.lower() for v in request.header_list(b"connection")]
    if request.http_version == "1.0":
        return b"keep-alive" not in tokens
    return b"close" in tokens
