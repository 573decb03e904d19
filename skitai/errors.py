"""Skitai's exceptions. Each names the answer it gets on the wire.

SkitaiError
├── ConfigError              bad options to run()/serve()/the CLI; raised before serving
├── ClientDisconnected       the peer went away while we were writing or reading
│   └── WebSocketClosed      a WebSocket used after its close; carries the close code
└── RemoteProtocolError      the client broke the protocol: answered, logged, then closed
    ├── BadRequest           400, malformed request line, header or framing
    │   └── MalformedRequest HTTP/2: a request head RFC 9113 8 calls malformed; reset, never answered
    ├── RequestTimeout       408, the request head or body did not arrive in time
    ├── BodyTooLarge         413, the body is over the configured limit
    ├── TargetTooLong        414, the request-target is over the request line limit
    ├── HeadersTooLarge      431, too many header fields or too large a header block
    ├── NotImplementedHere   501, an unknown transfer coding
    ├── VersionNotSupported  505, an HTTP version we do not speak
    └── HandshakeRefused     400, 403 or 426: a WebSocket handshake we do not accept

A `RemoteProtocolError` carries `status` (the HTTP answer), `h2_code` (the
HTTP/2 error code for the stream or connection) and `close_code` (the
WebSocket close code). The connection boundary turns one into one response,
one log line and, where the framing is lost, a close.
"""

from __future__ import annotations

from typing import ClassVar


class SkitaiError(Exception):
    """Base of every exception Skitai raises."""


class ConfigError(SkitaiError, ValueError):
    """An option is unknown, of the wrong type or out of range."""


class ClientDisconnected(SkitaiError):
    """The client closed or reset the connection."""


class WebSocketClosed(ClientDisconnected):
    """The WebSocket is closed: nothing more can be received or sent.

    `code` is the close code of the closing handshake (the client's, or the
    one the server sent), 1006 when the connection ended without one.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class RemoteProtocolError(SkitaiError):
    """The peer sent something the protocol does not allow."""

    status: ClassVar[int] = 400
    h2_code: ClassVar[int] = 0x1  # PROTOCOL_ERROR
    close_code: ClassVar[int] = 1002

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status  # type: ignore[misc]


class BadRequest(RemoteProtocolError):
    status = 400


class MalformedRequest(BadRequest):
    """HTTP/2 answers it with RST_STREAM(PROTOCOL_ERROR) on the stream, not with a response."""


class RequestTimeout(RemoteProtocolError):
    status = 408
    h2_code = 0x8  # CANCEL
    close_code = 1001


class BodyTooLarge(RemoteProtocolError):
    status = 413
    h2_code = 0xB  # ENHANCE_YOUR_CALM
    close_code = 1009


class TargetTooLong(RemoteProtocolError):
    status = 414


class HeadersTooLarge(RemoteProtocolError):
    status = 431
    h2_code = 0xB  # ENHANCE_YOUR_CALM


class NotImplementedHere(RemoteProtocolError):
    status = 501


class VersionNotSupported(RemoteProtocolError):
    status = 505


class HandshakeRefused(RemoteProtocolError):
    """A WebSocket opening handshake the server refuses, with the headers the answer needs."""

    def __init__(
        self, message: str, *, status: int = 400, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message, status=status)
        self.headers = headers
