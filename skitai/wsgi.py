"""PEP 3333: WSGI apps in worker threads, bodies streamed both ways.

A `WsgiCall` is shared by two parties. The connection task on the event
loop builds the environ, submits the call to the `WorkerPool` and then
delivers what the worker produces. The worker thread runs the app, iterates
its body and posts items (head, data, end) into an outbox; each post wakes
the loop through `LoopCallbacks` unless a wake-up is already on its way.

* One hop per request in the common case: a list body is gathered in the
  worker and posted as one complete response.
* Back-pressure: the worker blocks while more than `OUTBOX_LIMIT` bytes wait
  to be written, so a slow client holds its app's thread, never the loop.
* `wsgi.input` is lazy: the first `PREBUFFER` bytes of a body are read
  before the app starts (so small bodies cost no extra hop); beyond that the
  worker asks the loop for more, one piece at a time.
* `close()` on the app's iterable is always called, also when the client
  went away (the worker notices at its next post).
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from skitai import __version__
from skitai.compress import GzipStream, accepts_gzip, gzip_bytes, with_vary
from skitai.config import Compression
from skitai.context import request_environ
from skitai.errorpages import error_page
from skitai.errors import ClientDisconnected, RemoteProtocolError
from skitai.protocols.events import Exchange, Request
from skitai.threadpool import LoopCallbacks, WorkerPool

app_log = logging.getLogger("skitai.app")

PREBUFFER = 65536
OUTBOX_LIMIT = 262144
BODY_PIECE = 65536
MESSAGE_WAIT = 1.0  # worker waits re-check the abandoned flag this often
_STATUS = re.compile(r"[1-5][0-9][0-9] [^\r\n]*")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade"}
)
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 6.5.1: framing, routing and control fields never travel as trailers.
_NOT_TRAILERS = frozenset({"content-length", "content-type", "content-encoding", "transfer-encoding",
                           "host", "connection", "te", "trailer", "cache-control", "expect"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class IncompleteBody(OSError):
    """`wsgi.input` cannot deliver the rest of the body: the client went away or broke its framing.

    An app that lets it propagate gets the server's answer (a 400, or none
    for a client that is gone) and one warning, not a logged failure.
    """


class _Abandoned(BaseException):
    """The response can no longer be delivered; stop producing it.

    A BaseException, so an app's `except Exception` cannot swallow it.
    """


class WsgiErrors:
    """`wsgi.errors`: what apps write here goes to the skitai.app logger, a line at a time."""

    def __init__(self) -> None:
        self._partial = threading.local()

    def write(self, text: str) -> None:
        buffered = getattr(self._partial, "text", "") + text
        *lines, rest = buffered.split("\n")
        for line in lines:
            if line:
                app_log.error("%s", line)
        self._partial.text = rest

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        rest = getattr(self._partial, "text", "")
        if rest:
            app_log.error("%s", rest)
            self._partial.text = ""


WSGI_ERRORS = WsgiErrors()


class WsgiInput:
    """`wsgi.input`: the request body, pulled from the connection as the app reads."""

    def __init__(self, call: WsgiCall) -> None:
        self._call: WsgiCall | None = call
        self._buffer = bytearray()

    def detach(self) -> None:
        """The request is over: reads from now on find the end of the body."""
        self._call = None

    def _fill(self) -> bool:
        if self._call is None:
            return False
        data = self._call.next_body_piece()
        if data:
            self._buffer += data
            return True
        return False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._buffer)
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                end += 1
                break
            if limit is not None and len(self._buffer) >= limit:
                end = limit
                break
            if not self._fill():
                end = len(self._buffer)
                break
        if limit is not None:
            end = min(end, limit)
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> WsgiInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class WsgiCall:
    """One WSGI request: run in a worker thread, delivered by the connection task."""

    def __init__(
        self,
        app: WsgiApp,
        environ: dict[str, Any],
        *,
        callbacks: LoopCallbacks,
        compression: Compression,
        accept_gzip: bool,
        is_head: bool,
        body: list[bytes],
        body_complete: bool,
    ) -> None:
        self.app = app
        self.environ = environ
        self._callbacks = callbacks
        self._compression = compression
        self._accept_gzip = accept_gzip
        self._is_head = is_head
        self._outbox: deque[tuple[Any, ...]] = deque()  # worker -> loop
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()  # loop -> worker
        self._unacknowledged = 0  # bytes posted that the loop has not written yet
        self._notified = False
        self._wake = callbacks.new_wakeup()
        self.abandoned = False
        # request body, loop -> worker
        self._body: deque[bytes] = deque(body)
        self._body_eof = body_complete
        self._body_error: BaseException | None = None
        self._want_body = False  # read by the loop
        self._body_requested = False  # worker side: a request for body is outstanding
        # response state, worker side
        self._status: str | None = None
        self._headers: list[tuple[str, str]] = []
        self._head_sent = False
        self._gzip: GzipStream | None = None
        self._remaining: int | None = None  # bytes still owed to a declared Content-Length
        self.protocol_error: RemoteProtocolError | None = None
        self._promises: list[str] = []  # paths to push (HTTP/2), sent before the response
        self._input = environ["wsgi.input"] = WsgiInput(self)
        environ["skitai.hint_promise"] = self._promises.append
        # (name, value) pairs sent as trailers after the body, where the protocol allows
        self._trailers: list[tuple[str, str]] = []
        environ["skitai.trailers"] = self._trailers

    # ------------------------------------------------------- worker thread side

    def __call__(self) -> None:
        # The environ is the current request's while the app and its body run,
        # so `from skitai import was` finds it (skitai.context).
        token = request_environ.set(self.environ)
        try:
            if self.abandoned:
                return
            self._run_app()
        except _Abandoned:
            pass
        except Exception:
            self._fail(sys.exc_info())
        finally:
            request_environ.reset(token)
            # The input refers back to this call through the environ: let the
            # pair go by reference counting, not by a garbage collection.
            self._input.detach()
            self._post(("done",))

    def _run_app(self) -> None:
        result = self.app(self.environ, self._start_response)
        complete: bytes | None = None  # a list body, gathered whole
        try:
            if type(result) in (list, tuple) and not self._head_sent and self._status is not None:
                body = []
                for index, item in enumerate(result):
                    if type(item) is not bytes:
                        _reject_body_item(item, index)
                    body.append(item)
                complete = b"".join(body)
            else:
                for item in result:
                    if type(item) is not bytes:
                        _reject_body_item(item, None)
                    if item:
                        self._write(item)
        finally:
            # Before the end goes out, so close() may still add trailers.
            close = getattr(result, "close", None)
            if close is not None:
                close()
        trailers = _trailer_fields(self._trailers)
        if complete is not None:
            if not trailers:
                self._post_complete(complete)
                return
            self._send_head(known_length=len(complete))
            self._write(complete)
        elif not self._head_sent:
            self._send_head(known_length=0)
        self._finish_body(trailers)

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self._head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if type(status) is not str or not _STATUS.fullmatch(status):
            raise ValueError(f"invalid WSGI status {status!r}")
        if type(headers) is not list:
            raise TypeError(f"WSGI headers must be a list, not {type(headers).__name__}")
        for pair in headers:
            if type(pair) is not tuple or len(pair) != 2:
                raise TypeError(f"WSGI header {pair!r} is not a (name, value) tuple")
            name, value = pair
            if type(name) is not str or not _TOKEN.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if type(value) is not str or _BAD_VALUE.search(value):
                raise ValueError(f"invalid value for header {name}: {value!r}")
        self._status = status
        self._headers = headers
        return self._write

    def _head(self, known_length: int | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, reason and response headers, with the compression decision applied."""
        if self._status is None:
            raise AssertionError("the app returned a body without calling start_response")
        code_text, _, reason = self._status.partition(" ")
        status = int(code_text)
        headers: list[tuple[bytes, bytes]] = []
        declared: int | None = None
        content_type = ""
        encoded = False
        for name, value in self._headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP and lower != "connection":
                continue
            if lower == "content-length":
                if not value.strip().isdigit():
                    raise ValueError(f"invalid Content-Length {value!r}")
                declared = int(value)
            elif lower == "content-type":
                content_type = value
            elif lower == "content-encoding":
                encoded = True
            headers.append((name.encode("latin-1"), value.encode("latin-1")))
        if known_length is not None and declared is None:
            headers.append((b"Content-Length", str(known_length).encode("ascii")))
        length = known_length if known_length is not None else declared
        compression = self._compression
        if (
            self._accept_gzip
            and compression.enabled
            and not encoded
            and status >= 200
            and status not in (204, 206, 304)
            and content_type
            and compression.compressible(content_type)
            and (length is None or length >= compression.min_size)
        ):
            headers = [
                (n, b"W/" + v if n.lower() == b"etag" and not v.startswith(b"W/") else v)
                for n, v in headers
                if n.lower() != b"content-length"
            ]
            headers.append((b"Content-Encoding", b"gzip"))
            headers = with_vary(headers)
            self._gzip = GzipStream(compression.level)
            declared = None
        self._remaining = declared
        return status, reason.encode("latin-1"), headers

    def _post_complete(self, body: bytes) -> None:
        status, reason, headers = self._head(known_length=len(body))
        if self._remaining is not None and self._remaining != len(body):
            app_log.error(
                "%s: Content-Length %d declared, %d bytes sent; sending what was produced",
                _app_name(self.app), self._remaining, len(body),
            )
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        if self._gzip is not None:
            body = gzip_bytes(body, self._compression.level)
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
            self._gzip = None
        self._head_sent = True
        self._post(("complete", status, reason, headers, b"" if self._is_head else body,
                    self._promises))

    def _send_head(self, known_length: int | None = None) -> None:
        status, reason, headers = self._head(known_length)
        self._head_sent = True
        self._post(("head", status, reason, headers, self._promises))

    def _write(self, data: bytes) -> None:
        """The app's `write()` callable, and each item of its iterable."""
        if type(data) is not bytes:
            _reject_body_item(data, None)
        if not self._head_sent:
            self._send_head()
        if not data or self._is_head:
            return
        if self._remaining is not None:
            if len(data) > self._remaining:
                app_log.error("%s: more body than its Content-Length; excess dropped",
                              _app_name(self.app))
                data = data[: self._remaining]
            self._remaining -= len(data)
        if self._gzip is not None:
            data = self._gzip.compress(data)
        if data:
            self._post(("data", data))

    def _finish_body(self, trailers: list[tuple[bytes, bytes]]) -> None:
        if self._gzip is not None and not self._is_head:
            tail = self._gzip.finish()
            if tail:
                self._post(("data", tail))
        if self._remaining and not self._is_head:
            app_log.error("%s: body shorter than its Content-Length; closing the connection",
                          _app_name(self.app))
            self._post(("abort",))
            return
        self._post(("end", trailers))

    def _fail(self, exc_info: Any) -> None:
        if self._body_error is not None:
            app_log.warning("%s: request body failed: %s", _app_name(self.app), self._body_error)
        else:
            app_log.error("%s failed on %s %s", _app_name(self.app),
                          self.environ.get("REQUEST_METHOD"), self.environ.get("REQUEST_URI"),
                          exc_info=exc_info)
        if self._head_sent:
            self._post(("abort",))
            return
        text = None
        if getattr(self.app, "debug", False):
            text = "".join(traceback.format_exception(*exc_info))
        self._head_sent = True
        self._post(("error", 500, text))

    def _post(self, item: tuple[Any, ...]) -> None:
        if self.abandoned and item[0] != "done":
            raise _Abandoned
        self._outbox.append(item)
        self._wake_loop()
        if item[0] == "data":
            self._unacknowledged += len(item[1])
            while self._unacknowledged > OUTBOX_LIMIT and not self.abandoned:
                self._take_message()
            if self.abandoned:
                raise _Abandoned

    def _wake_loop(self) -> None:
        if not self._notified:
            self._notified = True
            self._callbacks.call_soon(self._signal)

    def _take_message(self) -> None:
        """Wait for one message from the loop and apply it. Worker side."""
        try:
            kind, value = self._inbox.get(timeout=MESSAGE_WAIT)
        except queue.Empty:
            return
        if kind == "ack":
            self._unacknowledged -= value
        elif kind == "body":
            self._body.append(value)
        elif kind == "eof":
            self._body_eof = True
        elif kind == "error":
            self._body_error = value
        # "abandon" only wakes us: the flag is already set

    def next_body_piece(self) -> bytes:
        """Called by wsgi.input in the worker: the next piece of body, b"" at its end."""
        while True:
            if self._body:
                return self._body.popleft()
            if self._body_error is not None:
                raise IncompleteBody(f"request body incomplete: {self._body_error}")
            if self._body_eof:
                return b""
            if self.abandoned:
                raise _Abandoned
            if not self._body_requested:
                self._body_requested = True
                self._want_body = True
                self._wake_loop()
            self._take_message()
            if self._body or self._body_eof or self._body_error is not None:
                self._body_requested = False

    # ------------------------------------------------------- event loop side
    #
    # The loop never takes a lock the worker may hold: it reads the outbox
    # deque and answers through a SimpleQueue, whose put() never blocks.

    def _signal(self) -> None:
        self._wake.set()

    def abandon(self) -> None:
        self.abandoned = True
        self._inbox.put(("abandon", None))

    async def deliver(self, exchange: Exchange) -> None:
        """Write what the worker produces until it is done. Loop side."""
        outbox = self._outbox
        try:
            while True:
                await self._wake.wait()
                # Clear the flag before draining: anything posted from now on
                # is either drained below or sends a fresh wake-up.
                self._notified = False
                while outbox:
                    if await self._deliver_item(exchange, outbox.popleft()):
                        return
                if self._want_body:
                    self._want_body = False
                    await self._feed_body(exchange)
        except BaseException:
            self.abandon()
            raise

    async def _deliver_item(self, exchange: Exchange, item: tuple[Any, ...]) -> bool:
        kind = item[0]
        if kind == "data":
            await exchange.send_body(item[1])
            self._inbox.put(("ack", len(item[1])))
        elif kind == "complete":
            _promise(exchange, item[5])
            await exchange.respond(item[1], item[3], item[4], item[2])
        elif kind == "head":
            _promise(exchange, item[4])
            await exchange.start_response(item[1], item[3], item[2])
        elif kind == "end":
            await exchange.end_response(item[1])
        elif kind == "error":
            if self.protocol_error is not None:
                raise self.protocol_error
            status, body = error_page(item[1], traceback_text=item[2])
            await exchange.respond(status, [(b"Content-Type", b"text/html; charset=utf-8")], body)
        elif kind == "abort":
            exchange.close_after_response()
            self.abandon()
            raise ClientDisconnected("response abandoned mid-body")
        elif kind == "done":
            return True
        return False

    async def _feed_body(self, exchange: Exchange) -> None:
        try:
            data = await exchange.receive_body(BODY_PIECE)
        except RemoteProtocolError as exc:
            self.protocol_error = exc
            self._inbox.put(("error", exc))
        except ClientDisconnected as exc:
            self._inbox.put(("error", exc))
        else:
            self._inbox.put(("body", data) if data else ("eof", None))


def _promise(exchange: Exchange, paths: list[str]) -> None:
    """HTTP/2 server push of what the app named with environ["skitai.hint_promise"]."""
    for path in paths:
        exchange.promise(path.encode("latin-1"))


def _trailer_fields(trailers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    fields = []
    for name, value in trailers:
        if type(name) is not str or not _TOKEN.fullmatch(name) or name.lower() in _NOT_TRAILERS:
            raise ValueError(f"invalid trailer name {name!r}")
        if type(value) is not str or _BAD_VALUE.search(value):
            raise ValueError(f"invalid value for trailer {name}: {value!r}")
        fields.append((name.encode("latin-1"), value.encode("latin-1")))
    return fields


def _reject_body_item(item: object, index: int | None) -> None:
    where = f" (item {index})" if index is not None else ""
    raise TypeError(
        f"WSGI response bodies must be bytes, not {type(item).__name__}{where}; "
        "encode str bodies, e.g. [b'Hello World']"
    )


def _app_name(app: object) -> str:
    return getattr(app, "__qualname__", None) or type(app).__qualname__


def build_environ(
    request: Request, script_name: str, path_info: str, *, server_software: str
) -> dict[str, Any]:
    """The PEP 3333 environ of a request (wsgi.input is added by WsgiCall)."""
    server_host, server_port = request.server
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.query.decode("latin-1"),
        "REQUEST_URI": request.target.decode("latin-1"),
        "SERVER_NAME": server_host,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{request.http_version}" if request.http_version != "2"
        else "HTTP/2",
        "SERVER_SOFTWARE": server_software,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.errors": WSGI_ERRORS,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "skitai.version": __version__,
    }
    if request.client is not None:
        environ["REMOTE_ADDR"] = request.client[0]
        environ["REMOTE_PORT"] = str(request.client[1])
    for name, value in request.headers:
        if b"_" in name:
            continue  # X_Forwarded_For must not pose as X-Forwarded-For
        text = value.decode("latin-1")
        if name == b"content-type":
            environ["CONTENT_TYPE"] = text
            continue
        if name == b"content-length":
            environ["CONTENT_LENGTH"] = text
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] += separator + text
        else:
            environ[key] = text
    return environ


def decode_path(raw_path: bytes) -> str:
    """A percent-decoded path as a WSGI (latin-1) string."""
    if b"%" not in raw_path:
        return raw_path.decode("latin-1")
    return unquote_to_bytes(raw_path).decode("latin-1")


async def serve_wsgi(
    exchange: Exchange,
    app: WsgiApp,
    environ: dict[str, Any],
    *,
    pool: WorkerPool,
    callbacks: LoopCallbacks,
    compression: Compression,
) -> None:
    """Serve one request with a WSGI app, with the environ `build_environ` made for it."""
    request = exchange.request
    body: list[bytes] = []
    complete = False
    if not exchange.expects_continue and _may_have_body(request):
        size = 0
        while size < PREBUFFER:
            data = await exchange.receive_body(BODY_PIECE)
            if not data:
                complete = True
                break
            body.append(data)
            size += len(data)
    elif not _may_have_body(request):
        complete = True
    call = WsgiCall(
        app,
        environ,
        callbacks=callbacks,
        compression=compression,
        accept_gzip=accepts_gzip(request.header(b"accept-encoding")),
        is_head=request.method == "HEAD",
        body=body,
        body_complete=complete,
    )
    pool.submit(call)
    await call.deliver(exchange)


def _may_have_body(request: Request) -> bool:
    if request.body_follows is not None:
        return request.body_follows
    for name, value in request.headers:
        if name == b"content-length":
            return value != b"0"
        if name == b"transfer-encoding":
            return True
    return False
