"""From an exchange to the adapter that answers it, with the access log around it.

Every protocol driver calls one `RequestHandler` per request. It assigns the
transaction ids, walks the mount table (static directories, then apps, best
match first), answers 404 when nothing claims the path, and writes one
access line when the exchange is over, however it ended. The line's user
field is the `REMOTE_USER` an app put in the environ once it authenticated
the request (docs/reference/wsgi.md). An app that offers a loop handler for
the request (skitai.loopapp) is awaited on the event loop; every other app
goes down the WSGI path.
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
from skitai.threadpool import LoopCallbacks, WorkerPool
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
    ) -> None:
        self.config = config
        self.context = context
        self.mounts = mounts
        self.pool = pool
        self.callbacks = callbacks
        self.server_software = config.server_name
        self.access_log = config.access_log

    async def __call__(self, exchange: Exchange) -> None:
        gtxnid, ltxnid = txn.assign(exchange.request)
        try:
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
        for mount, path_info in self.mounts.match(path):
            if isinstance(mount, AppMount):
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

    async def _error(
        self,
        exchange: Exchange,
        status: int,
        message: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        status, body = error_page(status, message)
        await exchange.respond(status, [HTML, *(headers or [])], body)
