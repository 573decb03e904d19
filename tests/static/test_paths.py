"""Nothing outside the root is ever served: traversal, hidden names, symlinks, odd files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.static.client import site_client
from tests.static.site import ACME, HELLO
from tests.support.rawhttp import RawClient
from tests.support.servers import Served, serving

SECRET = b"outside the root\n"


@pytest.fixture
def outside(site: Path) -> Path:
    """A directory next to the site root, holding a secret."""
    directory = site.parent / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(SECRET)
    (site.parent / "secret.txt").write_bytes(SECRET)
    return directory


async def _raw_get(srv: Served, target: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
    """GET a request-target exactly as given, which httpx would normalise."""
    client = await RawClient.connect(srv.host, srv.port)
    try:
        await client.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, body = await client.response()
    finally:
        await client.aclose()
    return head.status_code, body, {name: value for name, value in head.headers}


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.txt",
        b"/docs/../../secret.txt",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E%2Fsecret.txt",
        b"/docs/..%2f..%2fsecret.txt",
        b"/..%5csecret.txt",
        b"/docs/%2e%2e/%2e%2e/outside/secret.txt",
        b"/hello.txt%00.png",
        b"/hello.txt%00",
        b"/./hello.txt",
        b"//hello.txt",
        b"/docs//index.htm",
        b"/hello.txt/.",
        b"/%5chello.txt",
    ],
)
async def test_traversal_and_odd_paths_are_not_served(
    site: Path, outside: Path, target: bytes
) -> None:
    async with serving(mount=("/", str(site))) as srv:
        status, body, _ = await _raw_get(srv, target)
    assert status == 404
    assert SECRET not in body
    assert HELLO not in body


async def test_traversal_below_a_mount_point(site: Path, outside: Path) -> None:
    async with serving(mount=("/static", str(site))) as srv:
        for target in (b"/static/../secret.txt", b"/static/%2e%2e/secret.txt",
                       b"/static/%2e%2e/outside/secret.txt", b"/static/..%2fsecret.txt"):
            status, body, _ = await _raw_get(srv, target)
            assert status == 404
            assert SECRET not in body


async def test_no_open_redirect_through_a_double_slash(site: Path) -> None:
    # site/evil.example/ exists: "//evil.example" must not become Location: //evil.example/
    async with serving(mount=("/", str(site))) as srv:
        status, _, headers = await _raw_get(srv, b"//evil.example")
    assert status == 404
    assert b"location" not in headers


@pytest.mark.parametrize("path", ["/.secret", "/sub/.git/config", "/%2esecret", "/sub/.git/"])
async def test_hidden_names_are_not_served(site: Path, path: str) -> None:
    async with site_client(site) as client:
        response = await client.get(path)
    assert response.status_code == 404


async def test_well_known_is_served(site: Path) -> None:
    async with site_client(site) as client:
        response = await client.get("/.well-known/acme.txt")
    assert response.status_code == 200
    assert response.content == ACME


async def test_symlinks_leaving_the_root(site: Path, outside: Path) -> None:
    os.symlink(outside, site / "linked_dir")
    os.symlink(outside / "secret.txt", site / "linked_file.txt")
    paths = ("/linked_dir/secret.txt", "/linked_file.txt")
    async with site_client(site) as client:
        refused = [await client.get(path) for path in paths]
    async with site_client(site, follow_symlinks=True) as client:
        followed = [await client.get(path) for path in paths]
    assert [r.status_code for r in refused] == [404, 404]
    assert all(SECRET not in r.content for r in refused)
    assert [(r.status_code, r.content) for r in followed] == [(200, SECRET), (200, SECRET)]


async def test_symlinks_inside_the_root_are_served(site: Path) -> None:
    os.symlink(site / "hello.txt", site / "alias.txt")
    os.symlink(site / "docs", site / "manual")
    async with site_client(site) as client:
        alias = await client.get("/alias.txt")
        manual = await client.get("/manual/")
    assert (alias.status_code, alias.content) == (200, HELLO)
    assert manual.status_code == 200


async def test_symlinked_gz_sibling_leaving_the_root_is_ignored(site: Path, outside: Path) -> None:
    (site / "notes.txt").write_bytes(b"notes\n" * 1000)
    os.symlink(outside / "secret.txt", site / "notes.txt.gz")
    async with site_client(site) as client:
        response = await client.get("/notes.txt", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.content == b"notes\n" * 1000  # gzipped on the fly, not the secret


async def test_fifo_is_not_opened_for_reading(site: Path) -> None:
    os.mkfifo(site / "pipe.txt")  # opening it for reading without O_NONBLOCK would hang
    async with site_client(site) as client:
        response = await client.get("/pipe.txt")
    assert response.status_code == 404


async def test_dangling_symlink_is_not_found(site: Path) -> None:
    os.symlink(site / "no-such-file", site / "dangling.txt")
    async with site_client(site) as client:
        response = await client.get("/dangling.txt")
    assert response.status_code == 404
