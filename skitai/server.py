"""Listeners, connections and the shutdown deadline.

Task tree of a running server:

    serve()                                   cancelled by the caller to stop
    └── connection area (shielded)            so in-flight requests can finish
        ├── services: loop callbacks, worker pool, WebSocket sweeper and rooms, reloader
        └── connections: accept loops + one task per connection

When `serve()` is cancelled (or an app calls `was.shutdown()` or
`was.restart()`, see `request_stop`), the server stops accepting, closes idle
keep-alive connections at once, lets busy ones finish their current
response (sent with `Connection: close`) and cancels whatever is left when
the grace deadline passes. Then the services stop.

Apps that define them get `skitai_startup(wasc)` before the first request
and `skitai_shutdown(wasc)` after the last one (see skitai.context).
"""

from __future__ import annotations

import errno
import importlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from skitai import context
from skitai.config import Config
from skitai.handler import RequestHandler
from skitai.mounts import MountTable
from skitai.protocols import http11_driver
from skitai.protocols.http2 import HTTP2Connection
from skitai.protocols.http11 import HTTP11Connection
from skitai.protocols.sockets import SocketStream, TCPListener, bind_tcp
from skitai.protocols.timeouts import ConnectionControl, sweep, sweep_interval
from skitai.threadpool import LoopCallbacks, WorkerPool
from skitai.tls import server_context
from skitai.ws.services import WebSocketServices

if TYPE_CHECKING:
    from skitai.protocols.http11_fast import FastHTTP11Connection

log = logging.getLogger("skitai.server")

_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BACKOFF = 0.1


@dataclass(frozen=True)
class Prepared:
    """What a server needs that blocks to get: apps imported, certificates read."""

    mounts: MountTable
    tls: ssl.SSLContext | None


def prepare(config: Config) -> Prepared:
    """Import the mounted apps and load the TLS context. Blocking: call it off the loop."""
    tls = None
    if config.certfile:
        tls = server_context(config.certfile, config.keyfile, config.passphrase)
    return Prepared(MountTable.from_config(config.mount), tls)


class Server:
    def __init__(self, config: Config, prepared: Prepared) -> None:
        self.config = config
        self.mounts = prepared.mounts
        self.pool = WorkerPool(config.threads)
        self.callbacks = LoopCallbacks()
        self.context = context.ServerContext(config, self)
        self.websockets = WebSocketServices(config, self.pool, self.callbacks)
        self.handler = RequestHandler(config, self.mounts, self.pool, self.callbacks, self.context,
                                      self.websockets)
        self.restart_requested = False
        self._stop_requested = anyio.Event()
        self.addresses: list[tuple[str, int]] = []
        self._server_header = config.server_name.encode("latin-1")
        self._connections: set[ConnectionControl] = set()
        self._connection_count = 0
        self._stopping = anyio.Event()
        self._finished = anyio.Event()
        self._accepting: list[anyio.CancelScope] = []  # one per listener
        self._conns_scope: anyio.CancelScope | None = None
        self._driver_class: Callable[..., HTTP11Connection | FastHTTP11Connection] = (
            http11_driver(config.http_parser)
        )
        self._tls = prepared.tls

    # ------------------------------------------------------------ lifecycle

    async def run(
        self,
        *,
        task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await self._bind()
        async with anyio.create_task_group() as tg:
            await tg.start(self._serve_shielded, listeners)
            task_status.started(list(self.addresses))
            try:
                await self._stop_requested.wait()
            finally:
                with anyio.CancelScope(shield=True):
                    await self.shutdown()

    async def shutdown(self) -> None:
        """Stop gracefully within the grace deadline; returns when all is closed."""
        self._stopping.set()
        await self._finished.wait()

    def request_stop(self, restart: bool = False) -> None:
        """Make run() stop gracefully and return; safe from any thread (`was.shutdown()`)."""
        self.callbacks.call_soon(self._on_stop_request, restart)

    def _on_stop_request(self, restart: bool) -> None:
        self.restart_requested = restart
        self._stop_requested.set()

    def statistics(self) -> dict[str, dict[str, object]]:
        """Figures for `was.status()`."""
        return {
            "server": {"backend": self.config.backend,
                       "listening": ", ".join(_format_address(a) for a in self.addresses)},
            "workers": dict(self.pool.statistics()),
            "connections": {"open": len(self._connections), "accepted": self._connection_count},
            "mounts": {mount.point: _mount_target(mount) for mount in self.mounts.mounts},
        }

    def force_stop(self) -> None:
        """Cancel in-flight requests now instead of at the grace deadline."""
        self._stopping.set()
        if self._conns_scope is not None:
            self._conns_scope.deadline = anyio.current_time()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def _bind(self) -> list[TCPListener]:
        """Listeners on `port` (TLS when a certificate is given and no `tls_port`), then `tls_port`."""
        config = self.config
        listeners = bind_tcp(config.address, config.port, config.backlog)
        plain = config.tls_port is not None or self._tls is None
        for listener in listeners:
            listener.tls = not plain
        if config.tls_port is not None:
            secure = bind_tcp(config.address, config.tls_port, config.backlog)
            for listener in secure:
                listener.tls = True
            listeners += secure
        self.addresses = [listener.address for listener in listeners]
        for listener in listeners:
            scheme = "https" if listener.tls else "http"
            log.info("listening on %s://%s", scheme, _format_address(listener.address))
        return listeners

    async def _serve_shielded(
        self,
        listeners: Sequence[TCPListener],
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        with anyio.CancelScope(shield=True):
            try:
                async with anyio.create_task_group() as services:
                    await services.start(self.callbacks.run)
                    await services.start(self.pool.run)
                    await services.start(self.websockets.run)
                    limits = self.config.limits
                    interval = sweep_interval(limits.keep_alive_timeout, limits.header_timeout,
                                              limits.body_timeout, limits.send_timeout)
                    services.start_soon(sweep, self._connections, interval)
                    await self._notify_apps(context.APP_STARTUP)
                    await self._start_reloader(services)
                    async with anyio.create_task_group() as conns:
                        self._conns_scope = conns.cancel_scope
                        for listener in listeners:
                            conns.start_soon(self._accept_loop, listener, conns)
                        task_status.started()
                        await self._stopping.wait()
                        log.info("shutting down: %d connections open", len(self._connections))
                        for scope in self._accepting:
                            scope.cancel()
                        for listener in listeners:
                            await listener.aclose()
                        for control in list(self._connections):
                            control.drain()
                        self.websockets.going_away()
                        if conns.cancel_scope.deadline > anyio.current_time() + self.config.grace:
                            conns.cancel_scope.deadline = anyio.current_time() + self.config.grace
                    await self._notify_apps(context.APP_SHUTDOWN)
                    self.pool.close()
                    services.cancel_scope.cancel()
            finally:
                self._finished.set()
                log.info("server stopped")

    async def _start_reloader(self, services: anyio.abc.TaskGroup) -> None:
        watched = [m for m in self.mounts.apps() if getattr(m.app, "use_reloader", False)]
        if watched:
            # Imported off the loop: the module reads the filesystem (sysconfig) as it loads.
            await anyio.to_thread.run_sync(importlib.import_module, "skitai.reloader")
            from skitai.reloader import Reloader

            reloader = Reloader(watched, self.config.reload_interval)
            reloader.on_reload = self._on_reload
            services.start_soon(reloader.run)

    async def _notify_apps(self, hook: str) -> None:
        # Bounded: a hook that never returns must not hold the server up.
        with anyio.move_on_after(self.config.grace or None):
            await anyio.to_thread.run_sync(context.notify_apps, self.mounts.apps_objects(), hook,
                                           self.context, abandon_on_cancel=True)

    async def _on_reload(self, apps: list[object]) -> None:
        await anyio.to_thread.run_sync(context.notify_apps, apps, context.APP_RELOADED, self.context)

    # ------------------------------------------------------------ connections

    async def _accept_loop(self, listener: TCPListener, conns: anyio.abc.TaskGroup) -> None:
        with anyio.CancelScope() as scope:
            self._accepting.append(scope)
            while True:
                try:
                    stream = await listener.accept()
                except anyio.ClosedResourceError:
                    return
                except OSError as exc:
                    if exc.errno in _RESOURCE_ERRNOS:
                        log.error("accept failed (%s); retrying in %.1fs",
                                  errno.errorcode.get(exc.errno or 0, exc), ACCEPT_BACKOFF)
                    else:
                        log.warning("accept failed: %r", exc)
                    await anyio.sleep(ACCEPT_BACKOFF)
                    continue
                self._start_connection(stream, conns, listener.tls)

    def _start_connection(self, stream: SocketStream, conns: anyio.abc.TaskGroup, tls: bool) -> None:
        client = stream.remote_address()
        if client is None:  # the client left before we looked at it
            stream.socket.close()
            return
        self._connection_count += 1
        control = ConnectionControl(self._connection_count, on_close=self._connections.discard)
        self._connections.add(control)
        if tls:
            conns.start_soon(self._serve_tls, stream, client, control)
            return
        # The driver's run() is the task itself: one coroutine frame less per
        # idle connection. It logs its own failures.
        conns.start_soon(self._driver(stream, client, stream.local_address(), "http", control).run)

    def _driver(
        self,
        stream: anyio.abc.ByteStream,
        client: tuple[str, int],
        server: tuple[str, int],
        scheme: str,
        control: ConnectionControl,
    ) -> HTTP11Connection | FastHTTP11Connection:
        return self._driver_class(
            stream,
            self.handler,
            limits=self.config.limits,
            scheme=scheme,
            client=client,
            server=server,
            control=control,
            server_header=self._server_header,
        )

    async def _serve_tls(
        self, raw: SocketStream, client: tuple[str, int], control: ConnectionControl
    ) -> None:
        assert self._tls is not None
        server = raw.local_address()
        try:
            with anyio.fail_after(self.config.limits.handshake_timeout or None):
                stream = await TLSStream.wrap(raw, server_side=True, ssl_context=self._tls,
                                              standard_compatible=False)
        except (TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError,
                OSError) as exc:
            cause = exc.__cause__ or exc
            log.warning("%s:%d TLS handshake failed: %s", client[0], client[1],
                        "timed out" if isinstance(exc, TimeoutError) else cause)
            await raw.aclose()
            self._connections.discard(control)
            return
        if stream.extra(TLSAttribute.alpn_protocol, None) == "h2":
            await HTTP2Connection(
                stream, self.handler, limits=self.config.limits, scheme="https", client=client,
                server=server, control=control, server_header=self._server_header,
            ).run()
            return
        await self._driver(stream, client, server, "https", control).run()


def _mount_target(mount: object) -> str:
    app = getattr(mount, "app", None)
    if app is None:
        return f"static {getattr(mount, 'root', '?')}"
    return getattr(app, "__qualname__", None) or type(app).__qualname__


def _format_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
