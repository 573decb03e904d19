"""`environ["skitai.trailers"]`: fields sent after the body, on HTTP/2 and chunked HTTP/1.1."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from h2.errors import ErrorCodes

from tests.support.h2peer import H2Peer
from tests.support.rawhttp import RawClient
from tests.support.servers import serving

StartResponse = Callable[..., Any]


def streamed(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/grpc")])
    yield b"part one, "
    yield b"part two"
    environ["skitai.trailers"].append(("grpc-status", "0"))


class Closing(list[bytes]):
    """A list body whose close() sets the trailers: they still go out."""

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__([b"whole"])
        self.environ = environ

    def close(self) -> None:
        self.environ["skitai.trailers"].extend([("grpc-status", "2"), ("grpc-message", "late")])


def listed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/grpc")])
    return Closing(environ)


def bad(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    environ["skitai.trailers"].append(("content-length", "3"))
    return [b"abc"]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    route = {"/streamed": streamed, "/listed": listed, "/bad": bad}[environ["PATH_INFO"]]
    return route(environ, start_response)


async def test_trailers_over_http2() -> None:
    async with serving(mount=("/", validator(app))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        first = await peer.response(await peer.request(b"POST", b"/streamed", [(b"te", b"trailers")]))
        second = await peer.response(await peer.request(b"POST", b"/listed", [(b"te", b"trailers")]))
        await peer.aclose()
    assert (first.status, bytes(first.data)) == (200, b"part one, part two")
    assert first.trailers == [(b"grpc-status", b"0")]
    assert (second.status, bytes(second.data)) == (200, b"whole")
    assert second.trailers == [(b"grpc-status", b"2"), (b"grpc-message", b"late")]


async def test_trailers_end_a_chunked_http11_response() -> None:
    async with serving(mount=("/", validator(app))) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(b"GET /streamed HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        raw = await client.read_all()
        await client.aclose()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"\r\n0\r\ngrpc-status: 0\r\n\r\n")


async def test_a_framing_field_as_trailer_is_an_app_error(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(mount=("/", validator(app))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        result = await peer.response(await peer.request(b"GET", b"/bad"))
        await peer.aclose()
    # validator() hides the list, so the body was already streaming: the stream is reset
    assert result.reset == ErrorCodes.INTERNAL_ERROR
    assert any("invalid trailer name 'content-length'" in str(r.exc_info[1])
               for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info)
