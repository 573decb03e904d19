"""The `was` a Saddle handler gets: one per request, made when the route is found.

On top of what every app's `was` offers (skitai.context.Was: env, log,
traceback, status, tojson..., restart, shutdown, services, registered
objects) it has the request, the response, cookies, `g`, the root app,
rendering and URL building. The request, response, cookies and `g` are
made on first use, so a handler that needs none of them pays for none.

Objects that must write headers once the handler has succeeded (sessions,
message boxes) register with `on_commit(func)`; `func(response)` runs
after the last hook, only when no exception got to the hooks, and may add
headers to `was.response` or cookies to `was.cookie`. The cookie jar's
Set-Cookie lines are written after every commit function, since those
write into it.
`on_close(func)` registers `func()` for when the response is over, however
it ended (after the body was sent, or the client went away).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from skitai.context import Was
from skitai.saddle.cookies import CookieJar
from skitai.saddle.errors import HTTPError, log_answer
from skitai.saddle.grpc_wire import GrpcError
from skitai.saddle.request import AttrDict, Request
from skitai.saddle.response import Response

app_log = logging.getLogger("skitai.app")


class RequestWas(Was):
    def __init__(
        self,
        app: Any,
        environ: dict[str, Any],
        route: Any,
        body: bytes | None = None,
        media: str = "",
    ) -> None:
        self.env = environ
        self.app = app
        self.route = route
        self._args: dict[str, Any] = {}
        self.failed = False  # an exception reached the hooks: no commit
        self._body = body  # when already read; else read on demand, within the limit for `media`
        self._media = media
        self._request: Request | None = None
        self._response: Response | None = None
        self._cookie: CookieJar | None = None
        self._g: SimpleNamespace | None = None
        self._commits: list[Callable[[Response], None]] | None = None
        self._committed = False
        self._closers: list[Callable[[], None]] | None = None
        self._noted: BaseException | None = None
        self.grpc = False  # a gRPC call, where a GrpcError is an answer, not a failure

    @property
    def request(self) -> Request:
        if self._request is None:
            reader = functools.partial(self.app.read_whole, self.env, self._media)
            self._request = Request(self.env, self._body, reader)
            self._request.args = AttrDict(self._args)
        return self._request

    def set_body(self, body: bytes) -> None:
        """The body, read whole after the request was admitted (async routes)."""
        if self._request is None:
            self._body = body
        else:
            self._request.set_body(body)

    @property
    def args(self) -> dict[str, Any]:
        """The handler's arguments (also `was.request.args`)."""
        return self._args

    @args.setter
    def args(self, args: dict[str, Any]) -> None:
        self._args = args
        if self._request is not None:
            self._request.args = AttrDict(args)

    @property
    def response(self) -> Response:
        if self._response is None:
            self._response = Response(self.app, self.env)
        return self._response

    @property
    def cookie(self) -> CookieJar:
        if self._cookie is None:
            self._cookie = CookieJar.from_environ(self.env)  # its lines are written by commit()
        return self._cookie

    @property
    def g(self) -> SimpleNamespace:
        """Scratch space for this request only."""
        if self._g is None:
            self._g = SimpleNamespace()
        return self._g

    def on_commit(self, func: Callable[[Response], None]) -> None:
        if self._commits is None:
            self._commits = []
        self._commits.append(func)

    def on_close(self, func: Callable[[], None]) -> None:
        """Call `func()` once the request is over, however it ended (temporary files...)."""
        if self._closers is None:
            self._closers = []
        self._closers.append(func)

    def close(self) -> None:
        """Run the `on_close` functions; the app calls it when the response is done."""
        closers, self._closers = self._closers, None
        for func in closers or ():
            try:
                func()
            except Exception:
                app_log.exception("[%s] closing %r failed", self.txnid(), func)

    @property
    def has_commits(self) -> bool:
        """Whether commit functions wait (they may block: a session store)."""
        return bool(self._commits) and not self._committed and not self.failed

    def commit(self) -> None:
        """Run the commit functions, then write the cookies; once, and only if nothing failed.

        The app calls it once the handler has succeeded.
        """
        if self._committed or self.failed:
            return
        self._committed = True
        if self._commits:
            response = self.response
            for func in self._commits:
                func(response)
        if self._cookie is not None:
            lines = self._cookie.set_cookie_headers()
            if lines:
                response = self.response
                for line in lines:
                    response.append_header("Set-Cookie", line)

    def note_failure(self, exc_info: Any) -> None:
        """An exception reached the hooks: log it once, and commit nothing."""
        self.failed = True
        exc = exc_info[1]
        if exc is self._noted:
            return
        self._noted = exc
        if isinstance(exc, HTTPError):
            log_answer(self.env, exc)
        elif self.grpc and isinstance(exc, GrpcError):
            pass  # the call's chosen status: logged with it by skitai.saddle.grpc_serving
        else:
            app_log.error("[%s] %s %s failed", self.txnid(), self.env.get("REQUEST_METHOD"),
                          self.env.get("REQUEST_URI"), exc_info=exc_info)

    # rendering and links ------------------------------------------------------------

    def render(self, name: str, _context: dict[str, Any] | None = None, /, **kwargs: Any) -> str:
        """Render `templates/<name>` of the app with a dict or keyword arguments (not both)."""
        text: str = self.app.render(self, name, _merge_context(_context, kwargs), part=None)
        return text

    def render2(self, name: str, _context: dict[str, Any] | None = None, /, **kwargs: Any) -> str:
        """Like `render`, from the templates directory of the part that routed this request."""
        text: str = self.app.render(self, name, _merge_context(_context, kwargs), part=self.route.owner)
        return text

    def ab(self, _name: str, /, *args: Any, **kwargs: Any) -> str:
        """`was.app.build_url`: the URL of a route by handler name, with the mount point."""
        return self.app.build_url(_name, *args, **kwargs)  # type: ignore[no-any-return]

    def redirect(
        self,
        url: str,
        status: int | str = "302 Found",
        body: Any = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Any:
        """Set the status and Location; returns the body to send (empty by default)."""
        response = self.response
        response.set_status(status)
        response.set_header("Location", url)
        if headers:
            response.set_headers(headers)
        return "" if body is None else body

    def __repr__(self) -> str:
        return f"<was {self.env.get('REQUEST_METHOD')} {self.env.get('REQUEST_URI')}>"


def _merge_context(context: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    if context is not None and kwargs:
        raise TypeError("render() takes a dict or keyword arguments, not both")
    if context is not None and not isinstance(context, dict):
        raise TypeError(f"render() takes a dict of values, not {type(context).__name__}")
    return dict(context) if context is not None else kwargs
