"""Sessions, message boxes, uploads and authentication in Saddle apps, over real sockets.

Each feature on sync routes (worker threads) and async routes (the event
loop), with httpx as the browser: its cookie jar, `files=`, `DigestAuth`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
import trustme

from skitai.saddle import HTTPError, Saddle
from skitai.saddle.http_auth import HttpAuthenticator
from skitai.saddle.stores import RedisStore
from tests.saddle.conftest import client_for
from tests.saddle.helpers import KEY, REDIS_HOST, REDIS_PORT, Clock, require_redis
from tests.support.servers import serving

REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def session_app(store: Any = None, securekey: Any = KEY) -> Saddle:
    app = Saddle(__name__)
    app.securekey = securekey
    app.session_store = store

    @app.route("/visit")
    def visit(was):
        was.session["visits"] = was.session.get("visits", 0) + 1
        return str(was.session["visits"])

    @app.route("/login", methods=["POST"])
    def login(was, user):
        was.session["user"] = user
        was.session.regenerate()  # a new id once signed in: a planted one is worth nothing
        was.mbox.send(f"welcome {user}", "flash")
        return "ok"

    @app.route("/async-login", methods=["POST"])
    async def async_login(was, user):
        was.session["user"] = user
        was.session.regenerate()
        was.mbox.send(f"welcome {user}", "flash")
        return "ok"

    @app.route("/me")
    def me(was):
        return {"user": was.session.get("user"), "messages": [m[4] for m in was.mbox.get()]}

    @app.route("/async-me")
    async def async_me(was):
        return {"user": was.session.get("user"), "messages": [m[4] for m in was.mbox.get()]}

    @app.route("/fail")
    def fail(was):
        was.session["user"] = "mallory"
        was.mbox.get()
        raise ValueError("nothing of this request reaches the browser")

    @app.route("/async-fail")
    async def async_fail(was):
        was.session["user"] = "mallory"
        was.mbox.get()
        raise ValueError("nothing of this request reaches the browser")

    @app.route("/logout")
    def logout(was):
        was.session.clear()
        return "bye"

    @app.route("/named")
    def named(was):
        was.session.mount("ADM", path="/")
        was.session["admin"] = True

    @app.route("/async-named")
    async def async_named(was):
        was.session.mount("ADM", path="/")
        return str(was.session.get("admin"))

    return app


@pytest.fixture
def redis_store() -> Iterator[RedisStore]:
    require_redis()
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    prefix = f"skitai-test:{secrets.token_hex(8)}:"
    yield RedisStore(client=client, prefix=prefix)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


async def sign_in_and_out(client: httpx.AsyncClient, prefix: str) -> None:
    """One browser's round: sign in, read the flash message once, fail, sign out."""
    assert (await client.post(f"/{prefix}login", data={"user": "hans"})).text == "ok"
    assert (await client.get(f"/{prefix}me")).json() == {"user": "hans", "messages": ["welcome hans"]}
    assert (await client.get(f"/{prefix}me")).json() == {"user": "hans", "messages": []}
    failed = await client.get(f"/{prefix}fail")
    assert failed.status_code == 500 and "set-cookie" not in failed.headers
    assert (await client.get(f"/{prefix}me")).json()["user"] == "hans"
    assert (await client.get("/logout")).text == "bye"
    assert "SESSION_" not in client.cookies
    assert (await client.get(f"/{prefix}me")).json() == {"user": None, "messages": []}


@pytest.mark.parametrize("prefix", ["", "async-"], ids=["sync", "async"])
async def test_sessions_and_mbox_in_the_sealed_cookie(prefix: str) -> None:
    async with client_for(("/", session_app())) as client:
        await sign_in_and_out(client, prefix)


@pytest.mark.parametrize("prefix", ["", "async-"], ids=["sync", "async"])
async def test_sessions_in_redis(prefix: str, redis_store: RedisStore) -> None:
    async with client_for(("/", session_app(redis_store))) as client:
        await sign_in_and_out(client, prefix)


async def test_regenerate_on_sign_in_ends_the_planted_session(
    redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(("/", session_app(redis_store))) as client:
        assert (await client.get("/visit")).text == "1"
        planted = client.cookies["SESSION_"]
        await client.post("/login", data={"user": "hans"})
        assert client.cookies["SESSION_"] != planted
        assert (await client.get("/me")).json()["user"] == "hans"
        with caplog.at_level(logging.INFO, "skitai.app"):
            replayed = await client.get("/me", headers={"cookie": f"SESSION_={planted}"})
        assert replayed.json()["user"] is None
        assert [r.name for r in caplog.records if r.name.startswith("skitai.app.")] == ["skitai.app.sessions"]


async def test_redis_store_named_by_url_is_closed_at_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis()
    closed: list[RedisStore] = []
    original = RedisStore.close

    def close(store: RedisStore) -> None:
        closed.append(store)
        original(store)

    monkeypatch.setattr(RedisStore, "close", close)
    app = session_app(REDIS_URL)
    async with client_for(("/", app)) as client:
        await sign_in_and_out(client, "async-")
        await sign_in_and_out(client, "")
        assert not closed
    assert len(closed) == 1


async def test_async_routes_leave_the_loop_to_redis(
    redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The no_blocking_calls fixture fails the test if a Redis call runs on the loop.
    async with client_for(("/", session_app(redis_store))) as client:
        await client.post("/async-login", data={"user": "hans"})
        assert (await client.get("/async-me")).json()["user"] == "hans"
        await client.get("/named")
        with caplog.at_level(logging.ERROR, "skitai.app"):
            response = await client.get("/async-named")  # a named session, loaded on the loop
        assert response.status_code == 500
        failures = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
        assert any("cannot be read on the event loop" in failure for failure in failures)


@pytest.mark.parametrize("path", ["/me", "/async-me"])
async def test_without_a_securekey_sessions_fail_loudly(path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "skitai.app"):
        async with client_for(("/", session_app(securekey=None))) as client:
            response = await client.get(path)
    assert response.status_code == 500 and "set-cookie" not in response.headers
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "needs app.securekey" in str(errors[0].exc_info[1])  # type: ignore[index]


async def test_securekey_rotation() -> None:
    old, new = "old-key-" + "o" * 16, "new-key-" + "n" * 16
    mounts = [("/old", session_app(securekey=old)), ("/rotating", session_app(securekey=[new, old])),
              ("/new", session_app(securekey=new))]
    async with client_for(mounts) as client:
        await client.post("/old/login", data={"user": "hans"})  # the default session's path is "/"
        assert (await client.get("/rotating/me")).json()["user"] == "hans"  # opened with the old key
        assert (await client.get("/new/me")).json()["user"] is None
        await client.post("/rotating/login", data={"user": "kim"})  # sealed with the new key from now on
        assert (await client.get("/new/me")).json()["user"] == "kim"
        assert (await client.get("/old/me")).json()["user"] is None


@asynccontextmanager
async def browser(mount: Any, tmp_path: Path, *, tls: bool) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a server with these mounts: over TLS (a trustme certificate) or plain HTTP."""
    if not tls:
        async with client_for(mount) as client:
            yield client
        return
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with serving(mount=mount, certfile=str(certfile), keyfile=str(keyfile)) as served, \
            httpx.AsyncClient(base_url=f"https://127.0.0.1:{served.port}", verify=context) as client:
        yield client


def cookie_attributes(line: str) -> tuple[str, list[str]]:
    """(name, attributes) of a Set-Cookie line, Expires left out (it follows the clock)."""
    pair, *attributes = [part.strip() for part in line.split(";")]
    assert sum(a.startswith("Expires=") for a in attributes) == 1, line
    return pair.partition("=")[0], [a for a in attributes if not a.startswith("Expires=")]


async def test_the_session_cookie_over_tls(tmp_path: Path) -> None:
    """Over HTTPS the session cookie is Secure, HttpOnly and SameSite=Lax, and comes back."""
    async with browser(("/", session_app()), tmp_path, tls=True) as client:
        first = await client.get("/visit")
        assert first.text == "1"
        (line,) = first.headers.get_list("set-cookie")
        assert cookie_attributes(line) == ("SESSION_", ["Path=/", "Max-Age=1200", "Secure", "HttpOnly",
                                                        "SameSite=Lax"])
        assert (await client.get("/visit")).text == "2"


ADMIN_KEY = "admin-key-" + "a" * 16


def named_session_app(secure: bool, http_only: bool) -> Saddle:
    app = Saddle(__name__)
    app.securekey = KEY

    def mount_admin(was: Any) -> None:
        was.session.mount("ADM", ADMIN_KEY, "/admin", "example.test", secure, http_only, 300)

    @app.route("/admin/sign-in")
    def sign_in(was):
        mount_admin(was)
        was.session["admin"] = "hans"
        return "ok"

    @app.route("/admin/who")
    def who(was):
        mount_admin(was)
        return str(was.session.get("admin"))

    @app.route("/admin/opens-with-the-app-key")
    def opens_with_the_app_key(was):
        return str(was.session.exists("ADM"))

    return app


@pytest.mark.parametrize(("tls", "secure", "http_only"), [(True, False, False), (False, True, True)],
                         ids=["tls-not-secure", "plain-secure"])
async def test_a_named_session_cookie_has_the_mounted_attributes(
    tmp_path: Path, tls: bool, secure: bool, http_only: bool
) -> None:
    """`mount(name, securekey, path, domain, secure, http_only, session_timeout)`: its cookie has
    that Path, Domain, lifetime, Secure and HttpOnly, whatever the scheme, and is sealed with
    that key."""
    async with browser(("/", named_session_app(secure, http_only)), tmp_path, tls=tls) as client:
        response = await client.get("/admin/sign-in")
        assert response.text == "ok"
        (line,) = response.headers.get_list("set-cookie")
        name, attributes = cookie_attributes(line)
        assert name == "SESSION__ADM"
        assert attributes == ["Path=/admin", "Domain=example.test", "Max-Age=300",
                              *(["Secure"] if secure else []), *(["HttpOnly"] if http_only else []),
                              "SameSite=Lax"]
        cookie = {"cookie": line.split(";")[0]}  # as a browser at example.test would send it
        assert (await client.get("/admin/who", headers=cookie)).text == "hans"
        assert (await client.get("/admin/opens-with-the-app-key", headers=cookie)).text == "False"


# Uploads ------------------------------------------------------------------------------------


def upload_app(spool: Path) -> Saddle:
    app = Saddle(__name__)
    app.config.upload_tmpdir = str(spool)
    app.config.max_cache_size = 1000

    def describe(was: Any, doc: Any, title: str) -> dict[str, Any]:
        try:
            raw: Any = len(was.request.get_body())
        except HTTPError as exc:
            raw = exc.code
        digest = hashlib.sha256()
        with open(doc.path, "rb") as file:
            while piece := file.read(65536):
                digest.update(piece)
        return {"title": title, "name": doc.name, "size": doc.size, "mimetype": doc.mimetype,
                "sha256": digest.hexdigest(), "raw": raw}

    @app.route("/upload", methods=["POST"])
    def upload(was, doc, title):
        return describe(was, doc, title)

    @app.route("/async-upload", methods=["POST"])
    async def async_upload(was, doc, title):
        return await anyio.to_thread.run_sync(describe, was, doc, title)  # files are read off the loop

    @app.route("/size", methods=["POST"])
    def size(was, doc):
        return doc.size

    @app.route("/async-size", methods=["POST"])
    async def async_size(was, doc):
        return doc.size

    return app


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
@pytest.mark.parametrize("path", ["/upload", "/async-upload"])
async def test_uploads_reach_sync_and_async_handlers(path: str, http2: bool, tmp_path: Path) -> None:
    big = os.urandom(300_000)
    async with client_for(("/", upload_app(tmp_path)), http2=http2) as client:
        response = await client.post(path, data={"title": "한글"},
                                     files={"doc": ("../../etc/report.bin", big, "application/x-report")})
        assert response.json() == {"title": "한글", "name": "report.bin", "size": 300_000,
                                   "mimetype": "application/x-report",
                                   "sha256": hashlib.sha256(big).hexdigest(), "raw": 413}
        small = await client.post(path, data={"title": "t"}, files={"doc": ("a.txt", b"abc", "text/plain")})
        assert small.json()["size"] == 3
        assert 0 < small.json()["raw"] <= 1000  # kept for get_body(): within max_cache_size
    assert os.listdir(tmp_path) == []


def multipart_body(size: int) -> bytes:
    return (b'--bound\r\nContent-Disposition: form-data; name="doc"; filename="big.bin"\r\n\r\n'
            + b"x" * size + b"\r\n--bound--\r\n")


async def pieces(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    """The body sent a piece at a time, so the client side never copies it whole."""
    view = memoryview(body)
    for start in range(0, len(body), size):
        yield bytes(view[start:start + size])


@pytest.mark.parametrize("path", ["/size", "/async-size"])
async def test_a_big_upload_is_never_held_in_memory(path: str, tmp_path: Path) -> None:
    size = 8 * 1024 * 1024
    app = upload_app(tmp_path)
    app.config.max_cache_size = 16 * 1024 * 1024  # kept for get_body(), but not in memory
    body = multipart_body(size)  # made before tracing starts: only the server's allocations count
    async with client_for(("/", app)) as client:
        tracemalloc.start()
        try:
            response = await client.post(path, content=pieces(body), headers={
                "content-type": "multipart/form-data; boundary=bound", "content-length": str(len(body))})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert response.text == str(size)
    assert peak < size / 4, f"{peak} bytes allocated at once for a {size}-byte upload"
    assert os.listdir(tmp_path) == []


# Authentication ------------------------------------------------------------------------------


def auth_app(**settings: Any) -> Saddle:
    app = Saddle(__name__)
    app.realm = "Partner App"
    app.users = {"app": ("iamyourpartnerapp", 0, {"role": "root"})}
    app.securekey = KEY
    for name, value in settings.items():
        setattr(app, name, value)

    @app.route("/whoami", authenticate=True)
    def whoami(was):
        return {"name": was.request.user.name, "remote_user": was.env["REMOTE_USER"]}

    @app.route("/async-whoami", authenticate=True)
    async def async_whoami(was):
        return {"name": was.request.user.name, "remote_user": was.env["REMOTE_USER"]}

    @app.route("/open")
    async def open_page(was):
        return {"remote_user": was.env.get("REMOTE_USER")}

    return app


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("MD5",)])
@pytest.mark.parametrize("path", ["/whoami", "/async-whoami"])
async def test_digest_on_sync_and_async_routes(path: str, algorithms: tuple[str, ...]) -> None:
    async with client_for(("/", auth_app(digest_algorithms=algorithms))) as client:
        auth = httpx.DigestAuth("app", "iamyourpartnerapp")
        for _ in range(3):  # the nonce is reused: nc 1, 2, 3
            response = await client.get(path, auth=auth)
            assert response.json() == {"name": "app", "remote_user": "app"}
        assert f"algorithm={algorithms[0]}" in response.request.headers["authorization"]
        assert (await client.get("/open")).json() == {"remote_user": None}


@pytest.mark.parametrize("path", ["/whoami", "/async-whoami"])
async def test_basic_on_sync_and_async_routes(path: str) -> None:
    async with client_for(("/", auth_app(authorization="basic"))) as client:
        assert (await client.get(path, auth=("app", "iamyourpartnerapp"))).json()["name"] == "app"
        refused = await client.get(path, auth=("app", "wrong"))
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")


async def test_replayed_and_forged_digest_credentials_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "skitai.app.auth")
    async with client_for(("/", auth_app())) as client:
        admitted = await client.get("/whoami", auth=httpx.DigestAuth("app", "iamyourpartnerapp"))
        assert admitted.status_code == 200
        header = admitted.request.headers["authorization"]
        replayed = await client.get("/whoami", headers={"authorization": header})
        assert replayed.status_code == 401 and "stale" not in replayed.headers["www-authenticate"]
        nonce = header.split('nonce="')[1].split('"')[0]
        forged = header.replace(nonce, "A" * len(nonce))
        assert (await client.get("/whoami", headers={"authorization": forged})).status_code == 401
    messages = [r.getMessage() for r in caplog.records]
    assert any("replayed nonce count" in m for m in messages)
    assert any("nonce not issued here" in m for m in messages)


async def test_stale_nonces_are_renewed_without_asking_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "skitai.app.auth")
    clock = Clock()
    app = auth_app()
    app.authenticator = HttpAuthenticator(app, clock=clock)
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    async with client_for(("/", app)) as client:
        client.event_hooks["response"] = [record]
        auth = httpx.DigestAuth("app", "iamyourpartnerapp")
        assert (await client.get("/whoami", auth=auth)).status_code == 200
        clock.now += 301  # past the nonce's lifetime
        response = await client.get("/whoami", auth=auth)
        assert response.status_code == 200
    assert statuses == [401, 200, 401, 200]
    assert sum("stale nonce" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("settings", [{"realm": None}, {"users": {}}, {"users": None}],
                         ids=["no-realm", "no-users", "users-none"])
async def test_authentication_fails_closed(settings: dict[str, Any],
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "skitai.app.auth")
    async with client_for(("/", auth_app(**settings))) as client:
        for path in ("/whoami", "/async-whoami"):
            response = await client.get(path, auth=httpx.DigestAuth("app", "iamyourpartnerapp"))
            assert response.status_code == 403 and "www-authenticate" not in response.headers
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("refuses every request" in message for message in errors)


async def test_any_authenticator_fills_the_access_log_user(caplog: pytest.LogCaptureFixture) -> None:
    class Tokens:
        def authenticate(self, was: Any) -> HTTPError | None:
            if was.request.get_header("x-token") != "t0k":
                return HTTPError(401, headers=[("WWW-Authenticate", 'Token realm="x"')])
            was.request.user = "robot"
            return None

    caplog.set_level(logging.INFO, "skitai.access")
    app = auth_app()
    app.authenticator = Tokens()

    @app.route("/robot", authenticate=True)
    async def robot(was):
        return {"user": was.request.user, "remote_user": was.env["REMOTE_USER"]}

    async with client_for(("/", app), http2=True) as client:
        response = await client.get("/robot", headers={"x-token": "t0k"})
        assert response.json() == {"user": "robot", "remote_user": "robot"}
        assert (await client.get("/robot", headers={"x-token": "no"})).status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "skitai.access"]
    assert ' "robot" ' in lines[0] and ' 401 ' in lines[1] and ' - "python-httpx' in lines[1]
