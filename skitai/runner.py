"""`run()` for people, `serve()` for programs.

`serve(config)` runs inside the caller's anyio program: it reports the bound
addresses through `task_status`, and stops gracefully when its cancel scope
is cancelled, or returns when an app calls `was.shutdown()`. It installs no
signal handlers, configures no logging, never forks; `was.restart()` makes
it stop gracefully and serve again on the same ports, calling the apps'
startup and shutdown hooks again.

`run(**options)` is the seed's entry point: it builds the Config, sends the
logs to stderr or files, picks the backend, and turns SIGINT/SIGTERM into a
graceful stop (a second signal forces it). `was.restart()` stops it gracefully and then
executes the program again, in the same process, so new code is loaded.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import anyio
import anyio.abc

from skitai.config import Config
from skitai.log import configure
from skitai.server import Prepared, Server, prepare

log = logging.getLogger("skitai.server")


async def serve(
    config: Config,
    *,
    task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. `task_status.started()` gets the bound (host, port) list."""
    if not isinstance(config, Config):
        raise TypeError(f"serve() takes a skitai.Config, not {type(config).__name__}")
    while True:
        # Apps are imported and certificates read: not on the event loop.
        server = Server(config, await anyio.to_thread.run_sync(prepare, config))
        await server.run(task_status=task_status)
        if not server.restart_requested:
            return
        log.info("restarting")
        config = _same_ports(config, server.addresses)
        task_status = anyio.TASK_STATUS_IGNORED  # the caller already has the addresses


def _same_ports(config: Config, addresses: list[tuple[str, int]]) -> Config:
    """The config with ports chosen by the system (0) replaced by those it chose."""
    changes = {}
    if config.port == 0 and addresses:
        changes["port"] = addresses[0][1]
    if config.tls_port == 0 and len(addresses) > 1:
        changes["tls_port"] = addresses[-1][1]
    return config.replace(**changes) if changes else config


def run(**options: Any) -> None:
    """Serve with the seed's options until SIGINT or SIGTERM. See skitai.Config."""
    config = Config.from_options(options)
    prepared = prepare(config)
    stop_logging = configure(config.log_dir, config.log_level)
    forced = restart = False
    try:
        log.info("skitai starting: %d threads, %s backend", config.threads, config.backend)
        forced, restart = anyio.run(_main, config, prepared, backend=config.backend,
                                    backend_options=_backend_options(config.backend))
    except KeyboardInterrupt:
        forced = True
    stuck = _app_threads_still_running()
    if stuck:
        log.warning("exiting with %d app threads still running past the grace deadline", stuck)
    stop_logging()
    if restart and not forced:
        sys.stdout.flush()
        sys.stderr.flush()
        # The listeners are closed; the new program binds them again.
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    if forced or stuck:
        # Python would wait for those threads at exit; the deadline has passed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if forced else 0)


def _app_threads_still_running(wait: float = 0.5) -> int:
    """Worker threads that are still inside an app once the event loop has ended."""
    workers = [t for t in threading.enumerate() if t.name == "AnyIO worker thread"]
    for thread in workers:
        thread.join(wait / max(len(workers), 1))
    return sum(thread.is_alive() for thread in workers)


async def _main(config: Config, prepared: Prepared) -> tuple[bool, bool]:
    """(forced, restart): how the server stopped."""
    server = Server(config, prepared)
    forced = False
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            serving = anyio.CancelScope()

            async def watch_signals() -> None:
                nonlocal forced
                count = 0
                async for signum in signals:
                    count += 1
                    name = signal.Signals(signum).name
                    if count == 1:
                        log.info("%s received: stopping (grace %.0fs)", name, config.grace)
                        serving.cancel()
                    else:
                        log.warning("%s received again: stopping now", name)
                        forced = True
                        server.force_stop()
                        return

            tg.start_soon(watch_signals)
            with serving:
                await server.run()
            tg.cancel_scope.cancel()
    return forced, server.restart_requested


def _backend_options(backend: str) -> dict[str, Any]:
    if backend != "asyncio":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
