"""The plug-in points other modules use: body parsers, authenticators, per-request services."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest

from skitai import context
from skitai.saddle import HTTPError, Saddle, plugins
from tests.saddle.conftest import client_for


class Upload:
    """What an uploads module would hand to handlers: a file, cleaned up when the request ends."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.removed = threading.Event()

    def remove(self) -> None:
        self.removed.set()


UPLOADS: list[Upload] = []


def parse_lines(stream: BinaryIO, content_type: str, config: Any) -> dict[str, Any]:
    """A stand-in multipart parser: `name=value` lines, `file` as an Upload."""
    fields: dict[str, Any] = {}
    was = context.current_was()
    for line in stream.read(config.max_multipart_body_size).decode().splitlines():
        name, _, value = line.partition("=")
        if name == "file":
            upload = Upload(value.encode())
            UPLOADS.append(upload)
            was.on_close(upload.remove)  # type: ignore[attr-defined]
            fields[name] = upload
        else:
            fields[name] = value
    return fields


class TokenAuthenticator:
    def __init__(self, app: Saddle) -> None:
        self.users = app.users

    def authenticate(self, was: Any) -> HTTPError | None:
        name = self.users.get(was.request.get_header("authorization", ""))
        if name is None:
            return HTTPError(401, headers=[("WWW-Authenticate", 'Token realm="test"')])
        was.request.user = name
        return None


class Session(dict[str, str]):
    """A stand-in session: written as a cookie when the request succeeds."""

    def __init__(self, was: Any) -> None:
        super().__init__()
        was.on_commit(lambda response: response.append_header("Set-Cookie", f"session={len(self)}; Path=/"))


@pytest.fixture
def plugged(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Stand-ins in place of the real modules, which are put back afterwards.
    monkeypatch.setitem(plugins.BODY_PARSERS, "multipart/form-data", parse_lines)
    monkeypatch.setitem(plugins.AUTHENTICATORS, "token", TokenAuthenticator)
    monkeypatch.setitem(context._services, "session",
                        lambda was: was.g.__dict__.setdefault("session", Session(was)))
    UPLOADS.clear()
    yield


def make_app() -> Saddle:
    app = Saddle(__name__)
    app.authorization = "token"
    app.users = {"secret": "hans"}

    @app.route("/upload", methods=["POST"])
    def upload(was, file, title):
        return f"{title}: {file.data.decode()}"

    @app.route("/async-upload", methods=["POST"])
    async def async_upload(was, file, title):
        return f"async {title}: {file.data.decode()}"

    @app.route("/raw", methods=["POST"])
    def raw(was):
        return was.request.get_body()

    @app.route("/private", authenticate=True)
    def private(was):
        return f"hello {was.request.user}"

    @app.route("/session")
    def session(was, fail=""):
        was.session["a"] = "1"
        if fail:
            raise ValueError("no session written")
        return "kept"

    return app


async def test_uploads_reach_handlers_and_are_cleaned_up(plugged: None) -> None:
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    async with client_for(("/", make_app())) as client:
        response = await client.post("/upload", content=b"title=report\nfile=DATA", headers=multipart)
        assert response.text == "report: DATA"
        response = await client.post("/async-upload", content=b"title=t\nfile=X", headers=multipart)
        assert response.text == "async t: X"
    for upload in UPLOADS:
        assert upload.removed.wait(10)


async def test_multipart_bodies_are_kept_whole_only_up_to_max_cache_size(plugged: None) -> None:
    app = make_app()
    app.config.max_cache_size = 10
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    async with client_for(("/", app)) as client:
        assert (await client.post("/raw", content=b"0123456789", headers=multipart)).text == "0123456789"
        assert (await client.post("/raw", content=b"0123456789+", headers=multipart)).status_code == 413


async def test_an_installed_authenticator_decides(plugged: None) -> None:
    async with client_for(("/", make_app())) as client:
        response = await client.get("/private")
        assert response.status_code == 401 and response.headers["www-authenticate"] == 'Token realm="test"'
        assert (await client.get("/private", headers={"authorization": "secret"})).text == "hello hans"


async def test_services_commit_on_success_only(plugged: None) -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/session")).headers["set-cookie"] == "session=1; Path=/"
        response = await client.get("/session?fail=1")
        assert response.status_code == 500 and "set-cookie" not in response.headers
