"""gRPC serving for Saddle apps, as the seed's "Implementing gRPC Service" shows.

    import route_guide_pb2                       # registers the message types

    @app.route("/GetFeature")
    def GetFeature(was, point):                  # point: a route_guide_pb2.Point
        return route_guide_pb2.Feature(name="", location=point)

    skitai.run(mount=("/routeguide.RouteGuide", app))

A POST with `content-type: application/grpc` to `/<package.Service>/<Method>`
is a gRPC call of that method: the mount point names the service, the
route the method. Its message types and its kind come from the protobuf
descriptors registered in the process (importing the generated `_pb2`
module registers them):

| kind | the handler's argument | it returns |
|---|---|---|
| unary | the request message | the response message |
| server streaming | the request message | an iterable (a generator) of messages |
| client streaming | an iterator of the request messages | the response message |
| bidirectional | an iterator of the request messages | an iterable of messages |

The call runs in the request's task on the event loop (skitai.loopapp), so
its deadline (`grpc-timeout`) is a cancel scope: an `async def` handler is
cancelled there; a plain one runs in a worker thread that is abandoned at
the deadline (it finishes on its own; its request iterator raises
`GrpcError(CANCELLED)` at its next message, and what it still returns is
dropped). Hooks run around the handler as for any route. The answer is
HTTP 200 with the messages, then `grpc-status` and `grpc-message` as
trailers. A `GrpcError` raised by the handler sets them; any other
exception is UNKNOWN (with the exception's text only in debug).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from skitai.loopapp import Responder
from skitai.saddle import hooks
from skitai.saddle.errors import HTTPError
from skitai.saddle.grpc_wire import (
    ENCODINGS,
    GrpcError,
    MessageReader,
    Status,
    frame,
    parse_timeout,
    trailers,
)
from skitai.saddle.part import media_type
from skitai.saddle.routing import BadPath, Match, request_path
from skitai.saddle.was import RequestWas

app_log = logging.getLogger("skitai.app")

GRPC_TYPES = frozenset({"application/grpc", "application/grpc+proto"})
MAX_MESSAGE = 4 << 20  # gRPC's own default for a received message
_HTTP_TO_GRPC: dict[int, Status] = {
    400: Status.INVALID_ARGUMENT, 401: Status.UNAUTHENTICATED, 403: Status.PERMISSION_DENIED,
    404: Status.UNIMPLEMENTED, 405: Status.UNIMPLEMENTED, 413: Status.RESOURCE_EXHAUSTED,
    415: Status.INVALID_ARGUMENT,
}
_END = object()


def loop_handler(app: Any, environ: dict[str, Any]) -> Callable[[Responder], Any] | None:
    """The coroutine answering a gRPC call, or None when the request is not one."""
    content_type = environ.get("CONTENT_TYPE")
    if not content_type or media_type(content_type) not in GRPC_TYPES:
        return None
    return functools.partial(_serve, app, environ)


def _method_descriptor(environ: dict[str, Any]) -> Any:
    """The protobuf descriptor of `/<service>/<method>`, from the mount point and the path."""
    from google.protobuf import descriptor_pool  # only apps that serve gRPC need protobuf

    service = environ.get("SCRIPT_NAME", "").strip("/")
    method = environ.get("PATH_INFO", "").strip("/")
    try:
        return descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    except KeyError:
        raise GrpcError(Status.UNIMPLEMENTED,
                        f"no protobuf descriptor for {service}/{method}: import its _pb2 module") from None


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


async def _serve(app: Any, environ: dict[str, Any], responder: Responder) -> None:
    try:
        if environ.get("SERVER_PROTOCOL") != "HTTP/2":
            await responder.respond("505 HTTP Version Not Supported", [("Content-Type", "text/plain")],
                                    b"gRPC needs HTTP/2\n")
            return
        await _Call(app, environ, responder).run()
    finally:
        was = environ.pop("skitai.was", None)
        if was is not None and was._closers:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(was.close)


class _Call:
    def __init__(self, app: Any, environ: dict[str, Any], responder: Responder) -> None:
        self.app = app
        self.environ = environ
        self.responder = responder
        self.cancelled = False  # the deadline passed: a worker thread still running gets no more
        encoding = environ.get("HTTP_GRPC_ENCODING", "identity")
        self.request_encoding = None if encoding == "identity" else encoding
        accepted = {e.strip() for e in environ.get("HTTP_GRPC_ACCEPT_ENCODING", "").split(",")}
        # Answer compressed when the client compressed its request and accepts the same.
        self.response_encoding = self.request_encoding if self.request_encoding in accepted else None

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/grpc"), ("grpc-accept-encoding", ",".join(ENCODINGS))]
        if self.response_encoding is not None:
            headers.append(("grpc-encoding", self.response_encoding))
        return headers

    async def run(self) -> None:
        status, message = Status.OK, ""
        await self.responder.start("200 OK", self._headers())
        try:
            if self.request_encoding is not None and self.request_encoding not in ENCODINGS:
                raise GrpcError(Status.UNIMPLEMENTED,
                                f"grpc-encoding {self.request_encoding!r} is not offered")
            timeout = parse_timeout(self.environ.get("HTTP_GRPC_TIMEOUT"))
            with anyio.fail_after(timeout):
                await self._call()
        except TimeoutError:
            self.cancelled = True
            status, message = Status.DEADLINE_EXCEEDED, "deadline exceeded"
        except GrpcError as exc:
            status, message = exc.status, exc.message
        except HTTPError as exc:
            status = _HTTP_TO_GRPC.get(int(exc.status[:3]), Status.UNKNOWN)
            message = exc.message or exc.status
        except Exception as exc:
            was = self.environ.get("skitai.was")
            if was is None or was._noted is not exc:  # the hooks log what passes through them
                app_log.error("gRPC %s failed", self.environ.get("REQUEST_URI"), exc_info=exc)
            status = Status.UNKNOWN
            debug = getattr(self.app, "debug", False)
            message = f"{type(exc).__name__}: {exc}" if debug else "handler failed"
        if status is not Status.OK and status is not Status.UNKNOWN:
            app_log.warning("gRPC %s: %s %s", self.environ.get("REQUEST_URI"), status.name, message)
        await self.responder.end(trailers(status, message))

    async def _call(self) -> None:
        descriptor = _method_descriptor(self.environ)
        request_class = _message_class(descriptor.input_type)
        try:
            found = self.app.router.find(request_path(self.environ), "POST")
        except BadPath:
            found = None
        if not isinstance(found, Match):
            raise GrpcError(Status.UNIMPLEMENTED, f"no route for {self.environ.get('PATH_INFO')}")
        route = found.route
        was = RequestWas(self.app, self.environ, route, b"")
        was.grpc = True
        self.environ["skitai.was"] = was
        if route.authenticate or self.app.authenticate:
            refusal = await anyio.to_thread.run_sync(self.app.check_access, was, route)
            if refusal is not None:
                raise refusal
        reader = MessageReader(self.responder.receive_body, self.request_encoding, MAX_MESSAGE)
        requests = _Requests(self, reader, request_class)
        if descriptor.client_streaming:
            argument: Any = requests
        else:
            argument = await requests.one()
        parameter = route.signature.positional[0] if route.signature.positional else None
        was.args = {**found.args, **({parameter: argument} if parameter else {})}
        if route.signature.is_async:
            result = await hooks.run_async(route, was)
        else:
            result = await anyio.to_thread.run_sync(hooks.run_sync, route, was, abandon_on_cancel=True)
        if descriptor.server_streaming:
            await self._send_all(result)
        else:
            await self._send(result)

    async def _send(self, message: Any) -> None:
        serialize = getattr(message, "SerializeToString", None)
        if serialize is not None:
            data = serialize()
        elif isinstance(message, bytes | bytearray):
            data = bytes(message)
        else:
            raise TypeError(f"a gRPC handler returns protobuf messages, not {type(message).__name__}")
        await self.responder.send(frame(data, self.response_encoding))

    async def _send_all(self, messages: Any) -> None:
        if hasattr(messages, "__aiter__"):
            async for message in messages:
                await self._send(message)
            return
        iterator = iter(messages)
        while (message := await anyio.to_thread.run_sync(next, iterator, _END, abandon_on_cancel=True)) \
                is not _END:
            await self._send(message)


class _Requests:
    """The request messages, for handlers in worker threads (iterator) and on the loop (async)."""

    def __init__(self, call: _Call, reader: MessageReader, message_class: Any) -> None:
        self._call = call
        self._reader = reader
        self._class = message_class

    async def next(self) -> Any:
        if self._call.cancelled:
            raise GrpcError(Status.CANCELLED, "the call's deadline passed")
        data = await self._reader.next()
        if data is None:
            return _END
        try:
            return self._class.FromString(data)
        except Exception as exc:  # protobuf's DecodeError, and what malformed varints raise
            raise GrpcError(Status.INTERNAL, f"request message does not parse: {exc}") from None

    async def one(self) -> Any:
        """The single message of a unary request."""
        message = await self.next()
        if message is _END:
            raise GrpcError(Status.INTERNAL, "no request message")
        if await self._reader.next() is not None:
            raise GrpcError(Status.INTERNAL, "more than one request message for a unary method")
        return message

    def __iter__(self) -> Iterator[Any]:
        while (message := anyio.from_thread.run(self.next)) is not _END:
            yield message

    async def __aiter__(self) -> AsyncIterator[Any]:
        while (message := await self.next()) is not _END:
            yield message
