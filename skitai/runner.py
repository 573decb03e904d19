"""`run()` for people, `serve()` for programs.

`serve(config)` runs inside the caller's anyio program: it reports the bound
addresses through `task_status`, and stops gracefully when its cancel scope
is cancelled. It installs no signal handlers, configures no logging, never
forks.

`run(**options)` is the seed's entry point: it builds the Config, sends the
logs to stderr or files, picks the backend, and turns SIGINT/SIGTERM into a
graceful stop (a second signal forces it).
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
    # Apps are imported and certificates read: not on the event loop.
    server = Server(config, await anyio.to_thread.run_sync(prepare, config))
    await server.run(task_status=task_status)


def run(**options: Any) -> None:
    """Serve with the seed's options until SIGINT or SIGTERM. See skitai.Config."""
    config = Config.from_options(options)
    prepared = prepare(config)
    stop_logging = configure(config.log_dir, config.log_level)
    forced = False
    try:
        log.info("skitai starting: %d threads, %s backend", config.threads, config.backend)
        forced = anyio.run(_main, config, prepared, backend=config.backend,
                           backend_options=_backend_options(config.backend))
    except KeyboardInterrupt:
        forced = True
    stuck = _app_threads_still_running()
    if stuck:
        log.warning("exiting with %d app threads still running past the grace deadline", stuck)
    stop_logging()
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


async def _main(config: Config, prepared: Prepared) -> bool:
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
    return forced


def _backend_options(backend: str) -> dict[str, Any]:
    if backend != "asyncio":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
