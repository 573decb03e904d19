"""WEBSOCKET_DEDICATE and WEBSOCKET_DEDICATE_THREADSAFE: the app runs once, in its own thread.

    ws = env["websocket"]
    while True:
        messages = ws.getswait(10)      # what arrived, waiting up to 10 s; None once closed
        if messages is None:
            break
        for m in messages:
            ws.send("You said: " + m)

`send` hands the message to the event loop and returns once it is queued
for writing (waiting while the client is slow to read), so any thread may
call it, also threads the handler starts (the THREADSAFE design's point;
both designs share this object). The session closes with 1000 when the app
returns and with 1011 when it raises.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from skitai.errors import ClientDisconnected
from skitai.protocols.websocket import Data, WebSocketConnection
from skitai.ws.inbox import ThreadInbox
from skitai.ws.services import WebSocketServices
from skitai.ws.specs import WsgiApp, run_once, session_environ

log = logging.getLogger("skitai.server")


class DedicatedSocket:
    """`env["websocket"]` of the DEDICATE designs; its methods are called from threads."""

    def __init__(
        self, conn: WebSocketConnection, inbox: ThreadInbox, token: anyio.lowlevel.EventLoopToken,
        client_id: int,
    ) -> None:
        self._conn = conn
        self._inbox = inbox
        self._token = token
        self.id = client_id

    def getswait(self, timeout: float | None = None) -> list[Data] | None:
        """Messages that have arrived, waiting up to `timeout` seconds for one ([] if none came);
        None once the WebSocket is closed and every message has been taken."""
        return self._inbox.take(timeout)

    def send(self, message: Data) -> bool:
        """Send a message (str: text, bytes: binary); False if the WebSocket is closed."""
        if not isinstance(message, str | bytes):
            raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")
        try:
            anyio.from_thread.run(self._conn.send, message, token=self._token)
        except (ClientDisconnected, RuntimeError):  # closed, or the server has stopped
            return False
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; `getswait` returns None once it is done."""
        try:
            anyio.from_thread.run(self._conn.close, code, reason, token=self._token)
        except (ClientDisconnected, RuntimeError):
            pass

    @property
    def closed(self) -> bool:
        return self._conn.closed


async def serve_dedicated(
    conn: WebSocketConnection, app: WsgiApp, environ: dict[str, Any], services: WebSocketServices,
    client_id: int,
) -> None:
    """Run the app in its reserved thread beside the connection; the caller releases the thread."""
    assert services.token is not None
    inbox = ThreadInbox(services.limits.websocket_queue, services.callbacks.call_soon)
    conn.sink = inbox
    socket = DedicatedSocket(conn, inbox, services.token, client_id)
    app_environ = session_environ(environ, websocket=socket)

    async def run_app() -> None:
        await services.in_thread(lambda: run_once(app, app_environ))

    await conn.run(run_app)
