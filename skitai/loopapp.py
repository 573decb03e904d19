"""Requests an app answers on the event loop instead of in a worker thread.

A mounted app is a WSGI callable. It may also define

    def skitai_loop_handler(self, environ) -> LoopHandler | None

which the request handler calls on the event loop, before anything else,
with the environ the WSGI path would use (without `wsgi.input`). It must
answer at once, without blocking: None sends the request down the WSGI
path as usual; a `LoopHandler`,

    async def handle(responder: Responder) -> None

is awaited on the loop, in the request's task, instead. It reads the body
and writes the response through the `Responder`. Saddle uses this for
`async def` routes; everything else stays on the WSGI path. Blocking in a
loop handler blocks the whole server: blocking work goes to
`anyio.to_thread.run_sync`.

While the handler runs, `skitai.context.request_environ` holds its environ,
so `from skitai import was` works as it does in worker threads.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from skitai import context
from skitai.compress import accepts_gzip, gzip_bytes, with_vary
from skitai.config import Compression
from skitai.errorpages import HTML, error_page
from skitai.errors import ClientDisconnected, RemoteProtocolError
from skitai.protocols.events import Exchange

app_log = logging.getLogger("skitai.app")

LOOP_HANDLER = "skitai_loop_handler"
BODY_PIECE = 65536
_BAD_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

LoopHandler = Callable[["Responder"], Awaitable[None]]


class Responder:
    """A request's body and response, for a handler running on the event loop.

    Either `respond()` once, or `start()`, any number of `send()`, then `end()`.
    Status lines and headers are WSGI-style str: "200 OK", [("Content-Type", ...)].
    """

    def __init__(self, exchange: Exchange, compression: Compression) -> None:
        self._exchange = exchange
        self._compression = compression
        self._is_head = exchange.request.method == "HEAD"

    @property
    def started(self) -> bool:
        return self._exchange.response_started

    async def receive_body(self, max_bytes: int = BODY_PIECE) -> bytes:
        """The next piece of the request body; b"" at its end."""
        return await self._exchange.receive_body(max_bytes)

    async def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """A whole response; compressed as the WSGI path would, Content-Length added."""
        code, reason = _split_status(status)
        raw = _encode_headers(headers)
        if self._compressible(code, raw, len(body)):
            body = gzip_bytes(body, self._compression.level)
            raw = with_vary([*raw, (b"Content-Encoding", b"gzip")])
        if code not in (204, 304) and not any(n.lower() == b"content-length" for n, _ in raw):
            raw.append((b"Content-Length", str(len(body)).encode("ascii")))
        await self._exchange.respond(code, raw, b"" if self._is_head else body, reason)

    async def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        code, reason = _split_status(status)
        await self._exchange.start_response(code, _encode_headers(headers), reason)

    async def send(self, data: bytes) -> None:
        if data:
            await self._exchange.send_body(data)

    async def end(self, trailers: list[tuple[str, str]] | None = None) -> None:
        """Finish the response; `trailers` go after the body where the protocol allows."""
        await self._exchange.end_response(_encode_headers(trailers) if trailers else ())

    def promise(self, path: str) -> None:
        """HTTP/2 server push of `path`; ignored where it cannot be pushed."""
        self._exchange.promise(path.encode("latin-1"))

    def _compressible(self, status: int, headers: list[tuple[bytes, bytes]], length: int) -> bool:
        compression = self._compression
        if not (compression.enabled and status >= 200 and status not in (204, 206, 304)
                and length >= compression.min_size):
            return False
        content_type = b""
        for name, value in headers:
            lower = name.lower()
            if lower in (b"content-encoding", b"content-length"):
                return False
            if lower == b"content-type":
                content_type = value
        return bool(content_type) and compression.compressible(content_type.decode("latin-1")) \
            and accepts_gzip(self._exchange.request.header(b"accept-encoding"))


async def serve_on_loop(
    exchange: Exchange,
    handle: LoopHandler,
    environ: dict[str, Any],
    *,
    app: Any,
    compression: Compression,
) -> None:
    """Await a loop handler for one request; its failures answer 500 like the WSGI path's."""
    responder = Responder(exchange, compression)
    environ["skitai.hint_promise"] = responder.promise
    token = context.request_environ.set(environ)
    try:
        await handle(responder)
    except (ClientDisconnected, RemoteProtocolError):
        raise  # as on the WSGI path: the connection's driver answers a broken request
    except Exception as exc:
        app_log.error("%s failed on %s %s", _app_name(app), environ.get("REQUEST_METHOD"),
                      environ.get("REQUEST_URI"), exc_info=exc)
        if exchange.response_started:
            exchange.close_after_response()
            raise ClientDisconnected("response abandoned mid-body") from exc
        text = "".join(traceback.format_exception(exc)) if getattr(app, "debug", False) else None
        status, body = error_page(500, traceback_text=text)
        await exchange.respond(status, [HTML], body)
    finally:
        context.request_environ.reset(token)
    if not exchange.finished:
        app_log.error("%s: loop handler returned without finishing its response", _app_name(app))
        exchange.close_after_response()
        if exchange.response_started:
            raise ClientDisconnected("response left unfinished")
        status, body = error_page(500)
        await exchange.respond(status, [HTML], body)


def _split_status(status: str) -> tuple[int, bytes]:
    code, _, reason = status.partition(" ")
    return int(code), reason.encode("latin-1")


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for name, value in headers:
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise ValueError(f"invalid response header {name!r}: {value!r}")
        encoded.append((name.encode("latin-1"), value.encode("latin-1")))
    return encoded


def _app_name(app: object) -> str:
    return getattr(app, "__qualname__", None) or type(app).__qualname__
