"""Conditional requests, evaluated in the order of RFC 9110 13.2.2."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.static.client import site_client
from tests.static.site import HELLO, LAST_MODIFIED

IDENTITY = {"Accept-Encoding": "identity"}
EARLIER = "Mon, 13 Nov 2023 10:00:00 GMT"
LATER = "Wed, 15 Nov 2023 10:00:00 GMT"


async def _etag_and_answer(site: Path, headers: dict[str, str], method: str = "GET",
                           path: str = "/hello.txt") -> tuple[str, httpx.Response]:
    """The file's ETag, then the answer to a request with `headers` ({etag} filled in)."""
    async with site_client(site, headers=IDENTITY, static_max_age=120) as client:
        etag = (await client.get(path)).headers["etag"]
        filled = {name: value.format(etag=etag) for name, value in headers.items()}
        return etag, await client.request(method, path, headers=filled)


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", '"other", {etag}, "more"', "W/{etag}", "*", '"other",{etag}'],
)
async def test_if_none_match_hit_is_304(site: Path, if_none_match: str) -> None:
    etag, response = await _etag_and_answer(site, {"If-None-Match": if_none_match})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "max-age=120"
    assert "content-length" not in response.headers


async def test_if_none_match_on_head(site: Path) -> None:
    _, response = await _etag_and_answer(site, {"If-None-Match": "{etag}"}, method="HEAD")
    assert response.status_code == 304


async def test_if_none_match_miss_is_200(site: Path) -> None:
    _, response = await _etag_and_answer(site, {"If-None-Match": '"other", W/"else"'})
    assert response.status_code == 200
    assert response.content == HELLO


@pytest.mark.parametrize("since", [LAST_MODIFIED, LATER, "Wednesday, 15-Nov-23 10:00:00 GMT",
                                   "Wed Nov 15 10:00:00 2023", LAST_MODIFIED + "; length=20"])
async def test_if_modified_since_not_modified_is_304(site: Path, since: str) -> None:
    etag, response = await _etag_and_answer(site, {"If-Modified-Since": since})
    assert response.status_code == 304
    assert response.headers["etag"] == etag


@pytest.mark.parametrize("since", [EARLIER, "not a date", ""])
async def test_if_modified_since_modified_or_invalid_is_200(site: Path, since: str) -> None:
    _, response = await _etag_and_answer(site, {"If-Modified-Since": since})
    assert response.status_code == 200
    assert response.content == HELLO


async def test_if_none_match_miss_overrides_if_modified_since(site: Path) -> None:
    _, response = await _etag_and_answer(
        site, {"If-None-Match": '"other"', "If-Modified-Since": LATER}
    )
    assert response.status_code == 200


async def test_if_none_match_hit_overrides_if_modified_since(site: Path) -> None:
    _, response = await _etag_and_answer(
        site, {"If-None-Match": "{etag}", "If-Modified-Since": EARLIER}
    )
    assert response.status_code == 304


@pytest.mark.parametrize(("headers", "status"), [
    ({"If-Match": "{etag}"}, 200),
    ({"If-Match": "*"}, 200),
    ({"If-Match": '"other"'}, 412),
    ({"If-Match": "W/{etag}"}, 412),  # If-Match compares strongly
    ({"If-Unmodified-Since": LATER}, 200),
    ({"If-Unmodified-Since": EARLIER}, 412),
    ({"If-Match": "{etag}", "If-Unmodified-Since": EARLIER}, 200),  # If-Match wins
    ({"If-Match": '"other"', "If-None-Match": "{etag}"}, 412),  # checked first
])
async def test_if_match_and_if_unmodified_since(
    site: Path, headers: dict[str, str], status: int
) -> None:
    _, response = await _etag_and_answer(site, headers)
    assert response.status_code == status


async def test_changed_file_is_sent_again(site: Path) -> None:
    async with site_client(site, headers=IDENTITY) as client:
        etag = (await client.get("/hello.txt")).headers["etag"]
        (site / "hello.txt").write_bytes(b"new\n")
        response = await client.get("/hello.txt", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.content == b"new\n"
