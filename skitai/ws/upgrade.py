"""From a handshake request to a running WebSocket session, and its access-log numbers.

1. The handshake is checked (version, key, Origin); a bad one is answered
   400, 403 or 426 and logged.
2. The design is found: a mounted `skitai.websocket` endpoint is one; a
   WSGI app is called once in the worker pool with `websocket_init` and
   says which (or answers as usual to decline: that answer is sent).
3. A design that needs a thread reserves it now: 503 when none is free.
4. The exchange switches protocols (101, or 200 over HTTP/2) with the
   agreed subprotocol and extensions, and the session runs on its tunnel
   until it closes. The access line then reports it.
"""

from __future__ import annotations

import functools
import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from wsproto.extensions import Extension, PerMessageDeflate

from skitai.errorpages import HTML, error_page
from skitai.errors import HandshakeRefused
from skitai.mounts import AppMount
from skitai.protocols.events import Exchange, Request
from skitai.protocols.websocket import WebSocketConnection
from skitai.protocols.websocket_handshake import (
    Offer,
    accept_headers,
    check_request,
    choose_subprotocol,
)
from skitai.ws.dedicated import serve_dedicated
from skitai.ws.endpoint import Endpoint
from skitai.ws.multicast import serve_member
from skitai.ws.reqdata import serve_reqdata
from skitai.ws.services import WebSocketServices
from skitai.ws.socket import WebSocket
from skitai.ws.specs import WEBSOCKET_MULTICAST, Declined, SeedDesign, ask_app
from skitai.wsgi import build_environ

Environ = dict[str, Any]

log = logging.getLogger("skitai.server")
app_log = logging.getLogger("skitai.app")


Session = Callable[[], Awaitable[None]]


async def open_websocket(
    exchange: Exchange, mount: AppMount, path_info: str, services: WebSocketServices,
    extra_environ: dict[str, Any],
) -> Session | None:
    """Check the handshake and find the design: the session to run, or None if answered already.

    The caller runs the session, so nothing of the handshake stays on the
    stack of an idle session.
    """
    request = exchange.request
    try:
        offer = check_request(request, services.config.websocket_origins)
    except HandshakeRefused as exc:
        await _refuse(exchange, exc.status, exc.message, exc.headers)
        return None
    build = functools.partial(_environ, request, mount, path_info, services, extra_environ)
    app = mount.app
    if isinstance(app, Endpoint):
        design: Endpoint | SeedDesign = app
        environ: Environ | Callable[[], Environ] = build  # built if the handler looks
    else:
        environ = build()
        environ["websocket_init"] = ""
        try:
            answer = await services.in_pool(functools.partial(ask_app, app, environ))
            if isinstance(answer, Declined):
                await exchange.respond(answer.status, answer.headers, answer.body, answer.reason)
                return None
            design = answer if isinstance(answer, Endpoint) else SeedDesign.parse(answer)
        except Exception:
            app_log.exception("WebSocket handshake of %s failed in the app", environ["PATH_INFO"])
            status, body = error_page(500)
            await exchange.respond(status, [HTML], body)
            return None
    return await _prepare(exchange, offer, design, app, environ, services)


async def _prepare(
    exchange: Exchange, offer: Offer, design: Endpoint | SeedDesign, app: Any,
    environ: Environ | Callable[[], Environ], services: WebSocketServices,
) -> Session | None:
    """Agree on subprotocol and room, reserve a thread if the design needs one."""
    room_key = None
    if isinstance(design, Endpoint):
        subprotocol = choose_subprotocol(offer, design.subprotocols)
    else:
        assert isinstance(environ, dict)
        subprotocol = choose_subprotocol(offer, [environ.get("websocket_subprotocol") or ""])
        if design.design == WEBSOCKET_MULTICAST:
            room_key = _room_key(environ, design.varname)
            if room_key is None:
                await _refuse(exchange, 400, f"query parameter {design.varname!r} missing")
                return None
    reserved = False
    if isinstance(design, SeedDesign) and (
        design.dedicated or (room_key is not None and room_key not in services.rooms)
    ):
        reserved = services.reserve_thread()
        if not reserved:
            await _refuse(exchange, 503, "no thread free for another WebSocket")
            return None
    return functools.partial(_session, exchange, offer, design, app, environ, services,
                             subprotocol, room_key, reserved)


async def _session(
    exchange: Exchange, offer: Offer, design: Endpoint | SeedDesign, app: Any,
    environ: Environ | Callable[[], Environ], services: WebSocketServices,
    subprotocol: str | None, room_key: str | None, reserved: bool,
) -> None:
    """Switch protocols and run the design until the session closes."""
    request = exchange.request
    try:
        extensions: list[Extension] = []
        if services.config.websocket_compression and any(
                offered.split(";")[0].strip() == PerMessageDeflate.name for offered in offer.extensions):
            extensions.append(PerMessageDeflate())
        tunnel = await exchange.switch_protocol(accept_headers(request, offer, subprotocol, extensions))
        conn = WebSocketConnection(tunnel, limits=services.limits, extensions=extensions,
                                   peer=_peer(request), keep_alive=design.keep_alive)
        stats = exchange.stats
        stats.websocket = conn.stats
        client_id = services.next_id()
        services.sessions.add(conn)
        try:
            if isinstance(design, Endpoint):
                socket = WebSocket(conn, id=client_id, environ=environ, subprotocol=subprotocol)
                await conn.serve(functools.partial(design, socket))
            else:
                assert isinstance(environ, dict)
                if room_key is not None:
                    await serve_member(conn, room_key, app, environ, services, client_id,
                                       reserved=reserved)
                    reserved = False  # the room owns the thread now
                elif design.dedicated:
                    await serve_dedicated(conn, app, environ, services, client_id)
                else:
                    assert design.varname is not None
                    await serve_reqdata(conn, app, environ, design.varname, services)
        finally:
            services.sessions.discard(conn)
            stats.bytes_in, stats.bytes_out = conn.stats.bytes_in, conn.stats.bytes_out
            stats.finished = time.monotonic()
    finally:
        if reserved:
            services.release_thread()


def _environ(
    request: Request, mount: AppMount, path_info: str, services: WebSocketServices,
    extra: dict[str, Any],
) -> Environ:
    environ = build_environ(request, mount.script_name, path_info,
                            server_software=services.config.server_name)
    environ.update(extra)
    environ["wsgi.input"] = io.BytesIO()
    # The same environ on both HTTP versions: a GET with `Upgrade: websocket`.
    # `Connection: Upgrade` is hop-by-hop and the server's; left in, Werkzeug
    # would route the handshake only to `websocket=True` rules, and the seed's
    # Flask examples (plain routes that look for websocket_init) would get 400.
    environ["REQUEST_METHOD"] = "GET"
    environ["HTTP_UPGRADE"] = "websocket"
    environ.pop("HTTP_CONNECTION", None)
    return environ


def _room_key(environ: dict[str, Any], varname: str | None) -> str | None:
    path = f"{environ['SCRIPT_NAME']}{environ['PATH_INFO']}"
    if varname is None:
        return path
    values = parse_qs(environ.get("QUERY_STRING", "")).get(varname)
    return f"{path}/{values[0]}" if values else None


async def _refuse(
    exchange: Exchange, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    log.warning("%s WebSocket handshake refused, %d: %s", _peer(exchange.request), status, message)
    status, body = error_page(status, message)
    await exchange.respond(status, [HTML, *headers], body)


def _peer(request: Request) -> str:
    return f"{request.client[0]}:{request.client[1]}" if request.client else "-"
