"""The accept loop outlives running out of file descriptors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port, wait_until_serving

SERVER = textwrap.dedent(
    """
    import sys, skitai
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"alive"]
    skitai.run(mount=("/", app), port=int(sys.argv[1]), backend=sys.argv[2], http_parser=sys.argv[3])
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_accept_loop_survives_emfile(tmp_path: Path, backend: str, http_parser: str) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = f"ulimit -n 48; exec {sys.executable} {script} {port} {backend} {http_parser}"
    process = subprocess.Popen(["bash", "-c", command], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    clients: list[socket.socket] = []
    try:
        wait_until_serving(url, process)
        for _ in range(80):  # more than the server can hold
            clients.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)
        for client in clients:
            client.close()
        clients.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert httpx.get(url, timeout=2).text == "alive"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not recover"
                time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0
        assert b"EMFILE" in stderr
    finally:
        for client in clients:
            client.close()
        if process.poll() is None:
            process.kill()
            process.wait()
