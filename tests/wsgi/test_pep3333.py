"""PEP 3333 through a real server: environ, input, output, start_response, close()."""

from __future__ import annotations

import gc
import gzip
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import anyio
import httpx
import pytest

import skitai
from skitai.wsgi import WsgiCall, WsgiInput
from tests.support import apps
from tests.support.rawhttp import RawClient
from tests.support.servers import serving

StartResponse = Callable[..., Any]


async def get(url: str, path: str = "/", **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.get(path, **kwargs)


async def test_environ_per_mount() -> None:
    async with serving(mount=[("/", apps.show_environ), ("/sub", apps.show_environ)]) as srv:
        root = (await get(srv.url, "/a%20b?x=1", headers={"X-Custom": "v"})).json()
        sub = (await get(srv.url, "/sub/deeper/")).json()
        sub_bare = (await get(srv.url, "/sub")).json()
        not_sub = (await get(srv.url, "/subway")).json()
    assert root["SCRIPT_NAME"] == "" and root["PATH_INFO"] == "/a b"
    assert root["QUERY_STRING"] == "x=1"
    assert root["REQUEST_URI"] == "/a%20b?x=1"
    assert root["SERVER_PORT"] == str(srv.port)
    assert root["REMOTE_ADDR"] == "127.0.0.1" and root["REMOTE_PORT"].isdigit()
    assert root["wsgi.url_scheme"] == "http"
    assert root["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert root["HTTP_X_CUSTOM"] == "v"
    assert (sub["SCRIPT_NAME"], sub["PATH_INFO"]) == ("/sub", "/deeper/")
    assert (sub_bare["SCRIPT_NAME"], sub_bare["PATH_INFO"]) == ("/sub", "")
    assert (not_sub["SCRIPT_NAME"], not_sub["PATH_INFO"]) == ("", "/subway")


async def test_a_finished_request_leaves_no_reference_cycle() -> None:
    """The call, its environ and wsgi.input go by reference counting.

    They once formed a cycle per request (the input referred back to its call),
    and the cyclic garbage collector ran every few hundred requests to free them.
    """

    def partial_reader(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        environ["wsgi.input"].read(3)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    async with serving(mount=[("/", apps.hello), ("/echo", apps.echo), ("/part", partial_reader)]) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            await client.get("/")
            gc.collect()
            gc.disable()
            try:
                for _ in range(5):
                    assert (await client.get("/")).status_code == 200
                    assert (await client.post("/echo", content=b"x" * 100_000)).status_code == 200
                    assert (await client.post("/part", content=b"y" * 200_000)).status_code == 200
            finally:
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, (WsgiCall, WsgiInput))]
                gc.garbage.clear()
                gc.set_debug(0)
                gc.enable()
    assert cyclic == []


async def test_environ_is_not_a_copy_of_os_environ_and_drops_underscored_headers() -> None:
    os.environ["SKITAI_TEST_SECRET"] = "1"
    try:
        async with serving(mount=("/", apps.show_environ)) as srv:
            async with httpx.AsyncClient(base_url=srv.url) as client:
                env = (await client.get("/", headers=[("X-Forwarded-For", "1.1.1.1"),
                                                       ("X_Forwarded_For", "6.6.6.6"),
                                                       ("Cookie", "a=1"), ("Cookie", "b=2")])).json()
    finally:
        del os.environ["SKITAI_TEST_SECRET"]
    assert "SKITAI_TEST_SECRET" not in env and "PATH" not in env
    assert env["HTTP_X_FORWARDED_FOR"] == "1.1.1.1"
    assert env["HTTP_COOKIE"] == "a=1; b=2"


async def test_large_upload_is_streamed_not_buffered() -> None:
    seen: dict[str, int] = {}

    def first_piece(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        seen["first"] = len(environ["wsgi.input"].read(1024))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"early"]

    async with serving(mount=("/", validator(first_piece))) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        # Announce 50 MB, send 200 KB: the app must answer without the rest.
        await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 200_000)
        head, body = await client.response(b"POST")
        await client.aclose()
    assert head.status_code == 200 and body == b"early"
    assert seen["first"] == 1024


async def test_body_streams_into_the_app_as_it_arrives() -> None:
    total = 8_000_000

    def count(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        size = 0
        while chunk := stream.read(65536):
            size += len(chunk)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]

    async def body() -> Any:
        for _ in range(total // 100_000):
            yield b"y" * 100_000

    async with serving(mount=("/", validator(count))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.post("/", content=body())
    assert response.text == str(total)


async def test_slow_client_blocks_the_app_not_the_loop() -> None:
    produced = 0
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            nonlocal produced
            for _ in range(200):
                produced += 1
                yield b"z" * 1_000_000

        def close(self) -> None:
            closed.set()

    def big(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Body()

    async with serving(mount=[("/", big), ("/hello", apps.hello)]) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await anyio.sleep(0.5)
        stalled_at = produced
        # The loop is free: another client gets its answer meanwhile.
        assert (await get(srv.url, "/hello")).text == "Hello World"
        _, body = await client.response(within=30)
        await client.aclose()
    assert stalled_at < 60, "the app ran far ahead of a client that was not reading"
    assert len(body) == 200_000_000
    assert closed.is_set()


async def test_write_callable_and_iterable_together() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        return [b"returned"]

    async with serving(mount=("/", validator(app))) as srv:
        response = await get(srv.url)
    assert response.text == "written,returned"


async def test_start_response_with_exc_info_replaces_headers_before_body() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("late failure")
        except ValueError:
            import sys

            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    async with serving(mount=("/", validator(app))) as srv:
        response = await get(srv.url)
    assert response.status_code == 503 and response.text == "sorry"
    assert "x-first" not in response.headers


async def test_start_response_with_exc_info_after_the_head_reraises_and_cuts_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PEP 3333: once the head is sent, start_response(..., exc_info) raises that exception.

    The app lets it propagate, as PEP 3333 asks; it is logged, and the
    client gets the head and what was written before it, then a close
    without the end of the chunked body: a response it can tell was cut.
    """
    seen: dict[str, BaseException] = {}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        write(b"first piece")  # the head goes out with it
        try:
            raise ValueError("failure after the head")
        except ValueError as exc:
            seen["raised"] = exc
            try:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                               sys.exc_info())
            except ValueError as again:
                seen["reraised"] = again
                raise
        return [b"never"]

    async with serving(mount=("/", app)) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = await client.read_all(within=10)
        await client.aclose()
    assert seen["reraised"] is seen["raised"]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Transfer-Encoding: chunked" in head
    assert body.startswith(b"b\r\nfirst piece\r\n")
    assert b"never" not in body
    assert not body.endswith(b"0\r\n\r\n")  # no last chunk: the body was cut short
    failures = [r for r in caplog.records if r.name == "skitai.app" and r.exc_info]
    assert failures and failures[0].exc_info[1] is seen["raised"]


async def test_wsgi_errors_lines_go_to_the_app_logger(caplog: pytest.LogCaptureFixture) -> None:
    """docs/reference/wsgi.md: one ERROR record on skitai.app per line; a line
    without its newline waits for it, or for flush()."""
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        errors = environ["wsgi.errors"]
        print("cache miss for", "key-1", file=errors)
        errors.write("two lines\nin one ")
        errors.write("write\n")
        errors.writelines(["from ", "writelines\n"])
        errors.write("no newline yet")
        before_flush = [r.getMessage() for r in caplog.records if r.name == "skitai.app"]
        errors.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [json.dumps(before_flush).encode()]

    with caplog.at_level(logging.ERROR, logger="skitai.app"):
        async with serving(mount=("/", validator(app))) as srv:
            response = await get(srv.url)
    assert response.status_code == 200
    assert "no newline yet" not in response.json()
    records = [r for r in caplog.records if r.name == "skitai.app"]
    assert [r.getMessage() for r in records] == [
        "cache miss for key-1", "two lines", "in one write", "from writelines", "no newline yet",
    ]
    assert {r.levelno for r in records} == {logging.ERROR}


async def test_second_start_response_without_exc_info_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"never"]

    async with serving(mount=("/", app)) as srv:
        response = await get(srv.url)
    assert response.status_code == 500


@pytest.mark.parametrize("debug", [False, True])
async def test_app_exception_is_500_with_traceback_only_in_debug(
    debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raise RuntimeError("boom in the app")

    app.debug = debug  # type: ignore[attr-defined]
    async with serving(mount=("/", app)) as srv:
        response = await get(srv.url)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert ("boom in the app" in response.text) is debug
    errors = [r for r in caplog.records if r.name == "skitai.app" and r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None
    assert "boom in the app" in str(errors[0].exc_info[1])


async def test_str_body_is_500_with_a_clear_log_line(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[str]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["Hello World"]

    async with serving(mount=("/", app)) as srv:
        response = await get(srv.url)
    assert response.status_code == 500
    assert any("must be bytes" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_close_is_called_when_the_client_disconnects() -> None:
    closed = threading.Event()
    started = threading.Event()

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            started.set()
            while True:
                yield b"." * 65536

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Endless:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()

    async with serving(mount=("/", app)) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await client.stream.receive()
        await client.aclose()
        with anyio.fail_after(10):
            while not closed.is_set():  # noqa: ASYNC110 - set by a worker thread
                await anyio.sleep(0.05)
    assert started.is_set()


async def test_close_is_called_after_a_normal_response() -> None:
    closed = threading.Event()

    class Body(list):  # a list subclass takes the generic path
        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"a", b"b"])

    async with serving(mount=("/", validator(app))) as srv:
        assert (await get(srv.url)).text == "ab"
    assert closed.is_set()


async def test_head_gets_headers_and_length_without_body() -> None:
    def listed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello ", b"World"]  # a list: the server knows its length

    async with serving(mount=[("/", listed), ("/declared", apps.echo)]) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.head("/")
            declared = await client.head("/declared")
            get_response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == get_response.headers["content-length"] == "11"
    assert response.content == b""
    assert declared.headers["content-length"] == "0" and declared.content == b""


def _text(size: int, content_type: str = "text/plain", **extra: str) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", content_type),
                                  ("Content-Length", str(size)), *extra.items()])
        return [b"a" * size]

    return validator(app)


async def test_compression_of_wsgi_responses() -> None:
    async with serving(mount=[
        ("/big", _text(10_000)),
        ("/small", _text(100)),
        ("/binary", _text(10_000, "image/png")),
        ("/encoded", _text(10_000, **{"Content-Encoding": "br"})),
    ]) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            gz = {"Accept-Encoding": "gzip"}
            big = await client.get("/big", headers=gz)
            small = await client.get("/small", headers=gz)
            binary = await client.get("/binary", headers=gz)
            refused = await client.get("/big", headers={"Accept-Encoding": "gzip;q=0, identity"})
            encoded = await client.get("/encoded", headers=gz)
    assert big.headers["content-encoding"] == "gzip" and big.text == "a" * 10_000
    assert "content-length" not in big.headers  # streamed: the gzip length is not known up front
    assert "accept-encoding" in big.headers["vary"].lower()
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in binary.headers
    assert "content-encoding" not in refused.headers
    assert encoded.headers["content-encoding"] == "br"


@pytest.mark.parametrize("off", [skitai.Compression(enabled=False), False],
                         ids=["Compression(enabled=False)", "False"])
async def test_compression_can_be_turned_off(off: Any) -> None:
    async with serving(mount=("/", _text(10_000)), compression=off) as srv:
        response = await get(srv.url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == "10000" and response.text == "a" * 10_000


async def test_compression_min_size_is_configurable() -> None:
    mounts = [("/100", _text(100)), ("/99", _text(99))]
    gz = {"Accept-Encoding": "gzip"}
    async with serving(mount=mounts, compression=skitai.Compression(min_size=100)) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            at_min = await client.get("/100", headers=gz)
            below = await client.get("/99", headers=gz)
    assert at_min.headers["content-encoding"] == "gzip" and at_min.text == "a" * 100
    assert "content-encoding" not in below.headers and below.text == "a" * 99
    async with serving(mount=("/", _text(5000)),
                       compression=skitai.Compression(min_size=10_000)) as srv:
        raised = await get(srv.url, headers=gz)
    assert "content-encoding" not in raised.headers  # 5000 bytes is over the default 2048


async def test_streamed_body_is_gzip_chunked() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        for i in range(100):
            yield f"{i},row\n".encode()

    async with serving(mount=("/", validator(app))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            async with client.stream("GET", "/", headers={"Accept-Encoding": "gzip"}) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["transfer-encoding"] == "chunked"
    assert gzip.decompress(raw).decode() == "".join(f"{i},row\n" for i in range(100))


async def test_content_length_mismatches_are_repaired(caplog: pytest.LogCaptureFixture) -> None:
    def short(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "x/y"), ("Content-Length", "10")])
        return [b"abc"]

    async with serving(mount=("/", short)) as srv:
        response = await get(srv.url)
    assert response.text == "abc" and response.headers["content-length"] == "3"
    assert any("Content-Length 10 declared" in r.getMessage() for r in caplog.records)


async def test_environ_via_json_of_a_post() -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.post("/", content=json.dumps({"a": 1}).encode())
    assert response.json() == {"a": 1}


async def test_unread_large_body_closes_the_connection_after_the_answer() -> None:
    """A response to a request whose large body the app ignores says Connection: close,
    and the server reads the rest away before closing, so the client gets the answer."""
    def refuse(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"no"]

    body = b"x" * (2 << 20)
    async with serving(mount=("/", validator(refuse))) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        async with anyio.create_task_group() as tg:
            async def send() -> None:
                try:
                    await client.send(head + body)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

            tg.start_soon(send)
            raw = await client.read_all(within=10)
        await client.aclose()
    assert raw.startswith(b"HTTP/1.1 403 ")
    assert b"\r\nConnection: close\r\n" in raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert raw.endswith(b"\r\n\r\nno")
