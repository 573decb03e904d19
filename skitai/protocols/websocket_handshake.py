"""The WebSocket opening handshake: checking the request, building the answer.

Over HTTP/1.1 (RFC 6455 4.2) a handshake is a GET with `Upgrade: websocket`,
`Connection: Upgrade`, `Sec-WebSocket-Version: 13` and a key of 16 base64
bytes, answered by `101` with the key's `Sec-WebSocket-Accept`. Over HTTP/2
(RFC 8441) it is an extended CONNECT with `:protocol websocket`, answered by
200, without key or accept. Both may offer subprotocols and extensions; the
server picks one subprotocol and accepts permessage-deflate (RFC 7692) with
the parameters of the first offer it can honour.

Browsers always send `Origin`; a page may only open a WebSocket to the
server it came from, or to an origin of the configured allow-list (exact
matches of scheme, host and port). A request without `Origin` does not come
from a browser page and is not subject to the check.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Sequence
from dataclasses import dataclass

from wsproto.extensions import Extension
from wsproto.utilities import generate_accept_token

from skitai.errors import HandshakeRefused
from skitai.protocols.events import Request

VERSION = b"13"
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


@dataclass(frozen=True, slots=True)
class Offer:
    """What a valid handshake request asks for."""

    key: bytes | None  # Sec-WebSocket-Key; None over HTTP/2
    subprotocols: tuple[str, ...]
    extensions: tuple[str, ...]  # the offers of Sec-WebSocket-Extensions, one per item


def is_websocket_request(request: Request) -> bool:
    """A request that asks for a WebSocket, valid or not."""
    if request.http_version == "2":
        return request.method == "CONNECT" and request.protocol == "websocket"
    return request.method == "GET" and any(
        token.lower() == b"websocket" for token in request.header_list(b"upgrade")
    )


def check_request(request: Request, allowed_origins: Sequence[str]) -> Offer:
    """The offer of a handshake request, or HandshakeRefused with the answer it deserves."""
    key = None
    if request.http_version != "2":
        if request.http_version != "1.1":
            raise HandshakeRefused("a WebSocket handshake needs HTTP/1.1")
        if not any(token.lower() == b"upgrade" for token in request.header_list(b"connection")):
            raise HandshakeRefused("a WebSocket handshake needs 'Connection: Upgrade'")
        key = request.header(b"sec-websocket-key")
        if key is None or not _valid_key(key):
            raise HandshakeRefused("missing or malformed Sec-WebSocket-Key")
    if request.header(b"sec-websocket-version") != VERSION:
        raise HandshakeRefused("unsupported WebSocket version, 13 is spoken here", status=426,
                               headers=((b"Sec-WebSocket-Version", VERSION),))
    origin = request.header(b"origin")
    if origin is not None and not origin_allowed(origin.decode("latin-1"), request, allowed_origins):
        raise HandshakeRefused(f"origin {origin.decode('latin-1')!r} not allowed", status=403)
    return Offer(
        key=key,
        subprotocols=tuple(v.decode("latin-1") for v in request.header_list(b"sec-websocket-protocol")),
        extensions=tuple(v.decode("latin-1") for v in request.header_list(b"sec-websocket-extensions")),
    )


def origin_allowed(origin: str, request: Request, allowed: Sequence[str]) -> bool:
    """The request's own origin, one of `allowed` (normalised as Config does) or any with "*"."""
    if "*" in allowed:
        return True
    origin = normalise_origin(origin)
    if origin in allowed:
        return True
    host = request.header(b"host")
    return host is not None and origin == normalise_origin(f"{request.scheme}://{host.decode('latin-1')}")


def normalise_origin(origin: str) -> str:
    scheme, sep, host = origin.strip().lower().partition("://")
    if not sep:
        return origin.strip().lower()  # "null", or nothing like an origin
    return f"{scheme}://{host.removesuffix(_DEFAULT_PORTS.get(scheme, ' '))}"


def choose_subprotocol(offer: Offer, supported: Sequence[str]) -> str | None:
    """The first of the server's subprotocols (its order of preference) that the client offers."""
    return next((name for name in supported if name in offer.subprotocols), None)


def accept_headers(
    request: Request, offer: Offer, subprotocol: str | None, extensions: list[Extension]
) -> list[tuple[bytes, bytes]]:
    """The headers of the answer; negotiates (and so configures) `extensions`."""
    headers: list[tuple[bytes, bytes]] = []
    if offer.key is not None:
        headers += [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                    (b"Sec-WebSocket-Accept", generate_accept_token(offer.key))]
    if subprotocol is not None:
        headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
    accepted = negotiate_extensions(offer.extensions, extensions)
    if accepted:
        headers.append((b"Sec-WebSocket-Extensions", accepted))
    return headers


def negotiate_extensions(offers: Sequence[str], extensions: list[Extension]) -> bytes | None:
    """Agree on extensions; `extensions` keeps only those accepted, configured by their offer.

    RFC 7692 5.1: of several offers of one extension the server takes the
    first it can honour, and only that offer's parameters apply (wsproto's
    own negotiation feeds every offer to one instance, so settings of an
    earlier offer would linger). An offer with parameters that do not parse
    is declined, never an error: the session goes on without the extension.
    """
    answers: list[bytes] = []
    for index, extension in reversed(list(enumerate(extensions))):
        for offered in offers:
            if offered.split(";", 1)[0].strip() != extension.name:
                continue
            candidate = copy.deepcopy(extension)
            try:
                answer = candidate.accept(offered)
            except (ValueError, TypeError):
                continue
            if answer is None or answer is False:
                continue
            extensions[index] = candidate
            params = "" if answer is True else answer
            answers.append(f"{extension.name}; {params}".encode("ascii") if params
                           else extension.name.encode("ascii"))
            break
        else:
            del extensions[index]
    return b", ".join(reversed(answers)) or None


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False
