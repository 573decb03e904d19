"""was.cookie through a Saddle app: reading, setting with every option, removing, committing only on success.

The jar itself (skitai.saddle.cookies) has its unit tests in test_cookies.py.
"""

from __future__ import annotations

import httpx

from skitai.saddle import Saddle
from tests.saddle.conftest import client_for


def make_app() -> Saddle:
    app = Saddle(__name__)

    @app.route("/set")
    def set_cookies(was):
        was.cookie.set("plain", "value")
        was.cookie.set("spaced", "a b;c,ü")
        was.cookie["item"] = "x"
        was.cookie.set("opts", "1", expires=3600, path="/sub", domain="example.com", secure=True,
                       http_only=True, samesite="lax")
        was.cookie.set("forever", "1", expires="never")
        return "set"

    @app.route("/read")
    def read(was):
        cookie = was.cookie
        return {"plain": cookie.get("plain"), "spaced": cookie.get("spaced"), "attr": cookie.plain,
                "absent": cookie.absent, "keys": sorted(cookie), "has": "item" in cookie}

    @app.route("/remove")
    def remove(was):
        was.cookie.remove("plain")
        del was.cookie["item"]
        return "removed"

    @app.route("/clear")
    def clear(was):
        was.cookie.clear()
        return "cleared"

    @app.route("/fail")
    def fail(was):
        was.cookie.set("never-sent", "1")
        raise RuntimeError("no commit")

    @app.failed_request
    def replaced(was, exc_info):
        return "replaced"

    return app


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


async def test_set_read_remove_clear() -> None:
    async with client_for(("/", make_app())) as client:
        headers = set_cookies(await client.get("/set"))
        assert headers[0] == "plain=value; Path=/; SameSite=Lax"
        assert headers[1] == "spaced=a%20b%3Bc%2C%C3%BC; Path=/; SameSite=Lax"
        assert headers[2] == "item=x; Path=/; SameSite=Lax"
        assert headers[3].startswith("opts=1; Path=/sub; Domain=example.com; Max-Age=3600; Expires=")
        assert headers[3].endswith(" GMT; Secure; HttpOnly; SameSite=Lax")
        assert headers[4].startswith("forever=1; Path=/; Max-Age=34560000; Expires=")  # 400 days
        info = (await client.get("/read")).json()
        assert info == {"plain": "value", "spaced": "a b;c,ü", "attr": "value", "absent": None,
                        "keys": ["forever", "item", "plain", "spaced"], "has": True}
        headers = set_cookies(await client.get("/remove"))
        assert headers == ["plain=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax",
                           "item=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax"]
        assert (await client.get("/read")).json()["keys"] == ["forever", "spaced"]
        await client.get("/clear")
        assert (await client.get("/read")).json()["keys"] == []


async def test_default_path_is_the_mount_point() -> None:
    async with client_for(("/shop", make_app())) as client:
        assert set_cookies(await client.get("/shop/set"))[0] == "plain=value; Path=/shop; SameSite=Lax"


async def test_nothing_is_committed_when_the_handler_fails() -> None:
    async with client_for(("/", make_app())) as client:
        response = await client.get("/fail")
        assert response.text == "replaced"
        assert set_cookies(response) == []


async def test_malformed_cookie_headers_are_tolerated() -> None:
    async with client_for(("/", make_app())) as client:
        response = await client.get("/read", headers={"Cookie": 'bad cookie; =x; plain="quoted"; ok'})
        assert response.json()["plain"] == "quoted"
