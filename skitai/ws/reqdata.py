"""WEBSOCKET_REQDATA: each message re-runs the app, AJAX style, in the server's worker pool.

The message is appended to the handshake's query string as
`varname=<message>` (percent-encoded), so Flask reads it from
`request.args` and Saddle passes it as an argument; the first item of the
app's body is sent back, as text when the message was text (and the reply
is UTF-8), else as binary. An empty first item sends nothing. A 5xx answer
or an exception closes the session with 1011. Messages are answered one at
a time, in order; no thread is held between them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import quote, quote_from_bytes

from skitai.errors import WebSocketClosed
from skitai.protocols.websocket import INTERNAL, Data, WebSocketConnection
from skitai.ws.services import WebSocketServices
from skitai.ws.specs import WsgiApp, first_item, session_environ

log = logging.getLogger("skitai.server")


async def serve_reqdata(
    conn: WebSocketConnection, app: WsgiApp, environ: dict[str, Any], varname: str,
    services: WebSocketServices,
) -> None:
    query = environ.get("QUERY_STRING", "")
    name = quote(varname)

    async def answer() -> None:
        while True:
            try:
                message = await conn.receive()
            except WebSocketClosed:
                return
            value = quote(message) if isinstance(message, str) else quote_from_bytes(message)
            call_environ = session_environ(
                environ, QUERY_STRING=f"{query}&{name}={value}" if query else f"{name}={value}",
            )
            status, reply = await services.in_pool(functools.partial(first_item, app, call_environ))
            if status >= 500:
                log.warning("WebSocket %s: the app answered %d; closing %d",
                            environ.get("PATH_INFO"), status, INTERNAL)
                await conn.close(INTERNAL, "app failed")
                return
            if reply:
                await conn.send(_as_received(reply, text=isinstance(message, str)))

    await conn.serve(answer)


def _as_received(reply: bytes, *, text: bool) -> Data:
    if text:
        try:
            return reply.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return reply
