"""A real Flask app behind a mount point: routing, url_for through SCRIPT_NAME, redirects."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import httpx
import pytest
from flask import Flask, redirect, request, url_for

from skitai.loader import find_source
from tests.support import apps
from tests.support.servers import serving


def make_flask() -> Flask:
    app = Flask(__name__)

    @app.route("/")
    def index() -> str:
        return f"index at {url_for('index')}"

    @app.route("/hello/<name>")
    def hello(name: str) -> str:
        return f"Hello {name}, see {url_for('hello', name='x', _external=True)}"

    @app.route("/form", methods=["POST"])
    def form() -> str:
        return f"{request.form['a']}+{request.form['b']}"

    @app.route("/go")
    def go():  # type: ignore[no-untyped-def]
        return redirect(url_for("index"))

    return app


async def test_flask_sees_its_mount_point() -> None:
    async with serving(mount=[("/", apps.hello), ("/flask", make_flask())]) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            index = await client.get("/flask/")
            bare = await client.get("/flask")
            hello = await client.get("/flask/hello/you")
            posted = await client.post("/flask/form", data={"a": "1", "b": "2"})
            go = await client.get("/flask/go")
            other = await client.get("/flaskx")
    assert index.text == "index at /flask/"
    assert bare.status_code == 308 and bare.headers["location"].endswith("/flask/")
    assert hello.text == f"Hello you, see http://127.0.0.1:{srv.port}/flask/hello/x"
    assert posted.text == "1+2"
    assert go.status_code == 302 and go.headers["location"] == "/flask/"
    assert other.text == "Hello World"  # /flaskx is not under /flask


def test_a_flask_app_object_is_found_for_reloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flaskmod.py").write_text("from flask import Flask\napplication = Flask(__name__)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("flaskmod")
    monkeypatch.setitem(sys.modules, "flaskmod", module)
    source = find_source(module.application)
    assert source is not None
    assert (source.module_name, source.attr) == ("flaskmod", "application")
