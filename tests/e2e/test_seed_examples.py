"""The seed's first examples, run as the seed runs them: `python wsgiapp.py`, port 5000."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

SEED_PORT = 5000  # the seed's examples use the default port

BASIC_USAGE = textwrap.dedent(
    """
    #WSGI App

    def app (env, start_response):
      start_response ("200 OK", [("Content-Type", "text/plain")])
      return [b'Hello World']

    app.use_reloader = True
    app.debug = True

    if __name__ == "__main__":

      import skitai

      skitai.run (
        mount = ('/', app)
      )
    """
)

MULTI_MOUNT = textwrap.dedent(
    """
    #WSGI App

    def app (env, start_response):
      start_response ("200 OK", [("Content-Type", "text/plain")])
      return [b'Hello World']

    app.use_reloader = True
    app.debug = True


    # Flask App*
    from flask import Flask
    app2 = Flask(__name__)

    app2.use_reloader = True
    app2.debug = True

    @app2.route("/")
    def index ():
      return "Hello World"

    if __name__ == "__main__":

      import skitai

      skitai.run (
        mount = [
          ('/', (__file__, 'app')), # mount WSGI app
          ('/flask', (__file__, 'app2')), # mount Flask app
          ('/', '{static}') # mount static directory
        ]
      )
    """
)


class Script:
    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(path)], cwd=path.parent,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.stop()[1])
            try:
                httpx.get(f"http://127.0.0.1:{SEED_PORT}/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the script did not start serving")

    def stop(self) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return self.process.returncode, out.decode(), err.decode()


def test_basic_usage(tmp_path: Path) -> None:
    path = tmp_path / "wsgiapp.py"
    path.write_text(BASIC_USAGE)
    script = Script(path)
    try:
        script.wait_until_serving()
        response = httpx.get(f"http://127.0.0.1:{SEED_PORT}/")
        assert response.status_code == 200 and response.text == "Hello World"
    finally:
        status, out, err = script.stop()
    assert status == 0, err
    assert out == ""  # logs go to stderr
    assert "GET / HTTP/1.1" in err


def test_multiple_apps_and_a_static_directory(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "logo.txt").write_text("static file")
    path = tmp_path / "wsgiapp.py"
    path.write_text(MULTI_MOUNT.replace("{static}", str(static)))
    script = Script(path)
    try:
        script.wait_until_serving()
        base = f"http://127.0.0.1:{SEED_PORT}"
        assert httpx.get(f"{base}/").text == "Hello World"
        assert httpx.get(f"{base}/flask/").text == "Hello World"
        assert httpx.get(f"{base}/flask").status_code == 308
        assert httpx.get(f"{base}/logo.txt").text == "static file"
        assert httpx.get(f"{base}/missing.txt").text == "Hello World"  # the app answers
    finally:
        status, _, err = script.stop()
    assert status == 0, err


def test_the_readme_demo() -> None:
    """The README's first command: examples/demo/app.py serves its page and its static files."""
    demo = Path(__file__).resolve().parents[2] / "examples" / "demo" / "app.py"
    script = Script(demo)
    try:
        script.wait_until_serving()
        base = f"http://127.0.0.1:{SEED_PORT}"
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "Hello from Skitai" in page.text
        for name in ("style.css", "hello.txt"):
            static = httpx.get(f"{base}/{name}")
            assert static.status_code == 200
            assert static.content == (demo.parent / "static" / name).read_bytes()
    finally:
        status, _, err = script.stop()
    assert status == 0, err
