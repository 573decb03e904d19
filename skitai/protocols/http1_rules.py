"""What both HTTP/1.x drivers check in a parsed request, and how both drain a body.

The parsers (h11, llhttp) each enforce part of RFC 9112; these checks make
the rest the same whichever parsed the request: the version, the limits,
framing headers that could smuggle a second request, and the
request-target forms of RFC 9112 3.2.
"""

from __future__ import annotations

import anyio

from skitai.config import Limits
from skitai.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    HeadersTooLarge,
    NotImplementedHere,
    RemoteProtocolError,
    TargetTooLong,
    VersionNotSupported,
)
from skitai.protocols.events import Exchange, Headers, Request

DRAIN_LIMIT = 262144  # unread request body we read and discard to keep a connection
DRAIN_TIMEOUT = 2.0
READ_SIZE = 65536

# Framing and routing fields in a trailer are an attack (RFC 9110 6.5.1); any
# other trailer is read and discarded, since WSGI has no place for trailers.
FORBIDDEN_TRAILERS = frozenset(
    {b"content-length", b"transfer-encoding", b"host", b"connection", b"te", b"trailer"}
)
SINGLETONS = frozenset({b"host", b"content-length", b"content-type", b"transfer-encoding"})


def check_request(method: bytes, target: bytes, version: str, headers: Headers, limits: Limits) -> None:
    """Raise the RemoteProtocolError a parsed request head deserves, if any."""
    if version not in ("1.1", "1.0"):
        raise VersionNotSupported(f"HTTP/{version} is not supported on this port")
    if len(method) + len(target) + 10 > limits.max_request_line:
        raise TargetTooLong(f"request line over {limits.max_request_line} bytes")
    if len(headers) > limits.max_headers:
        raise HeadersTooLarge(f"more than {limits.max_headers} header fields")
    codings = [c.strip().lower() for n, v in headers if n == b"transfer-encoding" for c in v.split(b",")]
    if codings and codings != [b"chunked"]:
        # a parser would decode the chunks and pass gzip (or worse) on as the body
        raise NotImplementedHere("only the chunked transfer coding is supported")
    seen: set[bytes] = set()
    for name, value in headers:
        if len(name) + len(value) + 4 > limits.max_header_line:
            raise HeadersTooLarge(f"header field {name.decode()!r} over {limits.max_header_line} bytes")
        if name in SINGLETONS:
            if name in seen:
                raise BadRequest(f"more than one {name.decode()} field")
            seen.add(name)
    if version == "1.1" and b"host" not in seen:
        raise BadRequest("missing Host header")
    if b"transfer-encoding" in seen:
        if b"content-length" in seen:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if version == "1.0":
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
    elif b"content-length" in seen and limits.max_body_size:
        length = int(header(headers, b"content-length") or b"0")
        if length > limits.max_body_size:
            raise BodyTooLarge(f"body of {length} bytes over {limits.max_body_size}")


def split_target(method: str, target: bytes) -> tuple[bytes, bytes]:
    """(path, query) of a request-target, or BadRequest for a form the method may not use."""
    if target.startswith(b"/"):
        path, _, query = target.partition(b"?")
        return path.partition(b"#")[0], query.partition(b"#")[0]
    if target == b"*":
        if method != "OPTIONS":
            raise BadRequest("asterisk-form request-target is only for OPTIONS")
        return b"*", b""
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.lower() in (b"http", b"https") and method != "CONNECT":
        slash = rest.find(b"/")
        path = rest[slash:] if slash >= 0 else b"/"
        path, _, query = path.partition(b"?")
        return path.partition(b"#")[0] or b"/", query.partition(b"#")[0]
    if method == "CONNECT":
        return target, b""
    raise BadRequest("request-target is neither origin-form nor absolute-form")


def header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


def too_much_left(request: Request, received: int, status: int) -> bool:
    """Whether the request body the app has not read is more than `drain_body` would read away.

    A response started then says `Connection: close`: the client must not
    send its next request on a connection the server will close. A 413
    always does (the body was refused); otherwise only a declared length
    tells, so the answer does not depend on how much of a chunked body
    happened to have arrived.
    """
    if status == 413:
        return True
    length = request.header(b"content-length")
    return length is not None and length.isdigit() and int(length) - received > DRAIN_LIMIT


async def drain_body(exchange: Exchange) -> bool:
    """Read and discard what the app left of the request body, within bounds.

    True when the body ended, so the connection can serve another request.
    """
    left = DRAIN_LIMIT
    with anyio.move_on_after(DRAIN_TIMEOUT):
        while left > 0:
            try:
                data = await exchange.receive_body(READ_SIZE)
            except (RemoteProtocolError, ClientDisconnected):
                return False
            if not data:
                return True
            left -= len(data)
    return False
