"""One access line per request, in the seed's field order, safe against client text."""

from __future__ import annotations

import re
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from tests.support import apps
from tests.support.servers import serving

LINE = re.compile(
    r'(?P<client>127\.0\.0\.1:\d+) (?P<host>\S+) "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r"(?P<bytes_in>\d+) (?P<bytes_out>\d+) (?P<gtxnid>\S+) (?P<ltxnid>\d+) "
    r'(?P<user>-|"[^"]*") (?P<agent>-|"(?:[^"\\]|\\.)*") (?P<handling>\d+)ms (?P<transfer>\d+)ms$'
)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "skitai.access"]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m]


async def test_one_line_per_request_in_the_seed_order(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/", apps.echo)) as srv:
        async with httpx.AsyncClient(base_url=srv.url, headers={"User-Agent": "tester/1.0"}) as client:
            await client.post("/x?y=1", content=b"12345")
            await client.get("/")
    first, second = access_lines(caplog)
    assert first["host"] == f"127.0.0.1:{srv.port}"
    assert first["request"] == "POST /x?y=1 HTTP/1.1"
    assert first["status"] == "200"
    assert (first["bytes_in"], first["bytes_out"]) == ("5", "5")
    assert re.fullmatch(r"GTID-[0-9A-F]{6}-C\d+-R1", first["gtxnid"])
    assert first["ltxnid"] == "1000"
    assert first["user"] == "-"
    assert first["agent"] == '"tester/1.0"'
    assert second["gtxnid"].endswith("-R2")  # same connection, next request


async def test_incoming_transaction_ids_are_kept_when_well_formed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/", apps.hello)) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            await client.get("/", headers={"X-Gtxn-Id": "GTID-C3-R8", "X-Ltxn-Id": "1001"})
            await client.get("/", headers={"X-Gtxn-Id": "evil id \"with\" spaces", "X-Ltxn-Id": "1"})
            await client.get("/", headers={"X-Gtxn-Id": "a" * 500, "X-Ltxn-Id": "x"})
            await client.get("/", headers={"X-Gtxn-Id": "GTID-ok", "X-Ltxn-Id": "12abc"})
    kept, spaced, long_id, bad_ltxn = access_lines(caplog)
    assert (kept["gtxnid"], kept["ltxnid"]) == ("GTID-C3-R8", "2001")
    assert spaced["gtxnid"].startswith("GTID-") and spaced["ltxnid"] == "1000"
    assert long_id["gtxnid"].startswith("GTID-") and len(long_id["gtxnid"]) < 40
    assert (bad_ltxn["gtxnid"], bad_ltxn["ltxnid"]) == ("GTID-ok", "1000")


async def test_client_text_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/", apps.hello)) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            await client.get("/", headers={"User-Agent": 'x" 200 0 0 fake "\\'})
    (line,) = access_lines(caplog)
    assert line["agent"] == '"x\\" 200 0 0 fake \\"\\\\"'


async def test_access_log_can_be_switched_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/", apps.hello), access_log=False) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            await client.get("/")
    assert [r for r in caplog.records if r.name == "skitai.access"] == []


def signs_in(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Authenticates the request its own way and reports the user as CGI does."""
    if environ.get("HTTP_X_TOKEN") == "hans-token":
        environ["REMOTE_USER"] = "hans"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("REMOTE_USER", "nobody").encode()]


async def test_the_user_field_is_the_remote_user_the_app_reports(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/", validator(signs_in))) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/", headers={"X-Token": "hans-token"})).text == "hans"
            # a client cannot name itself: REMOTE_USER never comes from request headers
            assert (await client.get("/", headers={"Remote-User": "mallory"})).text == "nobody"
    signed_in, anonymous = access_lines(caplog)
    assert (signed_in["user"], anonymous["user"]) == ('"hans"', "-")
