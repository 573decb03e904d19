"""A Saddle app with `use_reloader` reloads with its whole package, parts included."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.saddle.conftest import client_for

WAIT = 10.0

APP = '''
from skitai.saddle import Saddle
from . import part

app = Saddle(__name__)
app.use_reloader = True
app.mount("/part", part, "part")


class Counter:
    reloads = 0


@app.startup
def startup(wasc):
    wasc.register("counter", Counter())


@app.onreload
def onreload(wasc):
    wasc.counter.reloads += 1


@app.route("/")
def index(was):
    return "APP_TEXT"


@app.route("/reloads")
def reloads(was):
    return str(was.counter.reloads)
'''

PART = '''
from skitai.saddle import Saddlery

part = Saddlery(__name__)


@part.route("/<name>")
def hello(was, name):
    return f"PART_TEXT {name} " + was.render2("part.html")
'''


def write(path: Path, text: str) -> None:
    """Write `text` and move the mtime a second past the previous one."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    bumped = max(previous + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(bumped, bumped))


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    name = f"site_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    (root / "templates").mkdir(parents=True)
    write(root / "__init__.py", "")
    write(root / "app.py", APP.replace("APP_TEXT", "app v1"))
    write(root / "part.py", PART.replace("PART_TEXT", "part v1"))
    write(root / "templates" / "part.html", "template v1")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, root
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


async def wait_for(client: httpx.AsyncClient, path: str, expected: str) -> None:
    with anyio.fail_after(WAIT):
        while True:
            if (await client.get(path)).text == expected:
                return
            await anyio.sleep(0.02)


async def watching(caplog: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(WAIT):
        while True:
            if any("reloader watching" in r.getMessage() for r in caplog.records):
                return
            await anyio.sleep(0.02)


async def test_parts_and_app_reload(package: tuple[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    name, root = package
    with caplog.at_level(logging.INFO, "skitai.server"):
        async with client_for(("/", f"{name}.app:app"), reload_interval=0.05) as client:
            await watching(caplog)
            assert (await client.get("/part/x")).text == "part v1 x template v1"
            assert (await client.get("/reloads")).text == "0"

            write(root / "part.py", PART.replace("PART_TEXT", "part v2"))
            await wait_for(client, "/part/x", "part v2 x template v1")
            assert (await client.get("/reloads")).text == "1"  # onreload ran; the registered object stayed

            write(root / "templates" / "part.html", "template v2")  # templates follow their files
            await wait_for(client, "/part/x", "part v2 x template v2")

            write(root / "app.py", APP.replace("APP_TEXT", "app v2"))
            await wait_for(client, "/", "app v2")
            assert (await client.get("/reloads")).text == "2"
            for _ in range(3):  # routing stays right request after request
                assert (await client.get("/part/y")).text == "part v2 y template v2"
