"""Hostile input through the whole stack: session and mbox cookies, multipart bodies, credentials.

Every case runs on a sync route (worker thread) and an async route (event
loop), over real sockets. Bad cookies are ignored with one log line and the
handler sees an empty session; bad bodies get 400 or 413 with one log line;
no temp file is ever left behind.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from skitai.saddle import Saddle
from skitai.saddle.sealing import Sealer
from skitai.saddle.stores import RedisStore
from skitai.saddle.uploads import Upload
from tests.saddle.conftest import client_for
from tests.saddle.helpers import KEY, REDIS_HOST, REDIS_PORT, require_redis
from tests.support.rawhttp import RawClient
from tests.support.servers import serving

OTHER_KEY = "another-app-s-key-" + "k" * 16
PATHS = ["/state", "/async-state"]


def hostile_app(spool: Path, store: Any = None) -> Saddle:
    app = Saddle(__name__)
    app.securekey = KEY
    app.session_store = store
    app.config.upload_tmpdir = str(spool)
    app.config.max_multipart_body_size = 200_000
    app.config.max_upload_file_size = 100_000

    def state(was: Any) -> dict[str, Any]:
        return {"session": dict(was.session.items()), "messages": [m[4] for m in was.mbox.get()]}

    @app.route("/state")
    def sync_state(was):
        return state(was)

    @app.route("/async-state")
    async def async_state(was):
        return state(was)

    @app.route("/admin-box")
    def admin_box(was):
        was.mbox.mount("ADM")
        return {"messages": [m[4] for m in was.mbox.get()]}

    @app.route("/login")
    def login(was):
        was.session["user"] = "hans"
        was.mbox.send("welcome", "flash", valid=60)
        return "ok"

    @app.route("/logout")
    def logout(was):
        was.session.clear()
        return "bye"

    def fields(form: dict[str, Any]) -> dict[str, Any]:
        return {k: v.size if isinstance(v, Upload) else v for k, v in form.items()}

    @app.route("/upload", methods=["POST"])
    def upload(was, **form):
        return fields(form)

    @app.route("/async-upload", methods=["POST"])
    async def async_upload(was, **form):
        return fields(form)

    @app.route("/upload-then-fail", methods=["POST"])
    def upload_then_fail(was, **form):
        raise ValueError("the handler failed after the upload")

    @app.route("/async-upload-then-fail", methods=["POST"])
    async def async_upload_then_fail(was, **form):
        raise ValueError("the handler failed after the upload")

    def endless(was: Any) -> Iterator[bytes]:
        for _ in range(4096):  # 256 MiB at most: the client leaves long before
            yield b"x" * 65536

    @app.route("/upload-then-stream", methods=["POST"])
    def upload_then_stream(was, **form):
        return endless(was)

    @app.route("/async-upload-then-stream", methods=["POST"])
    async def async_upload_then_stream(was, **form):
        return endless(was)

    return app


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Path]:
    spool = tmp_path / "spool"
    spool.mkdir()
    yield spool
    assert os.listdir(spool) == [], "temp files left behind"


def app_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("skitai.app")]


# Cookies -------------------------------------------------------------------------------------


def bad_cookies(session: str, notis: str) -> dict[str, tuple[str, str]]:
    """Cookie name, value and the reason logged, made from a genuine session and mbox cookie."""
    prefix, key_id, body = session.split(".")
    flipped = body[:-4] + ("AAAA" if not body.endswith("AAAA") else "BBBB")
    expired = Sealer(KEY).seal("SESSION_", {"d": {"user": "hans"}, "a": "127.0.0.1", "e": 0},
                               expires_at=time.time() - 60)
    return {
        "forged": ("SESSION_", f"S1.{key_id}.{base64.urlsafe_b64encode(os.urandom(80)).decode().rstrip('=')}",
                   "authentication failed"),
        "tampered": ("SESSION_", f"{prefix}.{key_id}.{flipped}", "authentication failed"),
        "truncated": ("SESSION_", f"{prefix}.{key_id}.{body[: len(body) // 8 * 4]}", "authentication failed"),
        "cut-to-nonce": ("SESSION_", f"{prefix}.{key_id}.{body[:12]}", "truncated"),
        "another-key": ("SESSION_", Sealer(OTHER_KEY).seal("SESSION_", {"d": {"user": "x"}}),
                        "unknown key id"),
        "mbox-as-session": ("SESSION_", notis, "authentication failed"),
        "session-as-mbox": ("NOTIS_", session, "authentication failed"),
        "expired": ("SESSION_", expired, "expired"),
        "pickle": ("SESSION_", base64.b64encode(pickle.dumps(os.system)).decode(), "not a sealed value"),
        "oversize": ("SESSION_", "S1." + "A" * 5000, "oversize"),
        "bad-encoding": ("NOTIS_", f"S1.{key_id}.not*base64", "bad encoding"),
    }


async def genuine_cookies(client: httpx.AsyncClient) -> tuple[str, str]:
    await client.get("/login")
    session, notis = client.cookies["SESSION_"], client.cookies["NOTIS_"]
    client.cookies.clear()
    return session, notis


@pytest.mark.parametrize("path", PATHS)
async def test_bad_cookies_are_ignored_with_one_line(
    path: str, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(("/", hostile_app(spool))) as client:
        cases = bad_cookies(*await genuine_cookies(client))
        for case, (name, value, reason) in cases.items():
            caplog.clear()
            with caplog.at_level(logging.INFO, "skitai.app"):
                response = await client.get(path, headers={"cookie": f"{name}={value}"})
            assert response.status_code == 200, case
            assert response.json() == {"session": {}, "messages": []}, case
            lines = [r.getMessage() for r in app_records(caplog)]
            assert len(lines) == 1 and reason in lines[0] and name in lines[0], (case, lines)
            if name == "SESSION_":  # the session was read: its bad cookie is deleted
                assert "Max-Age=0" in response.headers["set-cookie"], case


async def test_a_message_box_cookie_does_not_open_as_another_box(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(("/", hostile_app(spool))) as client:
        _, notis = await genuine_cookies(client)
        with caplog.at_level(logging.INFO, "skitai.app"):
            response = await client.get("/admin-box", headers={"cookie": f"NOTIS__ADM={notis}"})
        assert response.json() == {"messages": []}
        assert [r.getMessage() for r in app_records(caplog)] == [
            "cookie 'NOTIS__ADM' ignored: authentication failed"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_session_replayed_after_sign_out_is_empty(
    path: str, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_redis()
    import redis

    client_ = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    prefix = f"skitai-test:{secrets.token_hex(8)}:"
    try:
        async with client_for(("/", hostile_app(spool, RedisStore(client=client_, prefix=prefix)))) as client:
            await client.get("/login")
            token = client.cookies["SESSION_"]
            assert (await client.get(path)).json()["session"] == {"user": "hans"}
            await client.get("/logout")
            with caplog.at_level(logging.INFO, "skitai.app"):
                replayed = await client.get(path, headers={"cookie": f"SESSION_={token}"})
            assert replayed.json()["session"] == {}
            assert [r.name for r in app_records(caplog)] == ["skitai.app.sessions"]
    finally:
        for key in client_.scan_iter(prefix + "*"):
            client_.delete(key)
        client_.close()


# Multipart bodies ---------------------------------------------------------------------------

B = "hostileBoundary"
MULTIPART = f"multipart/form-data; boundary={B}"


def part(headers: str, data: bytes) -> bytes:
    return f"--{B}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"


def file_part(name: str, data: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"', data)


def end() -> bytes:
    return f"--{B}--\r\n".encode()


SPOOLED = file_part("early", b"spooled before the error")  # a temp file exists when the error strikes

BARE_LF = f'--{B}\nContent-Disposition: form-data; name="x"\n\nv\n'.encode()
NOT_UTF8 = part('Content-Disposition: form-data; name="t"\r\nContent-Type: text/plain; charset=utf-8',
                b"\xff\xfe")
MANY_PARTS = b"".join(part(f'Content-Disposition: form-data; name="f{i}"', b"v") for i in range(1001))
LONG_HEADER = part(f'Content-Disposition: form-data; name="{"n" * 5000}"', b"v")

BAD_BODIES: dict[str, tuple[str, bytes, int]] = {
    "no-boundary": ("multipart/form-data", SPOOLED + end(), 400),
    "bad-boundary": ('multipart/form-data; boundary="a b "', SPOOLED + end(), 400),
    "garbage": (MULTIPART, os.urandom(2000), 400),
    "preamble": (MULTIPART, b"hello\r\n" + SPOOLED + end(), 400),
    "no-final-boundary": (MULTIPART, SPOOLED + file_part("late", b"cut"), 400),
    "bare-lf": (MULTIPART, SPOOLED + BARE_LF + end(), 400),
    "no-disposition": (MULTIPART, SPOOLED + part("Content-Type: text/plain", b"x") + end(), 400),
    "bad-charset": (MULTIPART, SPOOLED + NOT_UTF8 + end(), 400),
    "file-too-big": (MULTIPART, SPOOLED + file_part("big", b"x" * 150_000) + end(), 413),
    "too-many-parts": (MULTIPART, MANY_PARTS + end(), 413),
    "header-too-long": (MULTIPART, SPOOLED + LONG_HEADER + end(), 413),
}


@pytest.mark.parametrize("path", ["/upload", "/async-upload"])
async def test_bad_multipart_bodies(path: str, spool: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with client_for(("/", hostile_app(spool))) as client:
        for case, (content_type, body, status) in BAD_BODIES.items():
            caplog.clear()
            with caplog.at_level(logging.INFO, "skitai.app"):
                response = await client.post(path, content=body, headers={"content-type": content_type})
            assert response.status_code == status, (case, response.text[:200])
            lines = [r.getMessage() for r in app_records(caplog)]
            assert len(lines) == 1 and f"{status} " in lines[0], (case, lines)
            assert os.listdir(spool) == [], case


@pytest.mark.parametrize("path", ["/upload", "/async-upload"])
async def test_oversized_bodies_are_413(path: str, spool: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = SPOOLED + file_part("big", b"x" * 90_000) + file_part("more", b"y" * 90_000) + \
        file_part("most", b"z" * 90_000) + end()  # each file within its limit, the whole body over
    headers = {"content-type": MULTIPART}

    async def chunked() -> Any:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    async with client_for(("/", hostile_app(spool))) as client:
        with caplog.at_level(logging.INFO, "skitai.app"):
            declared = await client.post(path, content=body, headers=headers)  # refused before reading
            streamed = await client.post(path, content=chunked(), headers=headers)  # no Content-Length
        assert (declared.status_code, streamed.status_code) == (413, 413)
        assert len(app_records(caplog)) == 2
        fine = await client.post(path, data={"t": "v"}, files={"f": ("f.bin", b"x" * 90_000)})
        assert fine.json() == {"t": "v", "f": 90_000}


@pytest.mark.parametrize("path", ["/upload-then-fail", "/async-upload-then-fail"])
async def test_uploads_are_removed_when_the_handler_fails(path: str, spool: Path) -> None:
    async with client_for(("/", hostile_app(spool))) as client:
        response = await client.post(path, files={"f": ("f.bin", b"x" * 50_000)})
        assert response.status_code == 500


def raw_upload_head(path: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {MULTIPART}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def wait_for_a_temp_file(spool: Path) -> None:
    for _ in range(500):  # ten seconds at most
        if os.listdir(spool):
            return
        await anyio.sleep(0.02)
    raise AssertionError("the upload never reached the parser")


@pytest.mark.parametrize("path", ["/upload", "/async-upload"])
async def test_uploads_are_removed_when_the_client_leaves_mid_body(
    path: str, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = SPOOLED + file_part("big", b"x" * 90_000) + file_part("more", b"y" * 90_000) + end()
    async with serving(mount=("/", hostile_app(spool))) as served:
        raw = await RawClient.connect(served.host, served.port)
        await raw.send(raw_upload_head(path, len(body)) + body[:120_000])  # past what the server buffers
        await wait_for_a_temp_file(spool)
        await raw.aclose()
    # serving() returned with no worker busy: the parse has ended, and the spool fixture checks it
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the client's doing, not a bug


@pytest.mark.parametrize("path", ["/upload-then-stream", "/async-upload-then-stream"])
async def test_uploads_are_removed_when_the_client_leaves_mid_response(path: str, spool: Path) -> None:
    body = SPOOLED + end()
    async with serving(mount=("/", hostile_app(spool))) as served:
        raw = await RawClient.connect(served.host, served.port)
        await raw.send(raw_upload_head(path, len(body)) + body)
        with anyio.fail_after(10):
            received = await raw.stream.receive()
        assert received.startswith(b"HTTP/1.1 200 ")
        await raw.aclose()


@pytest.mark.parametrize("path", ["/upload", "/async-upload"])
async def test_broken_chunked_framing_is_answered_by_the_server(path: str, spool: Path) -> None:
    async with serving(mount=("/", hostile_app(spool))) as served:
        raw = await RawClient.connect(served.host, served.port)
        await raw.send(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {MULTIPART}\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n".encode() + b"zz\r\nnot a chunk\r\n")
        head = (await raw.read_all()).split(b"\r\n", 1)[0]
        await raw.aclose()
    assert head.startswith(b"HTTP/1.1 400 ")


# Credentials --------------------------------------------------------------------------------


def auth_app(scheme: str) -> Saddle:
    app = Saddle(__name__)
    app.authorization = scheme
    app.realm = "Partner App"
    app.users = {"app": "iamyourpartnerapp"}

    @app.route("/sync", authenticate=True)
    def sync(was):
        return was.request.user.name

    @app.route("/async", authenticate=True)
    async def async_(was):
        return was.request.user.name

    return app


DIGEST = 'Digest username="app", realm="Partner App", nonce="x", uri="/sync", response="0", '
HOSTILE_AUTHORIZATION = [
    "Digest", "Digest ,,,,", 'Digest username="app", username="app"', 'Digest username="app\\',
    DIGEST + "qop=auth, nc=1, cnonce=c", DIGEST + 'qop=auth-int, nc=00000001, cnonce="c"',
    "Digest " + ", ".join(["a=b"] * 500), "Basic", "Basic !!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Bearer abc", "x" * 4000,
]


@pytest.mark.parametrize("scheme", ["digest", "basic"])
async def test_hostile_authorization_headers_are_refused(scheme: str) -> None:
    async with client_for(("/", auth_app(scheme))) as client:
        for path in ("/sync", "/async"):
            for value in HOSTILE_AUTHORIZATION:
                response = await client.get(path, headers={"authorization": value})
                assert response.status_code == 401, (path, value[:60])
                assert response.headers["www-authenticate"].lower().startswith(scheme)
