"""What run() does for a person: log files, a graceful stop on a signal, a second one that forces it."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from skitai.log import configure
from tests.support.processes import free_port, stop, wait_until_serving


def test_log_dir_splits_server_app_and_access_logs(tmp_path: Path) -> None:
    stop = configure(str(tmp_path), "info")
    try:
        logging.getLogger("skitai.server").info("listening")
        logging.getLogger("skitai.app").error("app trouble")
        logging.getLogger("skitai.access").info('127.0.0.1:1 host "GET / HTTP/1.1" 200')
    finally:
        stop()
    server, app, access = (
        (tmp_path / name).read_text() for name in ("server.log", "app.log", "request.log")
    )
    assert "[info] listening" in server and "app trouble" not in server
    assert "[error] app trouble" in app
    assert '"GET / HTTP/1.1" 200' in access and "listening" not in access
    assert not logging.getLogger("skitai").handlers  # stop() leaves nothing behind


def wait_for(condition: Callable[[], bool], what: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        time.sleep(0.02)


SLOW_SERVER = textwrap.dedent(
    """
    import sys, time, skitai
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            open(sys.argv[3], "w").close()
            time.sleep(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    skitai.run(mount=("/", app), port=int(sys.argv[1]), backend=sys.argv[2], grace=30)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_second_signal_forces_the_exit(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "server.py"
    script.write_text(SLOW_SERVER)
    port = free_port()
    started = tmp_path / "started"
    process = subprocess.Popen([sys.executable, str(script), str(port), backend, str(started)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    slow: subprocess.Popen[bytes] | None = None
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process)
        slow = subprocess.Popen([sys.executable, "-c",
                                 f"import httpx; httpx.get('http://127.0.0.1:{port}/slow', timeout=60)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(started.exists, "the slow request reaching the app")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None, "the first signal must wait for the request in flight"
        with httpx.Client() as client:  # no longer accepting
            try:
                client.get(f"http://127.0.0.1:{port}/", timeout=1)
                accepted = True
            except httpx.TransportError:
                accepted = False
        assert not accepted
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
        assert process.returncode == 1
        assert b"received again: stopping now" in err
    finally:
        stop(process, slow)


GRACE = 20
IN_FLIGHT_SERVER = textwrap.dedent(
    """
    import os, sys, time, skitai
    port, backend, grace, started, release, log_dir = sys.argv[1:]
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            open(started, "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.02)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]
    skitai.run(mount=("/", app), port=int(port), backend=backend, grace=float(grace), log_dir=log_dir)
    """
)


class InFlight:
    """A run() server in a child process, and a request to /slow it holds until released."""

    def __init__(self, tmp_path: Path, backend: str, grace: float) -> None:
        script = tmp_path / "server.py"
        script.write_text(IN_FLIGHT_SERVER)
        self.started, self.release = tmp_path / "started", tmp_path / "release"
        log_dir = tmp_path / "logs"
        log_dir.mkdir()
        self.server_log = log_dir / "server.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(port), backend, str(grace), str(self.started),
             str(self.release), str(log_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.result: dict[str, Any] = {}
        self.client = threading.Thread(target=self._slow_request, daemon=True)

    def _slow_request(self) -> None:
        try:
            self.result["response"] = httpx.get(f"{self.url}/slow", timeout=90)
        except httpx.HTTPError as exc:
            self.result["error"] = exc

    def start_slow_request(self) -> None:
        wait_until_serving(f"{self.url}/", self.process)
        self.client.start()
        wait_for(self.started.exists, "the slow request reaching the app")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)
        wait_for(lambda: self.server_log.exists() and "received: stopping" in self.server_log.read_text(),
                 "the signal being taken")

    def exit_status(self, within: float) -> tuple[int, str]:
        """The exit status and stderr, the process having exited within `within` seconds."""
        _, err = self.process.communicate(timeout=within)
        self.client.join(timeout=10)
        return self.process.returncode, err.decode()

    def stop(self) -> None:
        stop(self.process)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_request_in_flight_finishes_before_the_exit(tmp_path: Path, backend: str,
                                                      signum: signal.Signals) -> None:
    """The first SIGTERM or SIGINT stops run() gracefully: the request in
    progress gets its 200 (with Connection: close), then the process exits 0
    within the grace period."""
    server = InFlight(tmp_path, backend, grace=GRACE)
    try:
        server.start_slow_request()
        server.signal(signum)
        assert server.process.poll() is None, "the process must wait for the request in flight"
        server.release.touch()
        status, err = server.exit_status(within=GRACE)
    finally:
        server.stop()
    assert status == 0, err
    assert "error" not in server.result, server.result.get("error")
    response = server.result["response"]
    assert response.status_code == 200 and response.text == "done"
    assert response.headers["connection"] == "close"
    log = server.server_log.read_text()
    assert f"{signum.name} received: stopping" in log and "received again" not in log
    assert "app threads still running" not in log


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_app_still_running_at_the_grace_deadline_does_not_hold_the_exit(
    tmp_path: Path, backend: str
) -> None:
    """docs/how-to/deploying.md: an app call still running at the deadline
    loses its connection, and the process exits 0 without waiting for it
    (the app here would run for 60 s)."""
    server = InFlight(tmp_path, backend, grace=1)
    try:
        server.start_slow_request()
        server.signal(signal.SIGTERM)
        status, err = server.exit_status(within=20)
    finally:
        server.stop()
    assert status == 0, err
    assert "response" not in server.result  # the connection was closed without an answer
    if backend == "asyncio":
        assert "exiting with 1 app threads still running past the grace deadline" in \
            server.server_log.read_text()
