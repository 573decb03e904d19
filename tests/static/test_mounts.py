"""Static directories next to WSGI apps in the mount table."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.static.site import HELLO, INDEX
from tests.support import apps
from tests.support.servers import serving


async def test_file_wins_over_an_app_at_the_same_point(site: Path) -> None:
    async with serving(mount=[("/", str(site)), ("/", apps.hello)]) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        file = await client.get("/hello.txt")
        index = await client.get("/")
        missing = await client.get("/no/such/file")
        hidden = await client.get("/.secret")
        post_file = await client.post("/hello.txt", content=b"x")
        post_app = await client.post("/api", content=b"x")
    assert (file.status_code, file.content) == (200, HELLO)
    assert (index.status_code, index.content) == (200, INDEX)
    assert (missing.status_code, missing.text) == (200, "Hello World")
    assert (hidden.status_code, hidden.text) == (200, "Hello World")
    assert post_file.status_code == 405
    assert (post_app.status_code, post_app.text) == (200, "Hello World")


async def test_static_mount_below_an_app(site: Path) -> None:
    mounts = [("/static", str(site)), ("/", apps.show_environ)]
    async with serving(mount=mounts) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        file = await client.get("/static/hello.txt")
        index = await client.get("/static/")
        bare = await client.get("/static?v=1")
        sub = await client.get("/static/docs")
        missing = await client.get("/static/missing.txt")
        neighbour = await client.get("/staticky/hello.txt")
    assert (file.status_code, file.content) == (200, HELLO)
    assert (index.status_code, index.content) == (200, INDEX)
    assert (bare.status_code, bare.headers["location"]) == (301, "/static/?v=1")
    assert (sub.status_code, sub.headers["location"]) == (301, "/static/docs/")
    assert json.loads(missing.content)["PATH_INFO"] == "/static/missing.txt"
    assert json.loads(neighbour.content)["PATH_INFO"] == "/staticky/hello.txt"


async def test_static_mount_alone_answers_404_for_the_rest(site: Path) -> None:
    async with serving(mount=("/static", str(site))) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        outside = await client.get("/hello.txt")
        inside = await client.get("/static/hello.txt")
    assert outside.status_code == 404
    assert inside.status_code == 200


async def test_two_static_mounts(site: Path, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "hello.txt").write_bytes(b"from assets\n")
    (site / "assets").mkdir()
    (site / "assets" / "extra.txt").write_bytes(b"from the site\n")
    async with serving(mount=[("/", str(site)), ("/assets", str(assets))]) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        from_assets = await client.get("/assets/hello.txt")
        fallback = await client.get("/assets/extra.txt")  # not in assets: the "/" mount's turn
        from_site = await client.get("/hello.txt")
    assert from_assets.content == b"from assets\n"
    assert fallback.content == b"from the site\n"
    assert from_site.content == HELLO
