"""Rules, typed segments, method and media type restrictions, URL building."""

from __future__ import annotations

import logging

import pytest

from skitai.saddle import BuildError, Saddle
from skitai.saddle.routing import Rule
from tests.saddle.conftest import client_for


def make_app() -> Saddle:
    app = Saddle(__name__)

    @app.route("/")
    def index(was):
        return "index"

    @app.route("/hello/<name>")
    def hello(was, name="Hans Roh"):
        return f"Hello, {name}"

    @app.route("/num/<int:num>")
    def num(was, num):
        return f"{type(num).__name__} {num}"

    @app.route("/price/<float:price>")
    def price(was, price):
        return f"{type(price).__name__} {price}"

    @app.route("/download/<int:major_ver>/<path>")
    def download(was, major_ver, path):
        return f"{major_ver} {path}"

    @app.route("/files/<path:rest>")
    def files(was, rest):
        return rest

    @app.route("/dir/")
    def directory(was):
        return "dir"

    @app.route("/only-get", methods=["GET"])
    def only_get(was):
        return "got"

    @app.route("/item", methods=["GET"])
    def item_get(was):
        return "read"

    @app.route("/item", methods=["POST", "PUT"])
    def item_post(was):
        return "written"

    @app.route("/xml", methods=["POST"], content_types=["text/xml"])
    def xml(was):
        return was.request.get_body()

    @app.route("/links")
    def links(was, name="x y_z"):
        return "\n".join([
            was.ab("hello", name), was.ab("num", 5), was.ab("files", "a/b c/d.txt"),
            was.ab("index"), was.ab("/static/x.css"), was.app.build_url("hello"),
        ])

    @app.route("/go")
    def go(was, name):
        return was.redirect(was.ab("hello", name))

    return app


async def test_typed_segments() -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/hello/Your_Name")).text == "Hello, Your Name"
        assert (await client.get("/hello/a%5Fb%2Fc%3F")).text == "Hello, a_b/c?"
        assert (await client.get("/hello/%ED%95%9C")).text == "Hello, 한"
        assert (await client.get("/num/42")).text == "int 42"
        assert (await client.get("/num/x42")).status_code == 404
        assert (await client.get("/price/4.25")).text == "float 4.25"
        assert (await client.get("/download/1/version/1.1/win32")).text == "1 version/1.1/win32"
        assert (await client.get("/files/a/b/c.txt")).text == "a/b/c.txt"
        assert (await client.get("/files/")).status_code == 404
        assert (await client.get("/hello/%FF")).status_code == 400  # not UTF-8


async def test_every_request_routes_the_same_without_the_reloader() -> None:
    # The original crashed on the second request to any route when use_reloader was off.
    app = make_app()
    assert app.use_reloader is False
    async with client_for(("/", app)) as client:
        for _ in range(3):
            assert (await client.get("/hello/x")).text == "Hello, x"
            assert (await client.get("/num/1")).text == "int 1"


async def test_not_found_and_trailing_slash() -> None:
    async with client_for(("/app", make_app())) as client:
        response = await client.get("/app/missing")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        response = await client.get("/app/dir?a=1")
        assert response.status_code == 301
        assert response.headers["location"] == "/app/dir/?a=1"
        response = await client.get("/app")
        assert response.status_code == 301 and response.headers["location"] == "/app/"
        assert (await client.get("/app/")).text == "index"


async def test_methods_405_with_allow() -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/only-get")).text == "got"
        assert (await client.head("/only-get")).status_code == 200
        response = await client.post("/only-get")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert (await client.get("/item")).text == "read"
        assert (await client.put("/item")).text == "written"
        response = await client.delete("/item")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST, PUT, HEAD"


async def test_content_types_415() -> None:
    async with client_for(("/", make_app())) as client:
        body = b"<a/>"
        response = await client.post("/xml", content=body,
                                     headers={"content-type": "text/xml; charset=utf-8"})
        assert response.status_code == 200 and response.content == body
        response = await client.post("/xml", content=b"{}", headers={"content-type": "application/json"})
        assert response.status_code == 415


async def test_building_urls_under_the_mount_point() -> None:
    async with client_for(("/math", make_app())) as client:
        lines = (await client.get("/math/links")).text.split("\n")
        assert lines == [
            "/math/hello/x_y%5Fz",
            "/math/num/5",
            "/math/files/a/b%20c/d.txt",
            "/math/",
            "/math/static/x.css",
            "/math/hello/Hans_Roh",
        ]
        # and what was built routes back to the same values
        assert (await client.get(lines[0])).text == "Hello, x y_z"


async def test_arguments_cannot_inject_segments_or_queries(caplog: pytest.LogCaptureFixture) -> None:
    async with client_for(("/", make_app())) as client:
        for name, location in [("a/b?c#d", "/hello/a%2Fb%3Fc%23d"), ("100%", "/hello/100%25")]:
            response = await client.get("/go", params={"name": name})
            assert response.status_code == 302
            assert response.headers["location"] == location
            assert (await client.get(location)).text == f"Hello, {name}"
        with caplog.at_level(logging.WARNING, "skitai.app"):
            for name in ["..", ".", ""]:
                response = await client.get("/go", params={"name": name})
                assert response.status_code == 400, name
    assert sum("does not fit" in r.getMessage() for r in caplog.records) == 3


def test_build_url_errors() -> None:
    app = make_app()
    with pytest.raises(BuildError, match="no route"):
        app.build_url("nothing")
    with pytest.raises(BuildError, match="does not fit"):
        app.build_url("num", "x")
    with pytest.raises(BuildError, match="does not fit"):
        app.build_url("files", "a/../b")
    with pytest.raises(BuildError, match="no value"):
        app.build_url("num")
    assert app.build_url("hello", "a b") == "/hello/a_b"  # outside a request: no mount point


def test_rules_refuse_nonsense() -> None:
    for text in ["no-slash", "/<path:x>/after", "/<a>/<a>", "/<bad-name>"]:
        with pytest.raises(ValueError):
            Rule(text)


async def test_http2_routes_too() -> None:
    async with client_for(("/", make_app()), http2=True) as client:
        response = await client.get("/hello/h2")
        assert response.http_version == "HTTP/2"
        assert response.text == "Hello, h2"

