"""The neutral vocabulary shared by protocol drivers and the adapters above them.

A driver (HTTP/1.1 on h11 or llhttp, HTTP/2 on h2) turns its state
machine's events into a `Request` and hands the adapters an `Exchange`: the
one object through which a request's body is read and its response written.
An exchange that switches protocols (a WebSocket handshake: HTTP/1.1
`Upgrade`, or an HTTP/2 extended CONNECT) hands over a `Tunnel`, the byte
stream the other protocol then runs on. No h11, h2 or wsproto type leaks
past a driver, so WSGI, static files, WebSocket and the proxy are written
once for every protocol.

Header names are lower-case bytes, values bytes, in arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = Sequence[tuple[bytes, bytes]]


@dataclass(slots=True, kw_only=True)
class Request:
    """A request head, as decoded and validated by a driver."""

    method: str
    target: bytes  # raw request-target: origin-form path and query, or absolute-form
    path: bytes  # raw (still percent-encoded) path part of the target
    query: bytes  # raw query string, without "?"
    http_version: str  # "1.0", "1.1", "2"
    headers: Headers
    scheme: str  # "http" or "https"
    client: tuple[str, int] | None
    server: tuple[str, int]
    stream_id: int | None = None
    # Whether a body follows the head, where the protocol says so without
    # headers (HTTP/2: no END_STREAM on HEADERS); None: Content-Length or
    # Transfer-Encoding tell.
    body_follows: bool | None = None
    pushed: bool = False  # a request the server made up for an HTTP/2 push
    protocol: str | None = None  # the :protocol of an HTTP/2 extended CONNECT (RFC 8441)
    connection_number: int = 0  # counts connections since the server started
    request_number: int = 0  # counts requests on this connection (HTTP/2: streams)

    def header(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The first value of a header (name in lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_list(self, name: bytes) -> list[bytes]:
        """Every value of a header, comma-separated lists split and stripped."""
        values: list[bytes] = []
        for key, value in self.headers:
            if key == name:
                values.extend(part.strip() for part in value.split(b",") if part.strip())
        return values

    @property
    def request_line(self) -> str:
        """The request line as the access log shows it."""
        target = self.target.decode("latin-1")
        line = f"{self.method} {target} HTTP/{self.http_version}"
        return f"PUSH {line}" if self.pushed else line


@dataclass(slots=True)
class WebSocketStats:
    """What the access log reports about one WebSocket session."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0  # message payload (characters of text messages)
    bytes_out: int = 0
    close_code: int | None = None  # as sent or received; 1006 when the connection just ended


@dataclass(slots=True)
class ExchangeStats:
    """What the access log reports about one exchange."""

    started: float = 0.0  # when the request head was complete (time.monotonic)
    responded: float = 0.0  # when the response head was handed to the driver
    finished: float = 0.0  # when the last response byte was written
    status: int = 0
    bytes_in: int = 0  # request body bytes received
    bytes_out: int = 0  # response body bytes sent (after compression)
    user: str | None = None
    websocket: WebSocketStats | None = None  # set once the exchange became a WebSocket session


class Tunnel(Protocol):
    """The byte stream of an exchange after a protocol switch.

    Over HTTP/1.1 it is the connection itself, starting with any bytes that
    arrived behind the request head; over HTTP/2 it is the DATA frames of
    the request's stream, flow-controlled as it is read.
    """

    async def receive(self) -> bytes:
        """The next bytes from the client; b"" once it has ended its side."""

    async def send(self, data: bytes) -> None:
        """Write bytes; raises `ClientDisconnected` when the client is gone."""

    async def end(self) -> None:
        """End our side in order (HTTP/2: END_STREAM; HTTP/1.1: the driver closes the connection)."""


class Exchange(Protocol):
    """One request and its response, as a driver offers it to the adapters.

    The response is `start_response` once, then `send_body` any number of
    times, then `end_response`; or `respond` once for a complete response.
    A failed write raises `ClientDisconnected`.
    """

    request: Request
    stats: ExchangeStats
    finished: bool  # the whole response has been handed to the driver

    @property
    def expects_continue(self) -> bool:
        """The client sent `Expect: 100-continue` and waits for it."""

    @property
    def response_started(self) -> bool:
        """A response head has been sent (or queued for sending)."""

    async def receive_body(self, max_bytes: int) -> bytes:
        """The next piece of the request body; b"" once it has all arrived."""

    async def start_response(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        """Send the response head. Date and Server are added by the driver."""

    async def send_body(self, data: bytes) -> None:
        """Send part of the response body (dropped for HEAD requests)."""

    async def end_response(self, trailers: Headers = ()) -> None:
        """Finish the response."""

    async def respond(
        self, status: int, headers: Headers, body: bytes = b"", reason: bytes = b""
    ) -> None:
        """Send a whole response at once: head, body and end."""

    def close_after_response(self) -> None:
        """Ask the driver to close the connection once this response is sent."""

    def promise(self, target: bytes) -> bool:
        """Push a GET of `target` (a path) if the protocol and the client allow; True if pushed."""

    async def switch_protocol(self, headers: Headers) -> Tunnel:
        """Accept the request's protocol switch and return the stream that now carries it.

        HTTP/1.1 answers `101 Switching Protocols` with `headers`, HTTP/2 answers
        an extended CONNECT with 200. The exchange is finished from then on;
        the connection (HTTP/1.1) or stream (HTTP/2) ends with the tunnel.
        """
