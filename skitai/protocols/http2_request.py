"""An HTTP/2 request head, checked and turned into a neutral `Request`.

h2 can check header blocks itself, in a chain of generators that costs as
much as the rest of a small request's decoding; the driver turns that off
and checks here instead, in the one pass that also builds the `Request`.
What RFC 9113 8.2 and 8.3 call malformed raises `MalformedRequest` (the
stream is reset with PROTOCOL_ERROR, as 8.1.1 asks, and the connection goes
on); what is well-formed but over a limit raises the error whose HTTP
answer the client gets (413, 414, 431).

`:scheme` must be there (8.3.1), but its value is not taken: the request
carries the scheme of the connection it came on (`https` over TLS, `http`
otherwise). The server is no proxy, so it serves its own scheme only, and
a client cannot make a cleartext request look secure to the app, nor the
other way round.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from skitai.config import Limits
from skitai.errors import BadRequest, BodyTooLarge, HeadersTooLarge, MalformedRequest, TargetTooLong
from skitai.protocols.events import Request
from skitai.protocols.headers import has_bad_field_byte
from skitai.protocols.http1_rules import split_target

# RFC 9113 8.2.1: names are lower-case tokens; 8.3: these pseudo-headers only.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
# RFC 9113 8.2.2: connection-specific fields make a request malformed.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_FIELD_OVERHEAD = 32  # RFC 9113 6.5.2 counts 32 bytes a field


def check_trailers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Request trailers: regular fields only (RFC 9113 8.1)."""
    for name, value in headers:
        if not _FIELD_NAME.fullmatch(name) or has_bad_field_byte(value):
            raise MalformedRequest(f"invalid trailer field {name!r}")


def to_request(
    raw_headers: Iterable[tuple[bytes, bytes]],
    *,
    limits: Limits,
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int],
    stream_id: int,
    connection_number: int,
    request_number: int,
) -> Request:
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    size = 0
    host: bytes | None = None
    length: bytes | None = None
    max_line = limits.max_header_line
    for name, value in raw_headers:
        size += len(name) + len(value) + _FIELD_OVERHEAD
        if name[:1] == b":":
            if headers:
                raise MalformedRequest(f"pseudo-header {name!r} after a regular field")
            if name not in _PSEUDO:
                raise MalformedRequest(f"pseudo-header {name!r} is not a request's")
            if name in pseudo:
                raise MalformedRequest(f"pseudo-header {name!r} twice")
            pseudo[name] = value
            continue
        if not _FIELD_NAME.fullmatch(name):
            raise MalformedRequest(f"invalid field name {name!r}")
        if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
            raise MalformedRequest(f"whitespace around the value of {name.decode()!r}")
        if name in _CONNECTION_SPECIFIC:
            raise MalformedRequest(f"connection-specific field {name.decode()!r}")
        if name == b"te" and value.lower() != b"trailers":
            raise MalformedRequest("te other than trailers")
        if name == b"host":
            if host is not None:
                raise MalformedRequest("two host fields")
            host = value
        elif name == b"content-length":
            length = value
        if len(name) + len(value) + 4 > max_line:
            raise HeadersTooLarge(f"header field {name.decode()!r} over {max_line} bytes")
        if has_bad_field_byte(value):
            raise BadRequest(f"control character in header {name.decode()!r}")
        headers.append((name, value))
    method_bytes = pseudo.get(b":method")
    if method_bytes is None:
        raise MalformedRequest("no :method")
    method = method_bytes.decode("latin-1")
    authority = pseudo.get(b":authority")
    if method == "CONNECT" and b":protocol" not in pseudo:
        # RFC 9113 8.5: the authority is the target; no :scheme, no :path
        if b":scheme" in pseudo or b":path" in pseudo or authority is None:
            raise MalformedRequest("CONNECT needs :authority and no :scheme or :path")
        target = authority
    else:
        if b":protocol" in pseudo and method != "CONNECT":
            raise MalformedRequest(":protocol on a request other than CONNECT")
        target = pseudo.get(b":path", b"")
        if b":scheme" not in pseudo or not target:
            raise MalformedRequest("no :scheme or no :path")
        if target[:1] != b"/" and not (target == b"*" and method == "OPTIONS"):
            raise MalformedRequest(f":path {target[:64]!r} is not a path")
    if host is None:
        if authority is None:
            raise MalformedRequest("neither :authority nor host")
        headers.insert(0, (b"host", authority))
    elif authority is not None and authority != host:
        raise MalformedRequest(":authority and host differ")
    if size > limits.max_header_block:
        raise HeadersTooLarge("request headers over the size limit")
    if len(headers) > limits.max_headers + (host is None):
        raise HeadersTooLarge(f"more than {limits.max_headers} header fields")
    if len(method) + len(target) + 10 > limits.max_request_line:
        raise TargetTooLong(f"request line over {limits.max_request_line} bytes")
    if length is not None:
        if not length.isdigit():
            raise BadRequest("invalid Content-Length")
        if limits.max_body_size and int(length) > limits.max_body_size:
            raise BodyTooLarge(f"body of {int(length)} bytes over {limits.max_body_size}")
    path, query = split_target(method, target)
    return Request(
        method=method,
        target=target,
        path=path,
        query=query,
        http_version="2",
        headers=headers,
        scheme=scheme,  # the connection's: a client's :scheme cannot make h2c https
        client=client,
        server=server,
        stream_id=stream_id,
        connection_number=connection_number,
        request_number=request_number,
        protocol=None if (protocol := pseudo.get(b":protocol")) is None else protocol.decode("latin-1"),
    )
