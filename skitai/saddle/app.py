"""Saddle: the app object, a WSGI callable Skitai serves like any other.

One request, on the WSGI path (a worker thread):

1. XML-RPC and JSON-RPC calls (POST `text/xml`, `application/json-rpc`,
   or a JSON-RPC object posted as `application/json`) go to
   skitai.saddle.rpc, unless the route at that path lists the media type
   in its `content_types`.
2. The route is looked up (404, a 301 to the path with a trailing slash
   when only that exists, 405 with Allow), then its media types (415),
   and the body size (413, from Content-Length before reading anything),
   then authentication, before any of the body is read. An admitted
   user's name goes to `environ["REMOTE_USER"]`, which the server writes
   in the access log.
3. The arguments are gathered (URL segments, query, form or JSON body;
   multipart and other registered media types streamed to their parser,
   skitai.saddle.request_body), and the handler is called inside the
   hooks of its app and parts.
4. What it returned becomes the body (skitai.saddle.bodies); the status
   and headers come from `was.response`. Cookies and other commits are
   written only when no exception reached the hooks.

`async def` handlers take the same steps on the event loop
(skitai.saddle.aio), through the server's loop-handler interface.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from skitai.context import ServerContext, Was, request_environ
from skitai.errorpages import error_page
from skitai.saddle import (
    aio,
    bodies,
    forms,
    grpc_serving,
    hooks,
    part,
    plugins,
    rpc,
    session_service,
    templates,
)
from skitai.saddle.errors import BadRequest, BodyTooLarge, HTTPError, log_answer, status_line
from skitai.saddle.part import Saddlery, media_type
from skitai.saddle.request_body import ParserStream, Read
from skitai.saddle.routing import BadPath, BuildError, Match, NotAllowed, Route, Router, request_path
from skitai.saddle.was import RequestWas
from skitai.wsgi import IncompleteBody

app_log = logging.getLogger("skitai.app")

HTML = "text/html; charset=utf-8"
MIB = 1024 * 1024
WsgiResult = tuple[str, list[tuple[str, str]], Iterable[bytes]]


class AppConfig:
    """`app.config`: the body limits below, and any setting an app adds (`config.my_setting = 1`)."""

    def __init__(self) -> None:
        self.max_post_body_size = 5 * MIB  # any body but multipart; more is a 413
        self.max_cache_size = 5 * MIB  # a multipart body up to this is also kept for get_body()
        self.max_multipart_body_size = 20 * MIB  # a whole multipart body; more is a 413
        self.max_upload_file_size = 20_000_000  # one uploaded file
        self.upload_tmpdir: str | None = None  # where uploads are spooled; None: the system's temp dir

    def body_limit(self, media: str) -> int:
        return int(self.max_multipart_body_size if media.startswith("multipart/")
                   else self.max_post_body_size)


class Saddle(Saddlery):
    """The root app: routes, hooks, mounted parts, templates, settings."""

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self.debug = False  # tracebacks in error pages and RPC faults
        self.use_reloader = False  # reload when a file of the app's package changes
        self.config = AppConfig()
        # authentication and sessions, used by the modules that provide them
        self.authenticate = False  # every route needs authentication
        self.authorization = "digest"
        self.realm: str | None = None
        self.users: Any = {}
        self.opaque: str | None = None
        self.digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")  # offered in this order
        self.securekey: Any = None  # a secret of 16+ bytes, or a list of them: the first seals
        self.session_timeout: int | None = 1200
        self.session_store: Any = None  # None or "cookie", "redis://host:port/db", or a store object
        self.session_stores = session_service.SessionStores()
        self.authenticator: plugins.Authenticator | None = None  # default: AUTHENTICATORS
        self.error_template: str | None = None  # a template rendering error pages
        self._jinja_env: Any = None
        self._part_envs: dict[int, Any] = {}
        self._router: Router | None = None
        self._router_generation = -1
        # The server's loop-handler hook (skitai.loopapp); set only while
        # async routes exist, so other apps never pay for asking.
        # Asked by the server on the event loop for every request: gRPC calls and
        # `async def` routes are answered there, the rest on the WSGI path.
        self.skitai_loop_handler: Callable[[dict[str, Any]], Any] = self._loop_handler

    def set_devel(self, debug: bool = True, use_reloader: bool = True) -> None:
        self.debug = debug
        self.use_reloader = use_reloader

    # routing ----------------------------------------------------------------------------

    @property
    def router(self) -> Router:
        if self._router is None or self._router_generation != part.generation:
            generation = part.generation
            router = Router(self.walk())
            self._router, self._router_generation = router, generation
        return self._router

    def build_url(self, _name: str, /, *args: Any, **kwargs: Any) -> str:
        """The URL of the route whose handler is named `_name`, below the mount point.

        Positional arguments fill the handler's parameters in order, then
        the keywords; those the rule has no segment for go to the query
        string. A name starting with "/" is a path below the mount point.
        """
        environ = request_environ.get(None)
        script_name = environ.get("SCRIPT_NAME", "") if environ is not None else ""
        if _name.startswith("/"):
            query = urlencode(kwargs, doseq=True)
            return script_name + _name + (f"?{query}" if query else "")
        route = self.router.by_name.get(_name)
        if route is None:
            raise BuildError(f"no route for a handler named {_name!r}")
        try:
            values = route.signature.map_positional(args, kwargs, route.rule.args)
        except TypeError as exc:
            raise BuildError(f"{_name}: {exc}") from None
        segments = {}
        for name in route.rule.args:
            if name in values:
                segments[name] = values.pop(name)
            elif name in route.signature.defaults:
                segments[name] = route.signature.defaults[name]
            else:
                raise BuildError(f"{_name}: no value for <{name}> in {route.rule.text}")
        path = route.rule.build(segments)
        query = urlencode([(k, v) for k, v in values.items() if v is not None], doseq=True)
        return script_name + path + (f"?{query}" if query else "")

    # the WSGI side ----------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            status, headers, body = self._respond(environ)
        except BaseException:
            # The server gave up on the request (the client went away): clean up all the same.
            was = environ.pop("skitai.was", None)
            if was is not None:
                was.close()
            raise
        start_response(status, headers)
        if type(body) is list:
            # Nothing runs after this for a complete body: let the `was` go with its request.
            was = environ.pop("skitai.was", None)
            if was is not None:
                was.close()
        return body

    def _respond(self, environ: dict[str, Any]) -> WsgiResult:
        was: RequestWas | None = None
        try:
            router = self.router
            method = environ["REQUEST_METHOD"]
            raw_path = request_path(environ)
            content_type = environ.get("CONTENT_TYPE")
            media = media_type(content_type) if content_type else ""
            preread: tuple[bytes, Any] | None = None
            if media in rpc.MEDIA_TYPES and method == "POST" and not _route_takes(router, raw_path, media):
                body = self.read_whole(environ, media)
                if media != "application/json":
                    return rpc.serve(self, environ, raw_path, media, body)
                parsed = forms.parse_json(body) if body else None
                if rpc.is_jsonrpc(parsed):
                    return rpc.serve(self, environ, raw_path, media, body, parsed)
                preread = body, parsed
            route, path_args = self.select(router, raw_path, method, media, environ)
            was = RequestWas(self, environ, route, media=media)
            environ["skitai.was"] = was
            if route.authenticate or self.authenticate:
                refusal = self.check_access(was, route)
                if refusal is not None:
                    raise refusal
            if media or environ.get("QUERY_STRING"):
                was.args = self._gather_args(environ, media, path_args, preread, was)
            else:
                was.args = path_args
            content = hooks.run_sync(route, was)
            return self.finish(was, content)
        except HTTPError as exc:
            return self.error_result(environ, exc, was)
        except BadPath as exc:
            return self.error_result(environ, BadRequest(str(exc)), was)
        except BuildError as exc:  # a URL built from what the client sent
            return self.error_result(environ, BadRequest(str(exc)), was)
        except IncompleteBody:
            raise  # the client's doing: the server answers it, if the client is still there
        except Exception as exc:
            return self.failure_result(environ, exc, was)

    def select(
        self, router: Router, raw_path: str, method: str, media: str, environ: dict[str, Any]
    ) -> tuple[Route, dict[str, Any]]:
        """The route for a request, or the HTTPError that answers it instead."""
        found = router.find(raw_path, method)
        if found is None:
            if not raw_path.endswith("/") and router.find(raw_path + "/", method) is not None:
                query = environ.get("QUERY_STRING")
                location = environ.get("SCRIPT_NAME", "") + raw_path + "/" + (f"?{query}" if query else "")
                raise HTTPError(301, headers=[("Location", location)])
            raise HTTPError(404)
        if isinstance(found, NotAllowed):
            raise HTTPError(405, headers=[("Allow", ", ".join(found.allowed))])
        route = found.route
        if route.content_types is not None and media not in route.content_types:
            raise HTTPError(415, f"this resource takes {', '.join(sorted(route.content_types))}")
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > self.config.body_limit(media):
            raise BodyTooLarge(f"body of {length} bytes, more than {self.config.body_limit(media)}")
        return route, found.args

    def check_access(self, was: RequestWas, route: Route) -> HTTPError | None:
        """None when the route needs no authentication or it succeeded; else the refusal."""
        if not (route.authenticate or self.authenticate):
            return None
        authenticator = self.authenticator
        if authenticator is None:
            factory = plugins.AUTHENTICATORS.get(str(self.authorization).lower())
            if factory is None:
                app_log.warning(
                    "[%s] 403 %s: authentication required, and no %r authenticator is installed",
                    was.txnid(), was.env.get("REQUEST_URI"), self.authorization)
                return HTTPError(403, "authentication is not available")
            authenticator = self.authenticator = factory(self)
        refusal = authenticator.authenticate(was)
        if refusal is not None:
            app_log.info("[%s] %s %s: refused by %s", was.txnid(), refusal.status,
                         was.env.get("REQUEST_URI"), type(authenticator).__name__)
            return refusal
        user = was.request.user
        if user is not None:
            # The CGI convention: the server reads it back for the access log's user field.
            was.env["REMOTE_USER"] = str(getattr(user, "name", user))
        return None

    def _gather_args(
        self,
        environ: dict[str, Any],
        media: str,
        path_args: dict[str, Any],
        preread: tuple[bytes, Any] | None,
        was: RequestWas,
    ) -> dict[str, Any]:
        query = environ.get("QUERY_STRING")
        args = forms.parse_query(query) if query else {}
        if media:
            if preread is not None:
                was.request.set_body(*preread)
                if isinstance(preread[1], dict):
                    args.update(preread[1])
            elif media == forms.URLENCODED or media in forms.JSON_TYPES:
                body = self.read_whole(environ, media)
                args.update(forms.body_args(was.request, media, body))
            elif media in plugins.BODY_PARSERS:
                args.update(self.parse_body(was, media, environ["wsgi.input"].read))
        if path_args:
            args.update(path_args)  # the URL's segments are not overridden by query or form
        return args

    def parse_body(self, was: RequestWas, media: str, read: Read) -> dict[str, Any]:
        """The arguments a registered parser makes of the body, streamed to it from `read`.

        Blocking: a worker thread's. What the parser reads stays available
        to `get_body()` up to `max_cache_size`. A result with a `cleanup()`
        (uploaded files) has it called when the request ends, however it
        ends; it is registered here, in the parser's thread, so that even
        a request cancelled while parsing cannot lose it.
        """
        length = was.env.get("CONTENT_LENGTH")
        stream = ParserStream(read, limit=self.config.body_limit(media),
                              keep_up_to=self.config.max_cache_size,
                              declared=int(length) if length and length.isdigit() else None)
        was.on_close(stream.close)
        was.request.read_body_from(stream.copy)
        parsed: dict[str, Any] = plugins.BODY_PARSERS[media](stream, was.env["CONTENT_TYPE"], self.config)
        cleanup = getattr(parsed, "cleanup", None)
        if cleanup is not None:
            was.on_close(cleanup)
        return parsed

    def read_whole(self, environ: dict[str, Any], media: str) -> bytes:
        """The whole request body, 413 past the app's limit for its media type.

        A multipart body is held whole only up to `max_cache_size`, if a
        handler asks for it; bodies with a parser go to it instead.
        """
        length = environ.get("CONTENT_LENGTH")
        declared = int(length) if length and length.isdigit() else None
        if declared is None and not environ.get("HTTP_TRANSFER_ENCODING"):
            declared = 0
        limit = self.config.body_limit(media)
        if media.startswith("multipart/"):
            limit = min(limit, self.config.max_cache_size)
        return forms.read_limited(environ["wsgi.input"], declared, limit)

    # the response ------------------------------------------------------------------------

    def finish(self, was: RequestWas, content: Any) -> WsgiResult:
        """Status, headers and body once the handler and hooks are done."""
        was.commit()
        body = bodies.make_body(content)
        response = was._response
        if response is None:
            status = "200 OK"
            headers = [("Content-Type", body.content_type or HTML)]
        else:
            status = response.status
            headers = list(response.headers)
            if response.get_header("content-type") is None:
                headers.append(("Content-Type", body.content_type or HTML))
        if body.content is not None:
            return status, headers, [body.content]
        assert body.stream is not None
        if was._closers:
            body.stream.on_close = was.close
        return status, headers, body.stream

    def error_result(self, environ: dict[str, Any], error: HTTPError, was: RequestWas | None) -> WsgiResult:
        if was is None or was._noted is not error:
            log_answer(environ, error)
        page = self.error_page(error.status, error.message, was=was or Was(environ))
        return error.status, [*error.headers, ("Content-Type", HTML)], [page.encode("utf-8")]

    def failure_result(self, environ: dict[str, Any], exc: Exception, was: RequestWas | None) -> WsgiResult:
        exc_info = (type(exc), exc, exc.__traceback__)
        if was is not None:
            was.note_failure(exc_info)
        else:
            app_log.error("%s %s failed", environ.get("REQUEST_METHOD"), environ.get("REQUEST_URI"),
                          exc_info=exc_info)
        page = self.error_page(500, exc_info=exc_info if self.debug else None, was=was or Was(environ))
        return status_line(500), [("Content-Type", HTML)], [page.encode("utf-8")]

    def error_page(
        self, status: int | str, message: str | None = None, exc_info: Any = None, was: Any = None
    ) -> str:
        """The HTML page for an error status; the traceback only when `exc_info` is given."""
        line = status_line(status)
        trace = "".join(traceback.format_exception(*exc_info)) if exc_info else None
        if self.error_template and was is not None:
            try:
                return self.render(was, self.error_template, {
                    "status": line, "code": int(line[:3]), "reason": line[4:],
                    "message": message, "traceback": trace,
                }, part=None)
            except Exception:
                app_log.exception("error template %s failed", self.error_template)
        return error_page(int(line[:3]), message, trace)[1].decode("utf-8")

    # templates ----------------------------------------------------------------------------

    @property
    def jinja_env(self) -> Any:
        if self._jinja_env is None:
            self._jinja_env = templates.make_environment(self.root_path, self.debug or self.use_reloader)
        return self._jinja_env

    @jinja_env.setter
    def jinja_env(self, env: Any) -> None:
        self._jinja_env = env
        self._part_envs.clear()

    def jinja_overlay(
        self,
        line_statement: str = "%",
        variable_string: str = "#",
        block_start_string: str = "{%",
        block_end_string: str = "}",
        **options: Any,
    ) -> None:
        """Switch the app's templates to the seed's overlay syntax (skitai.saddle.templates)."""
        self.jinja_env = templates.overlay(self.jinja_env, line_statement, variable_string,
                                           block_start_string, block_end_string, **options)

    def render(self, was: Any, name: str, context: dict[str, Any], part: Saddlery | None) -> str:
        env = self.jinja_env if part is None or part is self else self._part_env(part)
        template = env.get_template(name)
        owners = (self,) if part is None or part is self else (self, part)
        for owner in owners:
            hook = owner.template_hooks.get("got_template")
            if hook is not None:
                hook(was, template)
        context["was"] = was
        text: str = template.render(context)
        for owner in owners:
            hook = owner.template_hooks.get("template_rendered")
            if hook is not None:
                hook(was, template, context)
        return text

    def _part_env(self, owner: Saddlery) -> Any:
        env = self._part_envs.get(id(owner))
        if env is None:
            root = owner.root_path
            if root is None:
                raise RuntimeError("render2 needs a part made with Saddlery(__name__)")
            from jinja2 import FileSystemLoader

            env = self._part_envs[id(owner)] = self.jinja_env.overlay(
                loader=FileSystemLoader(os.path.join(root, "templates")))
        return env

    # the server's lifecycle hooks (skitai.context) --------------------------------------

    def skitai_startup(self, wasc: ServerContext) -> None:
        self._run_app_hooks("startup", wasc)

    def skitai_reloaded(self, wasc: ServerContext) -> None:
        self._run_app_hooks("onreload", wasc)

    def skitai_shutdown(self, wasc: ServerContext) -> None:
        self._run_app_hooks("shutdown", wasc)
        self.session_stores.close()  # a Redis store made from app.session_store

    def _run_app_hooks(self, kind: str, wasc: ServerContext) -> None:
        self.router  # noqa: B018 - built now, so async routes are known before the first request
        for owner in self.all_parts():
            hook = owner.app_hooks.get(kind)
            if hook is None:
                continue
            try:
                hook(wasc)
            except Exception:
                app_log.exception("%s hook %s of %s failed", kind, getattr(hook, "__qualname__", hook),
                                  self.import_name)

    def _loop_handler(self, environ: dict[str, Any]) -> Any:
        if "CONTENT_TYPE" in environ and (grpc := grpc_serving.loop_handler(self, environ)) is not None:
            return grpc
        return aio.loop_handler(self, environ) if self.router.has_async else None

    def __repr__(self) -> str:
        return f"<Saddle {self.import_name}>"


def _route_takes(router: Router, raw_path: str, media: str) -> bool:
    """Whether the route at this path lists `media` itself, and so is no RPC endpoint."""
    try:
        found = router.find(raw_path, None)
    except BadPath:
        return False
    return isinstance(found, Match) and found.route.content_types is not None \
        and media in found.route.content_types


__all__ = ["AppConfig", "Saddle"]
