"""gzip on the fly, precompressed `.gz` siblings, and Vary."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from skitai import Compression
from tests.static.client import site_client
from tests.static.site import BIG_TEXT, BINARY, SCRIPT, SCRIPT_GZ, SMALL_CSS

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


async def _raw(client: httpx.AsyncClient, method: str, path: str,
               headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """A response and its body as sent, before httpx decodes it."""
    async with client.stream(method, path, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


@pytest.mark.parametrize("accept", ["gzip", "gzip, deflate, br", "*", "deflate;q=1, gzip;q=0.5"])
async def test_gzip_on_the_fly(site: Path, accept: str) -> None:
    async with site_client(site) as client:
        response, body = await _raw(client, "GET", "/big.txt", {"Accept-Encoding": accept})
        identity = await client.get("/big.txt", headers=IDENTITY)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert "accept-ranges" not in response.headers
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["etag"] != "W/" + identity.headers["etag"]
    assert len(body) < len(BIG_TEXT) // 4
    assert gzip.decompress(body) == BIG_TEXT


async def test_gzip_on_the_fly_for_a_file_within_one_chunk(site: Path) -> None:
    data = b'{"list": [' + b"1, " * 1000 + b"1]}"
    (site / "list.json").write_bytes(data)
    async with site_client(site) as client:
        response, body = await _raw(client, "GET", "/list.json", GZIP)
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    assert gzip.decompress(body) == data


async def test_head_of_a_gzipped_file(site: Path) -> None:
    async with site_client(site) as client:
        get = await client.get("/big.txt", headers=GZIP)
        head = await client.head("/big.txt", headers=GZIP)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-encoding"] == "gzip"
    assert "content-length" not in head.headers
    assert head.headers["etag"] == get.headers["etag"]


async def test_identity_for_a_client_without_gzip_still_varies(site: Path) -> None:
    async with site_client(site) as client:
        for accept in ("identity", "gzip;q=0", "br"):
            response, body = await _raw(client, "GET", "/big.txt", {"Accept-Encoding": accept})
            assert "content-encoding" not in response.headers
            assert response.headers["content-length"] == str(len(BIG_TEXT))
            assert response.headers["vary"] == "Accept-Encoding"
            assert body == BIG_TEXT


@pytest.mark.parametrize(("path", "data"), [("/style.css", SMALL_CSS), ("/data.bin", BINARY)])
async def test_small_or_incompressible_files_stay_plain(site: Path, path: str, data: bytes) -> None:
    async with site_client(site) as client:
        response, body = await _raw(client, "GET", path, GZIP)
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert body == data


async def test_compression_settings_are_honoured(site: Path) -> None:
    small = Compression(min_size=10, level=1)
    async with site_client(site, compression=small) as client:
        response, body = await _raw(client, "GET", "/style.css", GZIP)
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == SMALL_CSS

    off = Compression(enabled=False)
    async with site_client(site, compression=off) as client:
        response, body = await _raw(client, "GET", "/big.txt", GZIP)
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert body == BIG_TEXT


async def test_precompressed_sibling(site: Path) -> None:
    async with site_client(site) as client:
        response, body = await _raw(client, "GET", "/app.js", GZIP)
        head = await client.head("/app.js", headers=GZIP)
        identity, plain = await _raw(client, "GET", "/app.js", IDENTITY)
    assert response.status_code == 200
    assert body == SCRIPT_GZ  # the file as it is on disk, not compressed again
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(SCRIPT_GZ))
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["vary"] == "Accept-Encoding"
    assert not response.headers["etag"].startswith("W/")
    assert response.headers["etag"] != identity.headers["etag"]
    assert head.headers["content-length"] == str(len(SCRIPT_GZ))
    assert head.headers["etag"] == response.headers["etag"]
    assert plain == SCRIPT
    assert identity.headers["vary"] == "Accept-Encoding"


async def test_precompressed_sibling_is_served_with_compression_off(site: Path) -> None:
    async with site_client(site, compression=Compression(enabled=False)) as client:
        response, body = await _raw(client, "GET", "/app.js", GZIP)
    assert response.headers["content-encoding"] == "gzip"
    assert body == SCRIPT_GZ


async def test_precompressed_sibling_has_its_own_validators(site: Path) -> None:
    async with site_client(site) as client:
        gz_etag = (await client.head("/app.js", headers=GZIP)).headers["etag"]
        plain_etag = (await client.head("/app.js", headers=IDENTITY)).headers["etag"]
        hit = await client.get("/app.js", headers={**GZIP, "If-None-Match": gz_etag})
        other = await client.get("/app.js", headers={**GZIP, "If-None-Match": plain_etag})
    assert hit.status_code == 304
    assert hit.headers["etag"] == gz_etag
    assert hit.headers["vary"] == "Accept-Encoding"
    assert other.status_code == 200


async def test_gzip_etag_revalidates(site: Path) -> None:
    async with site_client(site) as client:
        etag = (await client.head("/big.txt", headers=GZIP)).headers["etag"]
        response = await client.get("/big.txt", headers={**GZIP, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize(("path", "data"), [("/big.txt", BIG_TEXT), ("/app.js", SCRIPT)])
async def test_range_requests_get_the_identity_representation(
    site: Path, path: str, data: bytes
) -> None:
    async with site_client(site) as client:
        response, body = await _raw(client, "GET", path, {**GZIP, "Range": "bytes=10-19"})
    assert response.status_code == 206
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert body == data[10:20]


async def test_if_range_with_the_gzip_etag_sends_the_whole_identity(site: Path) -> None:
    # A client resuming a gzip download must not get identity bytes to append.
    async with site_client(site) as client:
        etag = (await client.head("/app.js", headers=GZIP)).headers["etag"]
        headers = {**GZIP, "Range": "bytes=10-", "If-Range": etag}
        response, body = await _raw(client, "GET", "/app.js", headers)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert body == SCRIPT
