"""`was`: the services Skitai offers an app while it answers a request.

There are two levels, as in the seed:

* `ServerContext` ("wasc"), one per running server: objects apps register
  for each other (`wasc.register("searcher", obj)`, then `was.searcher`
  in every app), the config, the loggers, restart and shutdown.
* `Was`, one per request, never shared between requests or threads:
  the environ, logging with transaction ids, and the utility services
  (`status`, `tojson`/`fromjson`, `toxml`/`fromxml`, `restart`, `shutdown`).
  Saddle hands each handler a richer subclass (request, response, cookies...).

`from skitai import was` works in any app Skitai serves (Flask included):
the server puts each request's environ in the `request_environ` context
variable while the app runs (in the worker thread, or in the task of a
request served on the event loop), and `was` resolves to that request's
`Was`, made on first use and kept in `environ["skitai.was"]`.

Services added later (HTTP, RPC and database clients) join through
`register_service`: a name and a factory taking the request's `Was`, so
`was.<name>` works for every app without this module knowing them.
"""

from __future__ import annotations

import html
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Protocol

from skitai import safexml

app_log = logging.getLogger("skitai.app")

request_environ: ContextVar[dict[str, Any]] = ContextVar("skitai.request_environ")

ServiceFactory = Callable[["Was"], Any]
_services: dict[str, ServiceFactory] = {}

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fail": logging.ERROR,
    "expt": logging.ERROR,
    "critical": logging.CRITICAL,
}


def register_service(name: str, factory: ServiceFactory) -> None:
    """Offer `was.<name>` to every app: `factory(was)` is called on each use."""
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"{name!r} cannot be a service name")
    _services[name] = factory


def unregister_service(name: str) -> None:
    _services.pop(name, None)


class ServerControl(Protocol):
    """What a ServerContext needs from the server that owns it."""

    def request_stop(self, restart: bool) -> None:
        """Stop gracefully (then start again when `restart`); callable from any thread."""

    def statistics(self) -> dict[str, Any]:
        """Figures for the status page, each section a dict."""


class AppLoggers:
    """`wasc.logger`: the seed's logger factory, on named loggers under `skitai.app`."""

    def get(self, name: str = "app") -> logging.Logger:
        return logging.getLogger("skitai.app" if name == "app" else f"skitai.app.{name}")

    def make_logger(self, name: str, *_: Any) -> logging.Logger:
        """The seed's `make_logger(name, "daily")`: rotation is the logging config's business."""
        return self.get(name)


class ServerContext:
    """`wasc`: what the apps of one server share. Thread-safe for reading."""

    def __init__(self, config: Any, control: ServerControl | None = None) -> None:
        self.config = config
        self.numthreads: int = getattr(config, "threads", 1)
        self.logger = AppLoggers()
        self.started = time.time()
        self.objects: dict[str, Any] = {}
        self._control = control

    def register(self, name: str, obj: Any) -> None:
        """Make `obj` available as `was.<name>` (and `wasc.<name>`) in every app."""
        if not name.isidentifier() or name.startswith("_") or hasattr(Was, name):
            raise ValueError(f"{name!r} cannot be registered: not a name, or taken by `was` itself")
        self.objects[name] = obj

    def unregister(self, name: str) -> Any:
        return self.objects.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["objects"][name]
        except KeyError:
            raise AttributeError(f"nothing registered as {name!r}") from None

    def restart(self) -> None:
        """Stop gracefully, then serve again (`run()` re-executes the program)."""
        self._require_control().request_stop(restart=True)

    def shutdown(self) -> None:
        """Stop gracefully: in-flight requests, this one included, are finished first."""
        self._require_control().request_stop(restart=False)

    def status(self) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {
            "server": {
                "version": _version(),
                "pid": os.getpid(),
                "python": sys.version.split()[0],
                "uptime": round(time.time() - self.started, 1),
                "threads": self.numthreads,
            },
            "objects": {name: type(obj).__name__ for name, obj in sorted(self.objects.items())},
        }
        if self._control is not None:
            for name, figures in self._control.statistics().items():
                sections.setdefault(name, {}).update(figures)
        return sections

    def _require_control(self) -> ServerControl:
        if self._control is None:
            raise RuntimeError("this context belongs to no running server")
        return self._control


class Was:
    """The per-request services every app gets; see the module docstring."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.env = environ

    @property
    def wasc(self) -> ServerContext:
        server = self.env.get("skitai.server")
        if server is None:
            raise RuntimeError("this request is not served by a Skitai server")
        return server  # type: ignore[no-any-return]

    def txnid(self) -> str:
        """"gtxnid/ltxnid" of this request, as the access log shows them."""
        return f"{self.env.get('skitai.gtxnid', '-')}/{self.env.get('skitai.ltxnid', '-')}"

    def log(self, msg: Any, category: str = "info") -> None:
        """One line to the skitai.app logger, tagged `[category:gtxnid/ltxnid]`."""
        level = _LEVELS.get(category, logging.INFO)
        if app_log.isEnabledFor(level):
            app_log.log(level, "[%s:%s] %s", category, self.txnid(), msg)

    def traceback(self, id: str = "") -> str:
        """Log the exception being handled, tagged with `id` (default: the transaction ids)."""
        tag = id or self.txnid()
        app_log.error("[expt:%s] %s", tag, _exception_line(), exc_info=sys.exc_info())
        return tag

    # utility services ---------------------------------------------------------

    def status(self, flt: str | None = None, fancy: bool = True) -> str | dict[str, Any]:
        """The server's state: an HTML page, or (`fancy=False`) a dict to return as JSON.

        `flt` keeps only the sections whose name starts with it.
        """
        sections = self.wasc.status()
        if flt:
            sections = {k: v for k, v in sections.items() if k.startswith(flt)}
        return status_page(sections) if fancy else sections

    def tojson(self, obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, default=str)

    def fromjson(self, text: str | bytes) -> Any:
        return json.loads(text)

    def toxml(self, obj: Any) -> str:
        """An XML-RPC methodResponse carrying `obj`."""
        return safexml.dumps_response(obj)

    def fromxml(self, text: str | bytes) -> Any:
        """The value of an XML-RPC methodResponse, or (params, method) of a methodCall.

        A fault response raises `xmlrpc.client.Fault`; DTDs and entities are refused.
        """
        params, method = safexml.loads(text)
        if method is not None:
            return params, method
        return params[0] if len(params) == 1 else params

    def restart(self) -> None:
        self.wasc.restart()

    def shutdown(self) -> None:
        self.wasc.shutdown()

    def __getattr__(self, name: str) -> Any:
        # Only names not found on the object land here: services, then shared objects.
        factory = _services.get(name)
        if factory is not None:
            return factory(self)
        if name.startswith("_"):
            raise AttributeError(name)
        server = self.__dict__.get("env", {}).get("skitai.server")
        if server is not None and name in server.objects:
            return server.objects[name]
        raise AttributeError(f"'was' has no {name!r}: no such service or registered object")


# What the server calls on the apps it serves, when they define it: each
# takes the ServerContext, runs in a worker thread, and may block.
APP_STARTUP = "skitai_startup"  # before the first request
APP_RELOADED = "skitai_reloaded"  # on the new app, after the reloader swapped it in
APP_SHUTDOWN = "skitai_shutdown"  # after the last request


def notify_apps(apps: Iterable[Any], hook: str, wasc: ServerContext) -> None:
    """Call `hook` on each distinct app that has it; failures are logged, not raised."""
    seen: set[int] = set()
    for app in apps:
        method = getattr(app, hook, None)
        if method is None or id(app) in seen:
            continue
        seen.add(id(app))
        try:
            method(wasc)
        except Exception:
            app_log.exception("%s of %s failed", hook, getattr(app, "__qualname__", app))


def current_was() -> Was:
    """The `Was` of the request being served in this thread or task."""
    environ = request_environ.get(None)
    if environ is None:
        raise RuntimeError(
            "`was` is only available while Skitai serves a request "
            "(inside a view, a handler or a hook)"
        )
    was = environ.get("skitai.was")
    if was is None:
        was = environ["skitai.was"] = Was(environ)
    return was


class CurrentWas:
    """`from skitai import was`: stands for the current request's `Was`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(current_was(), name)

    def __repr__(self) -> str:
        environ = request_environ.get(None)
        return "<was: no request>" if environ is None else repr(current_was())


was = CurrentWas()


def status_page(sections: dict[str, dict[str, Any]]) -> str:
    parts = ["<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Skitai status</title>"
             "</head><body><h1>Skitai status</h1>"]
    for name, figures in sections.items():
        parts.append(f"<h2>{html.escape(name)}</h2><table>")
        for key, value in figures.items():
            parts.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _exception_line() -> str:
    exc = sys.exc_info()[1]
    return "no exception" if exc is None else f"{type(exc).__name__}: {exc}"


def _version() -> str:
    from skitai import __version__

    return __version__


__all__ = [
    "APP_RELOADED",
    "APP_SHUTDOWN",
    "APP_STARTUP",
    "CurrentWas",
    "ServerContext",
    "ServerControl",
    "Was",
    "current_was",
    "notify_apps",
    "register_service",
    "request_environ",
    "unregister_service",
    "was",
]
