"""Each module through a raw WSGI app on the real server, with httpx as the client."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from skitai.saddle.auth import Authenticator, User
from skitai.saddle.cookies import CookieJar
from skitai.saddle.formdata import Limits, MultipartError, MultipartTooLarge, TooManyParts, read_form
from skitai.saddle.mbox import Mbox
from skitai.saddle.sessions import Session
from skitai.saddle.stores import CookieStore, RedisStore, SessionStore
from skitai.saddle.uploads import Upload
from tests.saddle.helpers import KEY, REDIS_HOST, REDIS_PORT, require_redis
from tests.support.servers import serving

StartResponse = Callable[..., Any]


def respond(
    start_response: StartResponse, status: str, body: Any, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *headers])
    return [json.dumps(body).encode()]


def session_app(store: SessionStore) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        cookies = CookieJar.from_environ(environ)
        address = environ["REMOTE_ADDR"]
        session = Session(cookies, securekey=KEY, client_address=address, store=store)
        mbox = Mbox(cookies, securekey=KEY, client_address=address)
        if environ["PATH_INFO"] == "/login":
            session["user"] = "hans"
            mbox.send("welcome", "flash")
            cookies.set("theme", "dark; mode")
            body: Any = "ok"
        elif environ["PATH_INFO"] == "/logout":
            session.clear()
            body = "bye"
        else:
            body = {
                "user": session.get("user"),
                "verified": session.source_verified(),
                "messages": [m[4] for m in mbox.get()],
                "theme": cookies.get("theme"),
            }
        # What the framework does before the response head.
        session.commit()
        mbox.commit()
        return respond(
            start_response, "200 OK", body, [("Set-Cookie", v) for v in cookies.set_cookie_headers()]
        )

    return validator(app)


async def exercise_sessions(store: SessionStore) -> None:
    async with serving(mount=("/", session_app(store))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            login = await client.get("/login")
            lines = login.headers.get_list("set-cookie")
            assert len(lines) == 3
            assert all("SameSite=Lax" in line for line in lines)
            assert all("HttpOnly" in line for line in lines if line.startswith(("SESSION_", "NOTIS_")))
            first = (await client.get("/")).json()
            assert first == {"user": "hans", "verified": True, "messages": ["welcome"], "theme": "dark; mode"}
            second = (await client.get("/")).json()
            assert second["messages"] == [] and second["user"] == "hans"
            token = client.cookies["SESSION_"]
            await client.get("/logout")
            assert "SESSION_" not in client.cookies
            tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
            for value in (tampered, "gANjb3MKc3lzdGVtCnEAWAIAAABpZHEBhXECUnEDLg=="):
                response = await client.get("/", headers={"Cookie": f"SESSION_={value}"})
                assert response.json()["user"] is None


async def test_sessions_mbox_and_cookies_over_http() -> None:
    await exercise_sessions(CookieStore())


async def test_redis_sessions_from_worker_threads() -> None:
    require_redis()
    prefix = f"skitai-test:{secrets.token_hex(8)}:"
    store = RedisStore(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix=prefix)
    try:
        await exercise_sessions(store)
    finally:
        store.close()


def auth_app(authenticator: Authenticator) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        target = environ["REQUEST_URI"]
        result = authenticator.authenticate(
            environ["REQUEST_METHOD"], target, environ.get("HTTP_AUTHORIZATION"), environ["REMOTE_ADDR"]
        )
        if isinstance(result, User):
            return respond(start_response, "200 OK", {"name": result.name, "info": result.info})
        status = {400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden"}[result.status]
        return respond(start_response, status, None, result.headers)

    return validator(app)


USERS = {"app": ("iamyourpartnerapp", 0, {"role": "root"})}


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("MD5",)])
async def test_digest_auth_with_httpx(algorithms: tuple[str, ...]) -> None:
    authenticator = Authenticator("digest", "Partner App", USERS, secret=KEY, algorithms=algorithms)
    async with serving(mount=("/", auth_app(authenticator))) as srv:
        auth = httpx.DigestAuth("app", "iamyourpartnerapp")
        async with httpx.AsyncClient(base_url=srv.url, auth=auth) as client:
            for path in ("/hello/Hans%20Roh?x=1", "/again", "/again"):  # later ones reuse the nonce, nc 2, 3
                response = await client.get(path)
                assert response.status_code == 200
                assert response.json() == {"name": "app", "info": {"role": "root"}}
        async with httpx.AsyncClient(base_url=srv.url, auth=httpx.DigestAuth("app", "wrong")) as client:
            response = await client.get("/")
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Digest ")


async def test_basic_auth_with_httpx() -> None:
    authenticator = Authenticator("basic", "Partner App", USERS)
    async with serving(mount=("/", auth_app(authenticator))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            ok = await client.get("/", auth=("app", "iamyourpartnerapp"))
            assert ok.status_code == 200 and ok.json()["name"] == "app"
            refused = await client.get("/", auth=("app", "nope"))
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")


def upload_app(spool: Path, saved: Path, limits: Limits) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            form = read_form(environ, limits, tmpdir=str(spool), chunk_size=4096)
        except (MultipartError, MultipartTooLarge, TooManyParts) as exc:
            return respond(start_response, f"{exc.status} Refused", exc.message)
        try:
            shown = {}
            for name, value in form.items():
                if isinstance(value, Upload):
                    shown[name] = [
                        value.name,
                        value.mimetype,
                        value.size,
                        hashlib.sha256(value.read()).hexdigest(),
                    ]
                else:
                    shown[name] = value
            form["keep"].save(str(saved), mkdir=True)
            return respond(start_response, "200 OK", shown)
        finally:
            form.cleanup()  # what the framework does at the end of every request

    return validator(app)


async def test_multipart_upload_with_httpx(tmp_path: Path) -> None:
    spool, saved = tmp_path / "spool", tmp_path / "saved"
    spool.mkdir()
    big = os.urandom(300_000)
    limits = Limits(max_file_size=400_000)
    async with serving(mount=("/", upload_app(spool, saved, limits))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.post(
                "/upload",
                data={"submit-name": "Hans Roh", "note": "한글"},
                files={
                    "keep": ("../../report.txt", b"keep me", "text/plain"),
                    "big": ("big.bin", big, "application/octet-stream"),
                },
            )
            assert response.status_code == 200, response.text
            assert response.json() == {
                "submit-name": "Hans Roh",
                "note": "한글",
                "keep": ["report.txt", "text/plain", 7, hashlib.sha256(b"keep me").hexdigest()],
                "big": ["big.bin", "application/octet-stream", 300_000, hashlib.sha256(big).hexdigest()],
            }
            too_big = await client.post("/upload", files={"keep": ("x", os.urandom(500_000))})
            assert too_big.status_code == 413
    assert os.listdir(spool) == []
    assert os.listdir(saved) == ["report.txt"] and (saved / "report.txt").read_bytes() == b"keep me"
