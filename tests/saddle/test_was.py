"""`from skitai import was` in any app; the utility services; restart and shutdown."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import anyio
import flask
import httpx
import pytest

from skitai import context, was
from skitai.saddle import Saddle
from skitai.testing import serve_app
from tests.saddle.conftest import client_for
from tests.support.processes import free_port, stop, wait_until_serving
from tests.support.servers import serving


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> Any:
        was.log("called index", "info")
        try:
            raise ValueError("handled")
        except ValueError:
            tag = was.traceback()
        return flask.jsonify(txnid=was.txnid(), tag=tag, same_env=was.env is flask.request.environ,
                             thread=threading.current_thread().name)

    @app.route("/status")
    def status() -> Any:
        return flask.jsonify(was.status(fancy=False))

    @app.route("/service")
    def service() -> Any:
        return was.echo("hi")

    return app


def _raw(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])

    def body() -> Iterable[bytes]:  # `was` is there while the body is produced, too
        yield json.dumps({"json": was.fromjson(was.tojson({"a": [1, 2]})),
                          "xml": was.fromxml(was.toxml({"b": 1})),
                          "call": list(was.fromxml(xmlrpc.client.dumps((1,), "m")))}).encode()

    return body()


raw_app = validator(_raw)


async def test_was_in_flask_views(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "skitai.app"):
        async with client_for(("/flask", flask_app())) as client:
            info = (await client.get("/flask/")).json()
    gtxnid = info["txnid"].split("/")[0]
    assert info["same_env"] is True and info["txnid"].endswith("/1000")
    assert info["tag"] == info["txnid"]
    messages = [r.getMessage() for r in caplog.records]
    assert f"[info:{info['txnid']}] called index" in messages
    assert f"[expt:{info['txnid']}] ValueError: handled" in messages
    assert gtxnid.startswith("GTID-")


OVERLAPPING = 4  # requests held together at once; the server gets as many worker threads


class Gate:
    """Lets waiters through once `count` of them are waiting: their requests overlap for sure.

    One for worker threads (a barrier) and one for the event loop; each wait is bounded.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.barrier = threading.Barrier(count, timeout=10)
        self.waiting = 0
        self.opened = anyio.Event()

    def wait(self) -> None:
        self.barrier.wait()

    async def wait_async(self) -> None:
        self.waiting += 1
        if self.waiting == self.count:
            self.opened.set()
        with anyio.fail_after(10):
            await self.opened.wait()


def gated_saddle(gate: Gate) -> Saddle:
    app = Saddle(__name__)

    @app.before_request
    def before(was):
        assert not hasattr(was.g, "token")
        was.g.token = was.request.args["token"]

    def seen(was, token):
        return {"token": token, "args": was.request.args["token"], "g": was.g.token,
                "query": was.env["QUERY_STRING"], "current": context.was.request.args["token"],
                "current_g": context.was.g.token, "port": was.env.get("REMOTE_PORT")}

    @app.route("/sync")
    def sync_view(was, token):
        gate.wait()  # every request is in a worker thread at once
        return seen(was, token)

    @app.route("/async")
    async def async_view(was, token):
        await gate.wait_async()  # every request is a task on the loop at once
        return seen(was, token)

    return app


async def overlapping_gets(client: httpx.AsyncClient, path: str) -> dict[str, httpx.Response]:
    responses: dict[str, httpx.Response] = {}

    async def get(token: str) -> None:
        responses[token] = await client.get(path, params={"token": token})

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i in range(OVERLAPPING):
                tg.start_soon(get, f"t{i}")
    return responses


@pytest.mark.parametrize("path", ["/sync", "/async"])
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_was_is_per_request_under_concurrency(path: str, http2: bool) -> None:
    """Overlapping requests each see their own `was.request`, `was.g` and `from skitai import was`:
    over HTTP/1.1 on as many connections, over HTTP/2 as concurrent streams of one."""
    gate = Gate(OVERLAPPING)
    async with client_for(("/", gated_saddle(gate)), http2=http2, threads=OVERLAPPING) as client:
        responses = await overlapping_gets(client, path)
    seen = {token: response.json() for token, response in responses.items()}
    for token, answer in seen.items():
        assert answer.pop("port") is not None
        assert answer == {"token": token, "args": token, "g": token, "query": f"token={token}",
                          "current": token, "current_g": token}
    ports = {response.json()["port"] for response in responses.values()}
    versions = {response.http_version for response in responses.values()}
    if http2:
        assert versions == {"HTTP/2"} and len(ports) == 1
    else:
        assert versions == {"HTTP/1.1"} and len(ports) == OVERLAPPING


async def test_was_is_per_request_in_concurrent_flask_views() -> None:
    """Flask views in overlapping worker threads each get the `was` of their own request."""
    gate = Gate(OVERLAPPING)
    app = flask.Flask(__name__)

    @app.route("/gated")
    def gated() -> Any:
        token = flask.request.args["token"]
        gate.wait()
        return flask.jsonify(token=token, query=was.env["QUERY_STRING"], txnid=was.txnid(),
                             same_env=was.env is flask.request.environ)

    async with client_for(("/", app), threads=OVERLAPPING) as client:
        responses = await overlapping_gets(client, "/gated")
    answers = {token: response.json() for token, response in responses.items()}
    for token, answer in answers.items():
        assert (answer["token"], answer["query"], answer["same_env"]) == (token, f"token={token}", True)
    assert len({answer["txnid"] for answer in answers.values()}) == OVERLAPPING


async def test_was_in_a_raw_wsgi_app_and_its_body() -> None:
    async with client_for(("/", raw_app)) as client:
        assert (await client.get("/")).json() == {"json": {"a": [1, 2]}, "xml": {"b": 1},
                                                  "call": [[1], "m"]}


def test_was_outside_a_request_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="only available while Skitai serves a request"):
        was.log("nowhere")
    assert repr(was) == "<was: no request>"


async def test_status_page_html_and_json() -> None:
    app = Saddle(__name__)

    @app.route("/status")
    def status(was, fancy="1"):
        return was.status(fancy=fancy == "1")

    @app.route("/workers")
    def workers(was):
        return was.status("work", fancy=False)

    async with client_for(("/", app), threads=2) as client:
        html = (await client.get("/status")).text
        assert html.startswith("<!DOCTYPE html>") and "<h2>workers</h2>" in html
        data = (await client.get("/status?fancy=0")).json()
        assert data["server"]["threads"] == 2 and data["workers"]["threads"] == 2
        assert data["mounts"] == {"/": "Saddle"}
        assert data["connections"]["open"] >= 1
        assert (await client.get("/workers")).json() == {"workers": {"threads": 2, "busy": 1, "queued": 0}}


async def test_registered_services_reach_every_app() -> None:
    context.register_service("echo", lambda was: lambda text: f"{text} from {type(was).__name__}")
    app = Saddle(__name__)

    @app.route("/")
    def index(was):
        return was.echo("hi")

    try:
        async with client_for([("/", app), ("/flask", flask_app())]) as client:
            assert (await client.get("/")).text == "hi from RequestWas"
            assert (await client.get("/flask/service")).text == "hi from Was"
    finally:
        context.unregister_service("echo")
    with pytest.raises(ValueError):
        context.register_service("_private", lambda was: None)


def lifecycle_app(events: list[str], restarted: threading.Event | None = None) -> Saddle:
    app = Saddle(__name__)

    @app.startup
    def startup(wasc):
        events.append("startup")
        if restarted is not None and events.count("startup") == 2:
            restarted.set()

    @app.shutdown
    def shutdown(wasc):
        events.append("shutdown")

    @app.route("/restart")
    def restart(was):
        was.restart()
        return "restarting"

    @app.route("/shutdown")
    def shutdown_server(was):
        was.shutdown()
        return "shutting down"

    @app.route("/")
    def index(was):
        return "up"

    return app


async def wait_refused(url: str) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                async with httpx.AsyncClient() as probe:
                    await probe.get(url)
            except httpx.TransportError:
                return
            await anyio.sleep(0.05)


async def test_shutdown_stops_the_server_after_answering() -> None:
    events: list[str] = []
    async with serving(mount=("/", lifecycle_app(events))) as served:
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/shutdown")).text == "shutting down"
        await wait_refused(served.url)
    assert events == ["startup", "shutdown"]


async def test_restart_serves_again_on_the_same_port() -> None:
    events: list[str] = []
    restarted = threading.Event()
    async with serve_app(lifecycle_app(events, restarted)) as client:
        assert (await client.get("/restart")).text == "restarting"
        assert await anyio.to_thread.run_sync(restarted.wait, 10)
        assert (await client.get("/")).text == "up"
    assert events == ["startup", "shutdown", "startup", "shutdown"]


def test_run_restart_executes_the_program_again(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "restarting.py"
    script.write_text(RESTARTING.replace("PORT", str(port)))
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        pid, born = httpx.get(url).text.split()
        assert httpx.get(f"{url}/restart").text == "restarting"
        answers = []
        for _ in range(200):  # bounded: about 20 s
            try:
                answers.append(httpx.get(url, timeout=1).text.split())
            except httpx.TransportError:
                pass
            if answers and answers[-1][1] != born:
                break
            time.sleep(0.1)
        assert answers and answers[-1][1] != born, "the program was not executed again"
        assert answers[-1][0] == pid == str(process.pid)  # the same process
    finally:
        stop(process)
        assert process.stderr is not None
        process.stderr.close()


RESTARTING = """
import os, uuid
from skitai.saddle import Saddle

app = Saddle(__name__)
BORN = uuid.uuid4().hex

@app.route("/")
def index(was):
    return f"{os.getpid()} {BORN}"

@app.route("/restart")
def restart(was):
    was.restart()
    return "restarting"

if __name__ == "__main__":
    import skitai
    skitai.run(mount=("/", app), port=PORT, grace=5)
"""
