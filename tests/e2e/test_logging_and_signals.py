"""What run() does for a person: log files, a second signal that forces the exit."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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


SLOW_SERVER = textwrap.dedent(
    """
    import sys, time, skitai
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
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
    process = subprocess.Popen([sys.executable, str(script), str(port), backend],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    slow: subprocess.Popen[bytes] | None = None
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process)
        slow = subprocess.Popen([sys.executable, "-c",
                                 f"import httpx; httpx.get('http://127.0.0.1:{port}/slow', timeout=60)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # the slow request is in the app
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
