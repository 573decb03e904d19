"""serve() inside an anyio program: readiness, graceful stop, grace deadline, bad options."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import httpx
import pytest

import skitai
from skitai.errors import ConfigError
from tests.support import apps
from tests.support.rawhttp import RawClient
from tests.support.servers import open_fds, serving


def slow_app(seconds: float, started: threading.Event | None = None) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if started is not None:
            started.set()
        time.sleep(seconds)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    return app


async def wait_for(event: threading.Event) -> None:
    with anyio.fail_after(10):
        while not event.is_set():  # noqa: ASYNC110 - set by a worker thread
            await anyio.sleep(0.01)


async def test_serve_reports_bound_addresses_and_port_zero_works() -> None:
    async with anyio.create_task_group() as tg:
        addresses = await tg.start(skitai.serve, skitai.Config(mount=("/", apps.hello), port=0))
        host, port = addresses[0]
        assert host == "127.0.0.1" and port > 0
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://{host}:{port}/")).status_code == 200
        tg.cancel_scope.cancel()


async def test_cancel_finishes_in_flight_requests_and_closes_idle_ones_at_once() -> None:
    started = threading.Event()
    fds = open_fds()
    result: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        serving_scope = anyio.CancelScope()
        config = skitai.Config(mount=[("/", apps.hello), ("/slow", slow_app(0.5, started))],
                               port=0, grace=10)

        async def serve(*, task_status: Any) -> None:
            with serving_scope:
                await skitai.serve(config, task_status=task_status)

        host, port = (await tg.start(serve))[0]
        idle = await RawClient.connect(host, port)
        await idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await idle.response()
        busy = await RawClient.connect(host, port)
        await busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for(started)

        async def read_busy() -> None:
            result["busy"] = await busy.response()

        tg.start_soon(read_busy)
        serving_scope.cancel()
        result["idle"] = await idle.read_all(within=5)  # closed right away, before /slow ends
        result["busy_done_when_idle_closed"] = "busy" in result
    await idle.aclose()
    await busy.aclose()
    assert result["idle"] == b""
    assert not result["busy_done_when_idle_closed"]
    head, body = result["busy"]
    assert head.status_code == 200 and body == b"finished"
    assert (b"connection", b"close") in [(k.lower(), v) for k, v in head.headers.raw_items()]
    assert open_fds() <= fds


async def test_grace_deadline_cancels_what_is_left() -> None:
    started = threading.Event()
    async with anyio.create_task_group() as tg:
        config = skitai.Config(mount=("/", slow_app(3, started)), port=0, grace=0.2)
        host, port = (await tg.start(skitai.serve, config))[0]
        client = await RawClient.connect(host, port)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for(started)
        tg.cancel_scope.cancel()
    # serve() returned after the deadline, without the app's answer.
    assert await client.read_all(within=5) == b""
    await client.aclose()


async def test_one_failing_connection_does_not_affect_others() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        for junk in (b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n" + b"X" * 70000, b"PRI * HTTP/2.0\r\n\r\n"):
            bad = await RawClient.connect(srv.host, srv.port)
            await bad.send(junk)
            await bad.aclose()
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/")).status_code == 200


async def test_serve_installs_no_signal_handlers_and_never_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve() is for programs: the caller's signal handlers stay theirs, and
    the apps run in the caller's process."""
    watched = (signal.SIGTERM, signal.SIGINT)
    before = {signum: signal.getsignal(signum) for signum in watched}
    forks: list[int] = []

    def no_fork() -> int:
        forks.append(os.getpid())
        raise AssertionError("os.fork() called")

    monkeypatch.setattr(os, "fork", no_fork)
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen["pid"] = os.getpid()
        seen["handlers"] = {signum: signal.getsignal(signum) for signum in watched}
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    async with anyio.create_task_group() as tg:
        host, port = (await tg.start(skitai.serve, skitai.Config(mount=("/", app), port=0)))[0]
        serving_handlers = {signum: signal.getsignal(signum) for signum in watched}
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/")
        tg.cancel_scope.cancel()
    assert response.status_code == 200
    assert serving_handlers == before
    assert seen["handlers"] == before
    assert {signum: signal.getsignal(signum) for signum in watched} == before
    assert seen["pid"] == os.getpid()
    assert forks == []


async def test_serve_takes_a_config() -> None:
    with pytest.raises(TypeError, match=r"skitai\.Config"):
        await skitai.serve({"mount": ("/", apps.hello)})  # type: ignore[arg-type]


def test_unknown_option_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'prot'"):
        skitai.Config.from_options({"mount": ("/", apps.hello), "prot": 80})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": 0}, "threads"),
        ({"backend": "curio"}, "backend"),
        ({"port": 70000}, "port"),
        ({"mount": ("flask", apps.hello)}, "mount point"),
        ({"mount": ("/", "no/such/dir")}, "not a directory"),
        ({"mount": ("/", "no_such_module_xyz:app")}, "cannot import"),
        ({"mount": ("/", 42)}, "cannot mount"),
        ({"mount": ("/", ("/no/such/service/app", "app"))}, "no such file: '/no/such/service/app'"),
        ({"keep_alive_timeout": -1}, "keep_alive_timeout"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], message: str) -> None:
    from skitai.mounts import MountTable

    with pytest.raises(ConfigError, match=message):
        config = skitai.Config.from_options(options)
        MountTable.from_config(config.mount)
