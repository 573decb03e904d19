"""`async def` handlers run on the event loop, with the same arguments, hooks and return types."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from skitai.saddle import HTTPError, Saddle
from tests.saddle.conftest import client_for
from tests.support.servers import serving

LOOP_THREAD: list[int] = []


@pytest.fixture(autouse=True)
def loop_thread() -> None:
    """The test's event loop runs in the test's thread."""
    LOOP_THREAD[:] = [threading.get_ident()]


def where() -> str:
    return "loop" if threading.get_ident() == LOOP_THREAD[0] else "worker"


def make_app(calls: list[str], records: dict[str, Any]) -> Saddle:
    app = Saddle(__name__)

    @app.before_request
    async def before(was):
        calls.append(f"before {where()}")
        if was.request.args.get("stop"):
            return "stopped"
        return None

    @app.teardown_request
    def teardown(was):  # a sync hook: sent to a worker thread on async routes
        calls.append(f"teardown {where()}")

    @app.route("/hello")
    async def hello(was, name="World", **form):
        await anyio.lowlevel.checkpoint()
        calls.append(f"hello {where()} via {'wsgi' if 'wsgi.input' in was.env else 'loop'}")
        return f"Hello, {name}"

    @app.route("/sync")
    def sync_route(was):
        calls.append(f"sync {where()}")
        return "sync"

    @app.route("/json", methods=["POST"], content_types=["application/json"])
    async def json_route(was, a, **rest):
        return {"a": a, "rest": rest, "body": was.request.get_body().decode()}

    @app.route("/kinds/<kind>")
    async def kinds(was, kind):
        if kind == "bytes":
            return b"bytes"
        if kind == "generator":
            return (f"{i}," for i in range(3))
        if kind == "file":
            return io.BytesIO(b"file body")
        if kind == "response":
            return was.response("404 Not Found")
        if kind == "error":
            raise HTTPError(409, "conflict")
        if kind == "crash":
            raise RuntimeError("async crash")
        if kind == "cookie":
            was.cookie.set("a", "1")
            return "cookie"
        return None

    @app.route("/stream")
    async def stream(was):
        async def pieces() -> AsyncIterator[str]:
            try:
                for i in range(3):
                    await anyio.lowlevel.checkpoint()
                    yield f"piece{i} "
            finally:
                records["stream_closed"] = True

        return pieces()

    @app.route("/endless")
    async def endless(was):
        closed = records["endless_closed"] = anyio.Event()

        async def pieces() -> AsyncIterator[bytes]:
            try:
                for _ in range(100_000):  # bounded
                    yield b"x" * 65536
            finally:
                closed.set()

        return pieces()

    return app


async def test_async_handler_runs_on_the_loop() -> None:
    calls: list[str] = []
    async with client_for(("/", make_app(calls, {}))) as client:
        assert (await client.get("/hello?name=Hans")).text == "Hello, Hans"
        assert (await client.get("/sync")).text == "sync"
    assert calls == ["before loop", "hello loop via loop", "teardown worker",
                     "before loop", "sync worker", "teardown worker"]


async def test_async_arguments_and_restrictions() -> None:
    app = make_app([], {})
    app.config.max_post_body_size = 100
    async with client_for(("/", app)) as client:
        response = await client.post("/json", content=b'{"a": 1, "b": 2}',
                                     headers={"content-type": "application/json"})
        assert response.json() == {"a": 1, "rest": {"b": 2}, "body": '{"a": 1, "b": 2}'}
        assert (await client.post("/json", data={"a": "1"})).status_code == 415
        assert (await client.post("/json", json={"b": 1})).status_code == 400
        assert (await client.post("/json", json={"a": "x" * 200})).status_code == 413
        assert (await client.get("/json")).status_code == 405
        assert (await client.get("/hello?stop=1")).text == "stopped"


async def test_async_return_types(caplog: pytest.LogCaptureFixture) -> None:
    records: dict[str, Any] = {}
    async with client_for(("/", make_app([], records))) as client:
        assert (await client.get("/kinds/bytes")).text == "bytes"
        assert (await client.get("/kinds/generator")).text == "0,1,2,"
        assert (await client.get("/kinds/file")).text == "file body"
        assert (await client.get("/kinds/none")).text == ""
        response = await client.get("/kinds/response")
        assert response.status_code == 404 and "Not Found" in response.text
        response = await client.get("/kinds/error")
        assert response.status_code == 409 and "conflict" in response.text
        with caplog.at_level(logging.ERROR, "skitai.app"):
            response = await client.get("/kinds/crash")
        assert response.status_code == 500 and "async crash" not in response.text
        assert any(r.exc_info and "async crash" in str(r.exc_info[1]) for r in caplog.records)
        response = await client.get("/kinds/cookie")
        assert response.headers["set-cookie"] == "a=1; Path=/; SameSite=Lax"
        response = await client.get("/stream")
        assert response.text == "piece0 piece1 piece2 " and "content-length" not in response.headers
        assert records["stream_closed"]


async def test_async_iterator_closed_when_the_client_drops() -> None:
    records: dict[str, Any] = {}
    async with serving(mount=("/", make_app([], records))) as served:
        async with await anyio.connect_tcp(served.host, served.port) as stream:
            await stream.send(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200 OK")
        with anyio.fail_after(10):
            await records["endless_closed"].wait()


async def test_async_over_http2() -> None:
    calls: list[str] = []
    async with client_for(("/", make_app(calls, {})), http2=True) as client:
        response = await client.get("/hello?name=h2")
        assert response.http_version == "HTTP/2" and response.text == "Hello, h2"
    assert "hello loop via loop" in calls


async def test_async_hooks_on_a_sync_route() -> None:
    app = Saddle(__name__)
    calls: list[str] = []

    @app.finish_request
    async def finish(was):
        calls.append(f"finish {where()}")

    @app.route("/")
    def index(was):
        calls.append(f"index {where()}")
        return "index"

    async with client_for(("/", app)) as client:
        assert (await client.get("/")).text == "index"
    assert calls == ["index worker", "finish loop"]
