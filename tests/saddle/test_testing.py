"""skitai.testing: an app under a real in-process server, for users' tests."""

from __future__ import annotations

import flask
import pytest

from skitai.saddle import Saddle
from skitai.testing import TestClient, serve_app


def saddle_app() -> Saddle:
    app = Saddle(__name__)

    @app.route("/login")
    def login(was, user):
        was.cookie.set("user", user)
        return "logged in"

    @app.route("/me")
    def me(was):
        return f"{was.cookie.get('user')} over {was.request.version}"

    return app


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "flask"

    return app


@pytest.mark.parametrize("http2", [False, True])
async def test_serve_app_keeps_cookies(http2: bool) -> None:
    async with serve_app(saddle_app(), http2=http2) as client:
        assert (await client.get("/login?user=hans")).text == "logged in"
        assert (await client.get("/me")).text == f"hans over {'2.0' if http2 else '1.1'}"


async def test_serve_app_with_a_mount_list() -> None:
    async with serve_app(mount=[("/flask", flask_app()), ("/", saddle_app())], threads=2) as client:
        assert (await client.get("/flask/")).text == "flask"
        assert (await client.get("/me")).text == "None over 1.1"


@pytest.mark.parametrize("http2", [False, True])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_test_client_in_a_plain_test(http2: bool, backend: str) -> None:
    with TestClient(saddle_app(), http2=http2, backend=backend) as client:
        assert client.get("/login?user=kim").text == "logged in"
        assert client.get("/me").text == f"kim over {'2.0' if http2 else '1.1'}"
    with TestClient(flask_app()) as client:
        assert client.get("/").text == "flask"


def test_app_or_mount_not_both() -> None:
    with pytest.raises(TypeError):
        TestClient(saddle_app(), mount=[("/", saddle_app())])
