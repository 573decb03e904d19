"""was.request, was.response, what handlers may return, error pages."""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import Any

import anyio
import h2.events
import pytest

from skitai.saddle import HTTPError, Saddle
from tests.saddle.conftest import client_for
from tests.support.h2peer import H2Peer
from tests.support.servers import serving


class Closing:
    """Records close() from whatever thread calls it."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()

    async def wait_closed(self) -> None:
        assert await anyio.to_thread.run_sync(self.closed.wait, 10), "close() was not called"


class Pieces(Closing):
    """A file-like object that refuses to be read whole."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.left = count
        self.sizes: list[int] = []

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "read whole"
        self.sizes.append(size)
        if not self.left:
            return b""
        self.left -= 1
        return b"x" * size


class Producer(Closing):
    def __init__(self) -> None:
        super().__init__()
        self.items = ["one ", b"two ", "three"]

    def more(self) -> Any:
        return self.items.pop(0) if self.items else b""


def make_app(records: dict[str, Any]) -> Saddle:
    app = Saddle(__name__)

    @app.route("/request/<name>")
    def request_info(was, name, **form):
        request = was.request
        return {
            "command": request.command, "version": request.version, "uri": request.uri,
            "args": dict(request.args), "split_uri": list(request.split_uri()),
            "header": request.get_header("x-custom"), "header_lower": request.get_header("X-CUSTOM"),
            "missing": request.get_header("x-missing", "default"),
            "headers": [h for h in request.get_headers() if h.startswith("X-Custom")],
            "body": request.get_body().decode(), "scheme": request.get_scheme(),
            "remote_addr": request.get_remote_addr(), "user_agent": request.get_user_agent(),
            "content_type": request.get_content_type(), "main_type": request.get_main_type(),
            "sub_type": request.get_sub_type(), "content_length": request.get_content_length(),
            "attr": request.get_header_with_attr("content-type"),
            "env_agent": was.env.get("HTTP_USER_AGENT"), "gtxid": request.gtxid, "ltxid": request.ltxid,
        }

    @app.route("/three-ways/<int:way>")
    def three_ways(was, way):
        if way == 1:
            return was.response("200 OK", "body", [("Cache-Control", "max-age=60")])
        if way == 2:
            return was.response(body="body", headers=[("Cache-Control", "max-age=60")])
        was.response.set_header("Cache-Control", "max-age=60")
        return "body"

    @app.route("/headers")
    def headers(was):
        response = was.response
        response.set_status(201)
        response.set_header("X-A", "1")
        response.set_header("X-A", "2")  # replaces
        response.append_header("X-B", "1")
        response.append_header("X-B", "2")
        response["X-C"] = "c"
        response.set_headers([("X-D", "1"), ("X-D", "2")])
        response.set_header("X-Gone", "x")
        response.del_header("x-gone")
        assert response.get_header("x-a") == "2" and response["X-C"] == "c" and "X-C" in response
        assert response.get_headers() == response.get_hedaers()
        return f"{response.get_status()} {len(response.get_headers())}"

    @app.route("/bad-header")
    def bad_header(was):
        was.response.set_header("X-Evil", "a\r\nSet-Cookie: x=1")

    @app.route("/not-found")
    def not_found(was):
        return was.response("404 Not Found")

    @app.route("/not-found-body")
    def not_found_body(was):
        return was.response("404 Not Found", "<p>gone</p>")

    @app.route("/raise_exception")
    def raise_exception(was):
        try:
            raise ValueError("Test Error")
        except ValueError:
            return was.response("500 Internal Server Error", exc_info=sys.exc_info())

    @app.route("/crash")
    def crash(was):
        raise RuntimeError("crashed on purpose")

    @app.route("/teapot")
    def teapot(was):
        raise HTTPError(418, "short and stout")

    @app.route("/kinds/<kind>")
    def kinds(was, kind):
        values: dict[str, Any] = {
            "str": "text ü", "bytes": b"raw", "none": None, "int": 42, "float": 1.5,
            "dict": {"a": [1, "ü"]}, "bytearray": bytearray(b"ba"), "list": ["a", b"b", "c"],
            "tuple": ("x", "y"), "mixed": ["a", Producer(), io.BytesIO(b" file"), iter([" gen"])],
        }
        return values[kind]

    @app.route("/file")
    def file(was):
        records["file"] = Pieces(5)
        return was.response("200 OK", records["file"], headers=[("Content-Type", "video/mp4")])

    @app.route("/generator")
    def generator(was):
        records["generator"] = Closing()

        def generate():
            try:
                for row in (["a", "b"], ["c", "d"]):
                    yield ",".join(row) + "\n"
            finally:
                records["generator"].close()

        return was.response("200 OK", generate(), headers=[("Content-Type", "text/csv")])

    @app.route("/producer")
    def producer(was):
        records["producer"] = Producer()
        return records["producer"]

    @app.route("/endless")
    def endless(was):
        records["endless"] = Closing()

        def generate():
            try:
                for _ in range(100_000):  # bounded: ~6 GB, far more than any buffer
                    yield b"x" * 65536
            finally:
                records["endless"].close()

        return generate()

    @app.route("/unsendable")
    def unsendable(was):
        return object()

    @app.route("/promise")
    def promise(was):
        was.response.hint_promise("/images/A.png")
        was.response.hint_promise("/images/B.png")
        return was.response(
            "200 OK", 'Promise Sent<br><br><img src="/images/A.png"><img src="/images/B.png">')

    @app.route("/images/<name>")
    def image(was, name):
        return was.response("200 OK", name.encode(), [("Content-Type", "image/png")])

    return app


async def test_request_attributes() -> None:
    async with client_for(("/app", make_app({}))) as client:
        response = await client.post(
            "/app/request/x?q=1#frag", content=b"a=b",
            headers={"X-Custom": "yes", "User-Agent": "tester",
                     "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        info = response.json()
    assert info["command"] == "post" and info["version"] == "1.1"
    assert info["uri"] == "/app/request/x?q=1"
    assert info["args"] == {"q": "1", "a": "b", "name": "x"}
    assert info["split_uri"] == ["/app/request/x", None, "q=1", None]
    assert info["header"] == info["header_lower"] == "yes" and info["missing"] == "default"
    assert info["headers"] == ["X-Custom: yes"]
    assert info["body"] == "a=b" and info["scheme"] == "http" and info["remote_addr"] == "127.0.0.1"
    assert info["user_agent"] == info["env_agent"] == "tester"
    assert info["content_type"] == "application/x-www-form-urlencoded"
    assert info["main_type"] == "application" and info["sub_type"] == "x-www-form-urlencoded"
    assert info["content_length"] == 3
    assert info["attr"] == ["application/x-www-form-urlencoded", {"charset": "utf-8"}]
    assert info["gtxid"].startswith("GTID-") and info["ltxid"] == 1000


async def test_http2_request_version() -> None:
    async with client_for(("/", make_app({})), http2=True) as client:
        assert (await client.get("/request/x")).json()["version"] == "2.0"


async def test_three_ways_to_set_headers_are_the_same() -> None:
    async with client_for(("/", make_app({}))) as client:
        for way in (1, 2, 3):
            response = await client.get(f"/three-ways/{way}")
            assert response.status_code == 200 and response.text == "body"
            assert response.headers["cache-control"] == "max-age=60"
            assert response.headers["content-type"] == "text/html; charset=utf-8"


async def test_response_headers() -> None:
    async with client_for(("/", make_app({}))) as client:
        response = await client.get("/headers")
        assert response.status_code == 201 and response.text == "201 Created 6"
        assert response.headers.get_list("x-a") == ["2"]
        assert response.headers.get_list("x-b") == ["1", "2"]
        assert response.headers.get_list("x-d") == ["1", "2"]
        assert "x-gone" not in response.headers
        assert (await client.get("/bad-header")).status_code == 500


async def test_error_pages(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app({})
    async with client_for(("/", app)) as client:
        response = await client.get("/not-found")
        assert response.status_code == 404 and "<h1>404 Not Found</h1>" in response.text
        assert (await client.get("/not-found-body")).text == "<p>gone</p>"
        # an explicit exc_info shows its traceback even without debug
        response = await client.get("/raise_exception")
        assert response.status_code == 500 and "ValueError: Test Error" in response.text
        with caplog.at_level(logging.ERROR, "skitai.app"):
            response = await client.get("/crash")
        assert response.status_code == 500  # never 508
        assert "crashed on purpose" not in response.text  # no traceback without debug
        assert any(r.exc_info and "crashed on purpose" in str(r.exc_info[1]) for r in caplog.records)
        response = await client.get("/teapot")
        assert response.status_code == 418 and "short and stout" in response.text
        app.debug = True
        response = await client.get("/crash")
        assert response.status_code == 500 and "RuntimeError: crashed on purpose" in response.text


async def test_return_types() -> None:
    async with client_for(("/", make_app({}))) as client:
        expected = {
            "str": ("text ü", "text/html; charset=utf-8"), "bytes": ("raw", None), "none": ("", None),
            "int": ("42", None), "float": ("1.5", None), "bytearray": ("ba", None),
            "dict": ('{"a": [1, "ü"]}', "application/json"), "list": ("abc", None),
            "tuple": ("xy", None), "mixed": ("aone two three file gen", None),
        }
        for kind, (text, content_type) in expected.items():
            response = await client.get(f"/kinds/{kind}")
            assert response.status_code == 200, kind
            assert response.text == text, kind
            assert response.headers["content-type"] == (content_type or "text/html; charset=utf-8")
        assert (await client.get("/unsendable")).status_code == 500


async def test_streamed_bodies_are_read_in_pieces_and_closed() -> None:
    records: dict[str, Any] = {}
    async with client_for(("/", make_app(records))) as client:
        response = await client.get("/file")
        assert response.headers["content-type"] == "video/mp4"
        assert "content-length" not in response.headers  # streamed, not gathered
        assert len(response.content) == 5 * 65536
        assert records["file"].sizes == [65536] * 6
        await records["file"].wait_closed()
        response = await client.get("/generator")
        assert response.text == "a,b\nc,d\n" and response.headers["content-type"] == "text/csv"
        await records["generator"].wait_closed()
        assert (await client.get("/producer")).text == "one two three"
        await records["producer"].wait_closed()


async def test_close_is_called_when_the_client_drops() -> None:
    records: dict[str, Any] = {}
    async with serving(mount=("/", make_app(records))) as served:
        async with await anyio.connect_tcp(served.host, served.port) as stream:
            await stream.send(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200 OK")
        await records["endless"].wait_closed()


async def test_hint_promise_pushes_over_http2() -> None:
    async with serving(mount=("/", make_app({}))) as served:
        peer = await H2Peer.connect(served.host, served.port)
        try:
            await peer.start()
            sid = await peer.request(b"GET", b"/promise")
            pushed: list[bytes] = []
            with anyio.fail_after(10):
                while not peer.streams[sid].done:
                    events = await peer.receive()
                    assert events or not peer.eof
                    pushed += [dict(e.headers)[b":path"] for e in events
                               if isinstance(e, h2.events.PushedStreamReceived)]
        finally:
            await peer.aclose()
    assert pushed == [b"/images/A.png", b"/images/B.png"]
    assert peer.streams[sid].data.startswith(b"Promise Sent")


def test_default_content_type_is_html() -> None:
    # No server needed to see the WSGI answer.
    app = make_app({})
    seen: list[Any] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/kinds/str", "SCRIPT_NAME": "", "QUERY_STRING": "",
               "wsgi.input": io.BytesIO(), "SERVER_PROTOCOL": "HTTP/1.1"}
    body = app(environ, lambda status, headers: seen.append((status, headers)))
    assert seen == [("200 OK", [("Content-Type", "text/html; charset=utf-8")])]
    assert b"".join(body) == "text ü".encode()
