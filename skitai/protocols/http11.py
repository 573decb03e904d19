"""HTTP/1.1 (and 1.0) server driver on h11.

Theory: h11 owns the protocol state; this module owns the socket. The
driver pulls: it asks h11 for the next event and reads from the stream only
when h11 says NEED_DATA. One request at a time is handed to the handler as
an `Exchange`; pipelined requests wait in h11's buffer until the response
before them is complete.

On top of h11 the driver enforces what h11 leaves to servers: the request
line, header count and field size limits, the request-target forms of RFC
9112 3.2, and the request smuggling defences of RFC 9112 6 (no obs-fold, no
control characters in field values, one Content-Length without list form,
not both Content-Length and Transfer-Encoding, no Transfer-Encoding on
HTTP/1.0, no framing or routing fields in trailers).

Timeouts: `keep_alive_timeout` while waiting for the first byte of a request
(expiry closes silently), `header_timeout` from there to the end of the head
(expiry answers 408), `body_timeout` between pieces of a body (408), and
`send_timeout` for every write (expiry drops the client).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import anyio
import anyio.abc
import h11

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
from skitai.protocols.events import ExchangeStats, Headers, Request, Tunnel
from skitai.protocols.headers import DATE, has_bad_field_byte, reason_phrase
from skitai.protocols.http1_base import Handler, HTTP1Driver
from skitai.protocols.http1_rules import (
    FORBIDDEN_TRAILERS,
    drain_body,
    peer,
    too_much_left,
)
from skitai.protocols.http2 import upgrade_settings_valid
from skitai.protocols.timeouts import BODY, HEAD, IDLE

log = logging.getLogger("skitai.server")

_BYTEARRAY = re.compile(r"bytearray\((b'.*?'|b\".*?\")\)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line ending a head, as h11 finds it
# The largest request body an h2c upgrade reads into memory before its 101
# (as much as the WSGI layer reads ahead of an app, skitai.wsgi.PREBUFFER).
# A larger body, or one of unknown length, is answered on HTTP/1.1.
UPGRADE_BODY_LIMIT = 1 << 16



class HTTP11Connection(HTTP1Driver):
    """Serves HTTP/1.x requests on one byte stream until either side closes."""

    __slots__ = ("_h11", "_pending")

    def __init__(
        self, stream: anyio.abc.ByteStream, handler: Handler, *, initial_data: bytes = b"",
        **options: Any,
    ) -> None:
        super().__init__(stream, handler, **options)
        self._h11 = self._new_state_machine()
        self._pending = initial_data  # received, not yet given to h11 (see _feed)

    def _new_state_machine(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_header_block)

    # -------------------------------------------------------------- I/O

    async def receive(self) -> bytes:
        """Bytes from the client; b"" (which h11 reads as EOF) once it has closed its side."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return await self._read()

    def _feed(self, data: bytes) -> bytes:
        """Give h11 what fits of `data`, keep the rest for `receive`; return what fitted.

        h11 answers 431 once more than max_header_block bytes of what it
        waits for (a head, a chunk-size line, trailers) are buffered: a long
        one arriving in pieces is refused, while the same bytes read at once
        would be parsed. With h11 never holding more than the limit plus one
        byte, a longer one is never there whole and is refused however its
        bytes arrive.
        """
        h = self._h11
        room = self._limits.max_header_block + 1 - len(h._receive_buffer)  # no public size
        if len(data) > room:
            data, self._pending = data[:room], data[room:]
        h.receive_data(data)
        return data

    async def send(self, data: bytes) -> None:
        try:
            await super().send(data)
        except BaseException:
            self._h11.send_failed()
            raise

    def next_event(self) -> Any:
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise _translate(exc) from exc

    # -------------------------------------------------------------- main loop

    def _new_exchange(self, request: Request) -> HTTP11Exchange:
        return HTTP11Exchange(self, request)

    async def _answer_error(self, exc: RemoteProtocolError) -> None:
        log.warning("%s %d %s", peer(self._client), exc.status, exc.message)
        h = self._h11
        if h.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{exc.status} {reason_phrase(exc.status).decode()}: {exc.message}\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"date", DATE.now()),
            (b"server", self._server_header),
        ]
        try:
            data = h.send(h11.Response(status_code=exc.status, headers=headers,
                                       reason=reason_phrase(exc.status)))
            if not self._answering_head:
                data += h.send(h11.Data(data=body))
            data += h.send(h11.EndOfMessage())
            await self.send(data)
        except (h11.LocalProtocolError, ClientDisconnected):
            pass

    async def _next_cycle(self, exchange: HTTP11Exchange) -> bool:
        """Get ready for the next request; False to close the connection."""
        h = self._h11
        if exchange.keep_http10_alive:
            if h.their_state is h11.SEND_BODY and not await self._drain_body(exchange):
                return False
            leftover, closed = h.trailing_data
            if closed:
                return False
            self._h11 = self._new_state_machine()
            self._pending = leftover + self._pending
            return True
        if h.our_state is not h11.DONE or exchange.continue_unanswered:
            return False  # a client still waiting for 100 Continue may never send its body
        if h.their_state is h11.SEND_BODY and not await self._drain_body(exchange):
            return False
        if h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        return True

    async def _drain_body(self, exchange: HTTP11Exchange) -> bool:
        """Discard what the app left of the request body, within bounds."""
        if type(self.next_event_if_ready()) is h11.EndOfMessage:
            return True  # the common case: a request without a body
        drained = await drain_body(exchange)
        self.linger_on_close = not drained
        return drained

    def next_event_if_ready(self) -> Any:
        """The next event if h11 has it buffered, else NEED_DATA; never reads."""
        event = self.next_event()
        if type(event) is h11.EndOfMessage:
            for name, _ in event.headers:
                if name in FORBIDDEN_TRAILERS:
                    raise BadRequest(f"{name.decode()} is not allowed in a trailer")
        return event

    async def _receive_request(self) -> Request | None:
        h = self._h11
        control = self.control
        self._answering_head = False
        head = [h.trailing_data[0]]
        event = self.next_event()
        if event is h11.NEED_DATA:
            limits = self._limits
            if control.draining and not head[0]:
                return None
            # Idle only with nothing of the next request here yet.
            control.idle = not head[0]
            control.arm(IDLE if control.idle else HEAD,
                        limits.keep_alive_timeout if control.idle else limits.header_timeout)
            try:
                data = await self.receive()
            finally:
                control.idle = False
            if not data and not head[0]:
                return None  # closed between requests; EOF inside a request is h11's to judge
            if not self._requests and not head[0]:
                sniffed = await self._sniff_http2(data)
                if sniffed is None:
                    return None  # HTTP/2 with prior knowledge
                data = sniffed
            head.append(self._feed(data))
            event = self.next_event()
            if event is h11.NEED_DATA:
                control.arm(HEAD, limits.header_timeout)
                while event is h11.NEED_DATA:
                    head.append(self._feed(await self.receive()))
                    event = self.next_event()
            control.disarm()
        if type(event) is not h11.Request:
            return None  # ConnectionClosed
        self._requests += 1
        self._answering_head = event.method == b"HEAD"
        request = self._to_request(event, b"".join(head))
        if _asks_for_h2c(request) and self._scheme == "http":
            await self._upgrade_to_h2c(request)
            return None
        return request

    async def _upgrade_to_h2c(self, request: Request) -> None:
        """RFC 7540 3.2: read the whole request, answer 101, go on in HTTP/2 with it as stream 1.

        `_asks_for_h2c` let only a body of at most UPGRADE_BODY_LIMIT bytes through.
        """
        exchange = HTTP11Exchange(self, request)
        body = bytearray()
        while piece := await exchange.receive_body(UPGRADE_BODY_LIMIT):
            body += piece
        settings = request.header(b"http2-settings") or b""
        switch = h11.InformationalResponse(
            status_code=101, headers=[(b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")],
            reason=b"Switching Protocols",
        )
        await self.send(self._h11.send(switch))
        leftover = self._h11.trailing_data[0] + self._pending
        self._switch_to_http2(initial_data=leftover, upgrade=(settings, request, bytes(body)))

    # -------------------------------------------------------------- validation

    def _to_request(self, event: h11.Request, raw: bytes) -> Request:
        _check_head(raw, self._limits)
        version = event.http_version.decode("ascii")
        return self._make_request(event.method, event.target, version, list(event.headers))


def _asks_for_h2c(request: Request) -> bool:
    """An HTTP/1.1 request asking to continue in cleartext HTTP/2 (RFC 7540 3.2), and granted.

    A server may always ignore Upgrade and answer on HTTP/1.1; it does so
    when HTTP2-Settings is repeated or malformed (3.2.1: the server must not
    upgrade then), and when the body is of unknown length or larger than
    UPGRADE_BODY_LIMIT, since all of it is read before the 101.
    """
    if request.http_version != "1.1":
        return False
    settings = [value for name, value in request.headers if name == b"http2-settings"]
    if len(settings) != 1:
        return False
    upgrades = [v.lower() for v in request.header_list(b"upgrade")]
    options = [v.lower() for v in request.header_list(b"connection")]
    if not (b"h2c" in upgrades and b"upgrade" in options and b"http2-settings" in options):
        return False
    if request.header(b"transfer-encoding") is not None:
        return False
    length = request.header(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > UPGRADE_BODY_LIMIT):
        return False
    return upgrade_settings_valid(settings[0])


def _check_head(raw: bytes, limits: Limits) -> None:
    """Checks that need the head as sent, before h11 normalised it."""
    end = _HEAD_END.search(raw)
    head = raw[: end.start() + 1] if end else raw
    if _BARE_LF.search(head):
        # RFC 9112 2.2 lets a server accept it; llhttp does not, and neither do we
        raise BadRequest("bare LF in request head")
    if b"\n " in head or b"\n\t" in head:
        raise BadRequest("obsolete line folding in header")
    if has_bad_field_byte(head.replace(b"\r\n", b"\n").replace(b"\n", b"")):
        raise BadRequest("control character in request head")
    lower = head.lower()
    if lower.count(b"\ncontent-length") > 1:
        raise BadRequest("more than one Content-Length field")
    at = lower.find(b"\ncontent-length")
    if at >= 0 and b"," in lower[at : lower.find(b"\n", at + 1)]:
        raise BadRequest("Content-Length in list form")


def _translate(exc: h11.RemoteProtocolError) -> RemoteProtocolError:
    message = _BYTEARRAY.sub(r"\1", str(exc))  # h11 quotes offending bytes as bytearray(b'...')
    status = exc.error_status_hint
    if status == 431:
        return HeadersTooLarge("request head over the size limit")
    if status == 501:
        return NotImplementedHere(message)
    if status == 505:
        return VersionNotSupported(message)
    return BadRequest(message, status=status if 400 <= status < 500 else 400)


class HTTP11Exchange:
    """One request/response on an HTTP/1.x connection."""

    __slots__ = (
        "_body_done",
        "_conn",
        "_head",
        "_is_head",
        "_keep_alive_10",
        "continue_unanswered",
        "finished",
        "keep_http10_alive",
        "request",
        "response_started",
        "stats",
    )

    def __init__(self, conn: HTTP11Connection, request: Request) -> None:
        self._conn = conn
        self.request = request
        self.stats = ExchangeStats(started=time.monotonic())
        self.response_started = False
        self.finished = False
        self._body_done = False
        self._head = b""
        self._is_head = request.method == "HEAD"
        self._keep_alive_10 = request.http_version == "1.0" and b"keep-alive" in (
            v.lower() for v in request.header_list(b"connection")
        )
        self.keep_http10_alive = False
        self.continue_unanswered = bool(conn._h11.they_are_waiting_for_100_continue)

    @property
    def expects_continue(self) -> bool:
        return bool(self._conn._h11.they_are_waiting_for_100_continue)

    def promise(self, target: bytes) -> bool:
        return False  # HTTP/1.x has no push

    def close_after_response(self) -> None:
        self._keep_alive_10 = False
        self._conn.control.draining = True

    async def receive_body(self, max_bytes: int) -> bytes:
        if self._body_done:
            return b""
        conn = self._conn
        h = conn._h11
        if h.they_are_waiting_for_100_continue:
            if self.response_started:
                return b""  # answered without the body: the client will not send it
            await conn.send(h.send(h11.InformationalResponse(status_code=100, headers=[],
                                                             reason=b"Continue")))
            self.continue_unanswered = False
        limits = conn._limits
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.control.arm(BODY, limits.body_timeout)
                try:
                    data = await conn.receive()
                finally:
                    conn.control.disarm()
                conn._feed(data)
                continue
            kind = type(event)
            if kind is h11.Data:
                self.stats.bytes_in += len(event.data)
                if limits.max_body_size and self.stats.bytes_in > limits.max_body_size:
                    raise BodyTooLarge(f"body over {limits.max_body_size} bytes")
                return bytes(event.data)
            if kind is h11.EndOfMessage:
                self._body_done = True
                for name, _ in event.headers:
                    if name in FORBIDDEN_TRAILERS:
                        raise BadRequest(f"{name.decode()} is not allowed in a trailer")
                return b""
            raise ClientDisconnected("connection closed during the request body")

    def _response_headers(self, headers: Headers) -> list[tuple[bytes, bytes]]:
        conn = self._conn
        out = list(headers)
        has_date = has_server = False
        for name, _ in out:
            lower = name.lower()
            if lower == b"date":
                has_date = True
            elif lower == b"server":
                has_server = True
        if not has_date:
            out.append((b"Date", DATE.now()))
        if not has_server:
            out.append((b"Server", conn._server_header))
        limit = conn._limits.max_requests_per_connection
        unread = not self.continue_unanswered \
            and too_much_left(self.request, self.stats.bytes_in, self.stats.status)
        if unread:
            conn.linger_on_close = True
        if conn.control.draining or (limit and conn._requests >= limit) or self.continue_unanswered \
                or unread:
            out.append((b"Connection", b"close"))
            self._keep_alive_10 = False
        return out

    def _head_bytes(self, status: int, headers: Headers, reason: bytes) -> bytes:
        if self.response_started:
            raise RuntimeError("response already started")
        self.response_started = True
        self.stats.status = status
        self.stats.responded = time.monotonic()
        try:
            response = h11.Response(status_code=status, headers=self._response_headers(headers),
                                    reason=reason or reason_phrase(status))
            data = self._conn._h11.send(response)
        except h11.LocalProtocolError as exc:
            raise ValueError(f"invalid response head: {exc}") from exc
        if self._keep_alive_10:
            data = self._http10_keep_alive(data)
        return data

    def _http10_keep_alive(self, head: bytes) -> bytes:
        # h11 closes every HTTP/1.0 connection. When the client asked for
        # keep-alive and the body has a length, say keep-alive instead and
        # continue with a fresh state machine after this response.
        lower = head.lower()
        if b"\r\ncontent-length:" not in lower and not self._is_head:
            return head
        self.keep_http10_alive = True
        return head.replace(b"\r\nConnection: close\r\n", b"\r\nConnection: keep-alive\r\n", 1)

    async def start_response(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        self._head = self._head_bytes(status, headers, reason)

    async def send_body(self, data: bytes) -> None:
        if not data or self._is_head:
            return
        try:
            out = self._conn._h11.send(h11.Data(data=data))
        except h11.LocalProtocolError as exc:
            raise ValueError(f"response body does not match its framing: {exc}") from exc
        self.stats.bytes_out += len(data)
        if self._head:
            out = self._head + out
            self._head = b""
        await self._conn.send(out)

    async def end_response(self, trailers: Headers = ()) -> None:
        h = self._conn._h11
        try:
            out = h.send(h11.EndOfMessage(headers=list(trailers)))
        except h11.LocalProtocolError as exc:
            if not trailers:
                raise ValueError(f"response body does not match its framing: {exc}") from exc
            out = h.send(h11.EndOfMessage())  # trailers need chunked framing; drop them
        if self._head:
            out = self._head + out
            self._head = b""
        if out:
            await self._conn.send(out)
        self.finished = True
        self.stats.finished = time.monotonic()

    async def switch_protocol(self, headers: Headers) -> Tunnel:
        """101 Switching Protocols; the rest of the connection belongs to the new protocol."""
        while await self.receive_body(65536):
            pass  # h11 switches only once the request is complete
        conn = self._conn
        if self.response_started:
            raise RuntimeError("response already started")
        try:
            data = conn._h11.send(h11.InformationalResponse(
                status_code=101, headers=[*headers, (b"Date", DATE.now()), (b"Server", conn._server_header)],
                reason=b"Switching Protocols",
            ))
        except h11.LocalProtocolError as exc:
            raise RuntimeError(f"the request did not ask for a protocol switch: {exc}") from exc
        self.response_started = True
        self.finished = True
        self.stats.status = 101
        self.stats.responded = time.monotonic()
        await conn.send(data)
        leftover = conn._h11.trailing_data[0] + conn._pending
        conn._pending = b""
        return conn.upgraded_stream(leftover)

    async def respond(
        self, status: int, headers: Headers, body: bytes = b"", reason: bytes = b""
    ) -> None:
        headers = list(headers)
        if not any(name.lower() == b"content-length" for name, _ in headers) and status >= 200 \
                and status not in (204, 304):
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        out = self._head_bytes(status, headers, reason)
        h = self._conn._h11
        try:
            if body and not self._is_head:
                out += h.send(h11.Data(data=body))
                self.stats.bytes_out += len(body)
            out += h.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ValueError(f"response body does not match its framing: {exc}") from exc
        await self._conn.send(out)
        self.finished = True
        self.stats.finished = time.monotonic()
