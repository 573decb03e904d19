"""Range requests: single and multiple ranges, 416, If-Range."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.static.client import site_client
from tests.static.site import BIG_TEXT, BINARY, LAST_MODIFIED, SCRIPT

SIZE = len(BINARY)


async def _get(site: Path, path: str, headers: dict[str, str]) -> httpx.Response:
    async with site_client(site, headers={"Accept-Encoding": "identity"}) as client:
        return await client.get(path, headers=headers)


def _parts(response: httpx.Response) -> list[tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part of a multipart/byteranges body."""
    content_type = response.headers["content-type"]
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type)
    assert match, content_type
    delimiter = b"\r\n--" + match.group(1).encode()
    body = response.content
    assert body.startswith(delimiter) and body.endswith(delimiter + b"--\r\n")
    parts = []
    for chunk in body[: -len(delimiter + b"--\r\n")].split(delimiter)[1:]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().strip().split("\r\n"))
        parts.append((fields["Content-Type"], fields["Content-Range"], data))
    return parts


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-100", 100, 100),
        ("bytes=-10", SIZE - 10, SIZE - 1),
        ("bytes=-999999", 0, SIZE - 1),
        (f"bytes={SIZE - 5}-", SIZE - 5, SIZE - 1),
        ("bytes=1000-99999999999999999999", 1000, SIZE - 1),
        ("bytes=5-7 ,", 5, 7),
        ("Bytes=5-7", 5, 7),
        ("bytes=0-9,5-19", 0, 19),  # overlapping ranges are merged
        ("bytes=20-29,10-19", 10, 29),  # so are touching ones
    ],
)
async def test_single_range(site: Path, spec: str, first: int, last: int) -> None:
    response = await _get(site, "/data.bin", {"Range": spec})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "application/octet-stream"
    assert "etag" in response.headers
    assert response.content == BINARY[first : last + 1]


async def test_range_over_several_chunks(site: Path) -> None:
    first, last = 1000, 1000 + 600_000
    response = await _get(site, "/big.txt", {"Range": f"bytes={first}-{last}"})
    assert response.status_code == 206
    assert response.content == BIG_TEXT[first : last + 1]


async def test_multiple_ranges(site: Path) -> None:
    response = await _get(site, "/data.bin", {"Range": "bytes=50-59, -5, 0-1"})
    assert response.status_code == 206
    assert int(response.headers["content-length"]) == len(response.content)
    assert "content-range" not in response.headers
    assert _parts(response) == [  # in the order asked for
        ("application/octet-stream", f"bytes 50-59/{SIZE}", BINARY[50:60]),
        ("application/octet-stream", f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}", BINARY[-5:]),
        ("application/octet-stream", f"bytes 0-1/{SIZE}", BINARY[0:2]),
    ]


async def test_multiple_ranges_larger_than_a_chunk(site: Path) -> None:
    spec = "bytes=0-299999,400000-"
    response = await _get(site, "/big.txt", {"Range": spec})
    assert response.status_code == 206
    size = len(BIG_TEXT)
    assert [(r, d) for _, r, d in _parts(response)] == [
        (f"bytes 0-299999/{size}", BIG_TEXT[:300000]),
        (f"bytes 400000-{size - 1}/{size}", BIG_TEXT[400000:]),
    ]


async def test_multipart_parts_carry_the_text_charset(site: Path) -> None:
    response = await _get(site, "/app.js", {"Range": "bytes=0-4,10-14"})
    assert [(t, d) for t, _, d in _parts(response)] == [
        ("text/javascript; charset=utf-8", SCRIPT[0:5]),
        ("text/javascript; charset=utf-8", SCRIPT[10:15]),
    ]


@pytest.mark.parametrize("spec", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0",
                                  f"bytes=-0,{SIZE}-"])
async def test_unsatisfiable_range_is_416(site: Path, spec: str) -> None:
    response = await _get(site, "/data.bin", {"Range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize(
    "spec",
    ["bytes=5-3", "items=0-9", "bytes=abc", "bytes=", "bytes=-", "bytes=1-2-3", "0-9",
     "bytes=0-9,x", "bytes=" + "1" * 5000 + "-",
     "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(33))],
)
async def test_invalid_range_is_ignored(site: Path, spec: str) -> None:
    response = await _get(site, "/data.bin", {"Range": spec})
    assert response.status_code == 200
    assert response.content == BINARY


async def test_range_on_an_empty_file_sends_it_whole(site: Path) -> None:
    response = await _get(site, "/empty.txt", {"Range": "bytes=0-"})
    assert response.status_code == 200
    assert response.content == b""


async def test_head_ignores_range(site: Path) -> None:
    async with site_client(site) as client:
        response = await client.head("/data.bin", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)


async def test_if_range(site: Path) -> None:
    async with site_client(site, headers={"Accept-Encoding": "identity"}) as client:
        etag = (await client.head("/data.bin")).headers["etag"]

        async def status(if_range: str) -> int:
            headers = {"Range": "bytes=0-9", "If-Range": if_range}
            response = await client.get("/data.bin", headers=headers)
            assert len(response.content) == (10 if response.status_code == 206 else SIZE)
            return response.status_code

        assert await status(etag) == 206
        assert await status(LAST_MODIFIED) == 206
        assert await status('"other"') == 200
        assert await status("W/" + etag) == 200  # If-Range needs a strong match
        assert await status("Mon, 13 Nov 2023 10:00:00 GMT") == 200
        assert await status("not a date") == 200


async def test_if_range_date_is_not_trusted_when_gzip_could_have_been_sent(site: Path) -> None:
    # big.txt may have reached a gzip-accepting client gzipped, with this same
    # Last-Modified: the date cannot say which bytes the client holds.
    async with site_client(site) as client:
        headers = {"Range": "bytes=0-9", "If-Range": LAST_MODIFIED}
        gzip_client = await client.get("/big.txt", headers={**headers, "Accept-Encoding": "gzip"})
        plain_client = await client.get(
            "/big.txt", headers={**headers, "Accept-Encoding": "identity"}
        )
    assert gzip_client.status_code == 200
    assert gzip_client.content == BIG_TEXT
    assert "content-encoding" not in gzip_client.headers  # a Range request gets identity
    assert plain_client.status_code == 206


async def test_if_range_date_is_weak_until_its_second_is_over(site: Path) -> None:
    # A file modified in the current second (here: stamped in the future)
    # may change again within it, so its date validates nothing.
    future = time.time() + 3600
    os.utime(site / "data.bin", (future, future))
    async with site_client(site, headers={"Accept-Encoding": "identity"}) as client:
        last_modified = (await client.head("/data.bin")).headers["last-modified"]
        headers = {"Range": "bytes=0-9", "If-Range": last_modified}
        response = await client.get("/data.bin", headers=headers)
    assert response.status_code == 200
    assert response.content == BINARY
