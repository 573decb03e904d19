"""GET and HEAD of files and directories: bodies, headers, index files, redirects, methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.static.client import site_client
from tests.static.site import BIG_TEXT, BINARY, DOCS_INDEX, HELLO, INDEX, LAST_MODIFIED

IDENTITY = {"Accept-Encoding": "identity"}


async def test_get_file(site: Path) -> None:
    async with site_client(site, headers=IDENTITY, static_max_age=60) as client:
        response = await client.get("/hello.txt")
    assert response.status_code == 200
    assert response.content == HELLO
    headers = response.headers
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(HELLO))
    assert headers["last-modified"] == LAST_MODIFIED
    assert headers["cache-control"] == "max-age=60"
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    assert "content-encoding" not in headers
    assert "vary" not in headers  # text too short to gzip, and no .gz sibling


async def test_default_max_age_is_300(site: Path) -> None:
    """`static_max_age` defaults to 300 seconds (docs/reference/configuration.md)."""
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get("/hello.txt")
        head = await client.head("/data.bin")
    assert response.status_code == 200 and response.content == HELLO
    assert response.headers["cache-control"] == "max-age=300"
    assert head.headers["cache-control"] == "max-age=300"


async def test_head_has_the_length_and_no_body(site: Path) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        get = await client.get("/data.bin")
        head = await client.head("/data.bin")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(BINARY))
    for name in ("content-type", "etag", "last-modified", "cache-control", "accept-ranges"):
        assert head.headers[name] == get.headers[name]


async def test_etag_is_strong_and_stable(site: Path) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        first = await client.get("/hello.txt")
        again = await client.get("/hello.txt")
        (site / "hello.txt").write_bytes(b"changed\n")
        changed = await client.get("/hello.txt")
    assert not first.headers["etag"].startswith("W/")
    assert first.headers["etag"] == again.headers["etag"]
    assert changed.headers["etag"] != first.headers["etag"]
    assert changed.content == b"changed\n"


@pytest.mark.parametrize("path", ["/data.bin", "/big.txt"])
async def test_files_larger_than_a_chunk_arrive_whole(site: Path, path: str) -> None:
    expected = (site / path.lstrip("/")).read_bytes()
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(expected))
    assert response.content == expected
    assert len(BIG_TEXT) > 2 * 262144


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/page.json", "application/json"),
        ("/data.bin", "application/octet-stream"),
        ("/README", "application/octet-stream"),
        ("/archive.tar.gz", "application/gzip"),
        ("/app.js.gz", "application/gzip"),
    ],
)
async def test_content_types(site: Path, path: str, content_type: str) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert "content-encoding" not in response.headers  # an archive asked for is sent as it is


async def test_empty_file(site: Path) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get("/empty.txt")
    assert response.status_code == 200
    assert response.headers["content-length"] == "0"
    assert response.content == b""


async def test_non_ascii_name(site: Path) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get("/caf%C3%A9.txt")
    assert response.status_code == 200
    assert response.content == "caf\u00e9\n".encode()


@pytest.mark.parametrize(
    ("path", "body"),
    [("/", INDEX), ("/docs/", DOCS_INDEX), ("/both/", b"html wins\n")],
)
async def test_directory_index(site: Path, path: str, body: bytes) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/docs", "/docs/"),
        ("/docs?page=2&x=%2F", "/docs/?page=2&x=%2F"),
        ("/a%20b", "/a%20b/"),
        ("/caf%C3%A9", "/caf%C3%A9/"),
    ],
)
async def test_directory_without_slash_redirects(site: Path, path: str, location: str) -> None:
    async with site_client(site) as client:
        response = await client.get(path)
        followed = await client.get(path, follow_redirects=True)
    assert response.status_code == 301
    assert response.headers["location"] == location
    assert followed.status_code == 200


@pytest.mark.parametrize("path", ["/empty/", "/missing.txt", "/missing/", "/hello.txt/"])
async def test_nothing_to_serve_is_404(site: Path, path: str) -> None:
    async with site_client(site) as client:
        response = await client.get(path)
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/hello.txt"), ("PUT", "/"), ("DELETE", "/docs"), ("OPTIONS", "/data.bin"),
])
async def test_other_methods_get_405(site: Path, method: str, path: str) -> None:
    async with site_client(site) as client:
        response = await client.request(method, path)
        missing = await client.request(method, "/missing.txt")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert missing.status_code == 404
