"""From an exchange to the adapter that answers it, with the access log around it.

Every protocol driver calls one `RequestHandler` per request. It assigns the
transaction ids, walks the mount table (static directories, then apps, best
match first), answers 404 when nothing claims the path, and writes one
access line when the exchange is over, however it ended. The line's user
field is the `REMOTE_USER` an app put in the environ once it authenticated
the request (docs/reference/wsgi.md). An app that offers a loop handler for
the request (skitai.loopapp) is awaited on the event loop; every other app
goes down the WSGI path. A WebSocket handshake goes to the app mounted at
its path (skitai.ws), and its access line is written when the session ends.
A `skitai.websocket` endpoint may share its mount point with an app:
handshakes go to the endpoint, every other request to the app; alone, it
answers them 426.
"""

from __future__ import annotations

import logging
from typing import Any

from skitai import static, txn
from skitai.config import Config
from skitai.context import ServerContext
from skitai.errorpages import HTML, error_page
from skitai.errors import RemoteProtocolError
from skitai.log import access_line, access_log
from skitai.loopapp import LOOP_HANDLER, serve_on_loop
from skitai.mounts import AppMount, MountTable
from skitai.protocols.events import Exchange
from skitai.protocols.websocket_handshake import is_websocket_request
from skitai.threadpool import LoopCallbacks, WorkerPool
from skitai.ws.endpoint import Endpoint
from skitai.ws.services import WebSocketServices
from skitai.ws.upgrade import Session, open_websocket
from skitai.wsgi import build_environ, decode_path, serve_wsgi

log = logging.getLogger("skitai.server")


class RequestHandler:
    def __init__(
        self,
        config: Config,
        mounts: MountTable,
        pool: WorkerPool,
        callbacks: LoopCallbacks,
        context: ServerContext,
        websockets: WebSocketServices,
    ) -> None:
        self.config = config
        self.context = context
        self.mounts = mounts
        self.pool = pool
        self.callbacks = callbacks
        self.websockets = websockets
        self.server_software = config.server_name
        self.access_log = config.access_log

    async def __call__(self, exchange: Exchange) -> None:
        gtxnid, ltxnid = txn.assign(exchange.request)
        try:
            if is_websocket_request(exchange.request):
                # run here, not below: nothing of the handshake stays on an idle session's stack
                session = await self._websocket(exchange, gtxnid, ltxnid)
                if session is not None:
                    await session()
            else:
                await self._dispatch(exchange, gtxnid, ltxnid)
        except RemoteProtocolError as exc:
            if not exchange.response_started:
                exchange.stats.status = exc.status  # the driver answers it after this line
            raise
        finally:
            if self.access_log and access_log.isEnabledFor(logging.INFO):
                access_log.info("%s", access_line(exchange, gtxnid, ltxnid))

    async def _dispatch(self, exchange: Exchange, gtxnid: str, ltxnid: int) -> None:
        request = exchange.request
        if request.method == "CONNECT":
            await self._error(exchange, 405, "this server is not a proxy",
                              [(b"Allow", b"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS")])
            return
        if request.path == b"*":
            await exchange.respond(200, [(b"Allow", b"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS")])
            return
        path = decode_path(request.path)
        config = self.config
        endpoint_at = None
        for mount, path_info in self.mounts.match(path):
            if isinstance(mount, AppMount):
                if isinstance(mount.app, Endpoint):
                    endpoint_at = mount.point
                    continue
                if endpoint_at is not None and mount.point != endpoint_at:
                    break  # the endpoint's own URL: not for an app mounted above it
                environ = build_environ(request, mount.script_name, path_info,
                                        server_software=self.server_software)
                environ["skitai.gtxnid"] = gtxnid
                environ["skitai.ltxnid"] = ltxnid
                environ["skitai.server"] = self.context
                try:
                    await self._serve_app(exchange, mount, environ)
                finally:
                    # An app that authenticated the request names the user the CGI
                    # way; build_environ never sets REMOTE_USER, so only the app can.
                    user = environ.get("REMOTE_USER")
                    if isinstance(user, str) and user:
                        exchange.stats.user = user
                return
            if await static.serve(
                exchange,
                mount.root,
                path_info,
                script_name=mount.script_name,
                max_age=config.static_max_age,
                follow_symlinks=config.follow_symlinks,
                compression=config.compression,
            ):
                return
        if endpoint_at is not None:
            await self._error(exchange, 426, "this URL serves WebSocket only",
                              [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])
            return
        await self._error(exchange, 404)

    async def _serve_app(self, exchange: Exchange, mount: AppMount, environ: dict[str, Any]) -> None:
        app = mount.app
        loop_handler = getattr(app, LOOP_HANDLER, None)
        if loop_handler is not None:
            handle = loop_handler(environ)
            if handle is not None:
                await serve_on_loop(exchange, handle, environ, app=app, compression=self.config.compression)
                return
        await serve_wsgi(exchange, app, environ, pool=self.pool, callbacks=self.callbacks,
                         compression=self.config.compression)

    async def _websocket(self, exchange: Exchange, gtxnid: str, ltxnid: int) -> Session | None:
        """A WebSocket handshake: the app mounted at its path answers; static files never do.

        Returns the session to run, or None once the handshake is answered.
        """
        path = decode_path(exchange.request.path)
        apps = [(mount, path_info) for mount, path_info in self.mounts.match(path)
                if isinstance(mount, AppMount)]
        if not apps:
            await self._error(exchange, 404)
            return None
        # the best match, or an endpoint beside it at the same mount point
        point = apps[0][0].point
        mount, path_info = next(
            ((m, p) for m, p in apps if m.point == point and isinstance(m.app, Endpoint)), apps[0]
        )
        extra = {"skitai.gtxnid": gtxnid, "skitai.ltxnid": ltxnid, "skitai.server": self.context}
        return await open_websocket(exchange, mount, path_info, self.websockets, extra)

    async def _error(
        self,
        exchange: Exchange,
        status: int,
        message: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        status, body = error_page(status, message)
        await exchange.respond(status, [HTML, *(headers or [])], body)
