"""`async def` routes, served on the event loop through skitai.loopapp.

The server asks the app, on the loop, whether it answers a request there
(`Saddle.skitai_loop_handler`, set only while the app has async routes).
It does when the path and method select an `async def` handler and the
request is not an RPC call (those are read in a worker thread, where an
async handler is run on the loop through `anyio.from_thread`).

Then the same steps as the WSGI path run in the request's task: 415, 413,
authentication (before any of the body is read), arguments, hooks (async
ones awaited, sync ones in a worker thread), the response. A body of a
type with a registered parser (multipart forms) is streamed to it, the
parser running in a worker thread; any other body is read whole (within
the app's limit) before the handler runs, so `was.request.get_body()`
works without blocking. A server-side session store is only ever called
from worker threads (skitai.saddle.session_service): the default session
is loaded before the hooks, and the commits run in a worker thread. What
the handler returns is sent as on the WSGI path; sync iterators and files
are read in a worker thread, async iterators are awaited on the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from skitai.errors import ClientDisconnected, RemoteProtocolError
from skitai.loopapp import Responder
from skitai.saddle import forms, hooks, plugins, rpc, session_service
from skitai.saddle.errors import BadRequest, BodyTooLarge, HTTPError
from skitai.saddle.handlers import call_async
from skitai.saddle.part import media_type
from skitai.saddle.request_body import LoopBody
from skitai.saddle.routing import BadPath, BuildError, Match, request_path
from skitai.saddle.was import RequestWas


def loop_handler(app: Any, environ: dict[str, Any]) -> Callable[[Responder], Awaitable[None]] | None:
    """The coroutine that answers this request on the loop, or None for the WSGI path."""
    method = environ["REQUEST_METHOD"]
    content_type = environ.get("CONTENT_TYPE")
    media = media_type(content_type) if content_type else ""
    if method == "POST" and media in rpc.MEDIA_TYPES:
        return None
    try:
        found = app.router.find(request_path(environ), method)
    except BadPath:
        return None  # the WSGI path answers it
    if not isinstance(found, Match) or not found.route.signature.is_async:
        return None
    return functools.partial(_serve, app, environ, found, media)


async def _serve(app: Any, environ: dict[str, Any], found: Match, media: str,
                 responder: Responder) -> None:
    try:
        await _respond(app, environ, found, media, responder)
    finally:
        was = environ.pop("skitai.was", None)  # no environ <-> was cycle left behind
        if was is not None and was._closers:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(was.close)


async def _respond(app: Any, environ: dict[str, Any], found: Match, media: str,
                   responder: Responder) -> None:
    route = found.route
    was: RequestWas | None = None
    try:
        if route.content_types is not None and media not in route.content_types:
            raise HTTPError(415, f"this resource takes {', '.join(sorted(route.content_types))}")
        limit = app.config.body_limit(media)
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > limit:
            raise BodyTooLarge(f"body of {length} bytes, more than {limit}")
        was = RequestWas(app, environ, route, media=media)
        environ["skitai.was"] = was
        if route.authenticate or app.authenticate:
            refusal = await call_async(app.check_access, False, was, route)
            if refusal is not None:
                raise refusal
        query = environ.get("QUERY_STRING")
        args = forms.parse_query(query) if query else {}
        if _streamed(media):
            reader = LoopBody(responder.receive_body)
            args.update(await anyio.to_thread.run_sync(app.parse_body, was, media, reader.read))
        else:
            body = await _read_body(environ, responder, limit)
            was.set_body(body)
            if media:
                args.update(_body_args(was, media, body))
        args.update(found.args)
        was.args = args
        await session_service.preload(was)
        content = await hooks.run_async(route, was)
        if was.has_commits:  # a session store may block: not on the loop
            await anyio.to_thread.run_sync(was.commit)
        if hasattr(content, "__anext__"):
            await _send_async_iterator(app, was, content, responder)
            return
        status, headers, result = app.finish(was, content)
    except (ClientDisconnected, RemoteProtocolError):
        raise  # no one to answer, or the server answers it
    except HTTPError as exc:
        status, headers, result = app.error_result(environ, exc, was)
    except (BadPath, BuildError) as exc:
        status, headers, result = app.error_result(environ, BadRequest(str(exc)), was)
    except Exception as exc:
        status, headers, result = app.failure_result(environ, exc, was)
    if isinstance(result, list):
        await responder.respond(status, headers, b"".join(result))
    else:
        await _send_stream(status, headers, result, responder)


async def _read_body(environ: dict[str, Any], responder: Responder, limit: int) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    if length and length.isdigit():
        if int(length) > limit:
            raise BodyTooLarge(f"body of {length} bytes, more than {limit}")
        if int(length) == 0:
            return b""
    # Else read to the end: the driver knows when there is no body (HTTP/1.1
    # without framing headers; HTTP/2 HEADERS with END_STREAM) and answers b"".
    pieces = []
    size = 0
    while data := await responder.receive_body():
        size += len(data)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        pieces.append(data)
    return b"".join(pieces)


def _streamed(media: str) -> bool:
    """Whether the body goes to a registered parser as it arrives, rather than read whole first."""
    return media in plugins.BODY_PARSERS and media != forms.URLENCODED and media not in forms.JSON_TYPES


def _body_args(was: RequestWas, media: str, body: bytes) -> dict[str, Any]:
    if media == forms.URLENCODED or media in forms.JSON_TYPES:
        return forms.body_args(was.request, media, body)
    return {}


async def _send_stream(status: str, headers: list[tuple[str, str]], stream: Any,
                       responder: Responder) -> None:
    try:
        await responder.start(status, headers)
        while (piece := await anyio.to_thread.run_sync(next, stream, None)) is not None:
            await responder.send(piece)
        await responder.end()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stream.close)


async def _send_async_iterator(app: Any, was: RequestWas, iterator: Any, responder: Responder) -> None:
    status, headers, _ = app.finish(was, b"")
    try:
        await responder.start(status, headers)
        async for item in iterator:
            if item:
                await responder.send(item.encode("utf-8") if isinstance(item, str) else bytes(item))
        await responder.end()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
