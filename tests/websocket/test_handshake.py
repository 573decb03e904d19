"""Handshakes the server refuses, each with its precise answer, and the Origin policy."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import skitai
from skitai.errors import ConfigError
from tests.support.parsers import PARSERS
from tests.support.servers import serving
from tests.support.wsclient import Refused, connect
from tests.support.wsraw import TEXT, RawWebSocket, frame
from tests.websocket import seedapps


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def answer(port: int, headers: list[tuple[str, str]], path: str = "/") -> RawWebSocket:
    ws = await RawWebSocket.open(port, path, headers=headers)
    await ws.aclose()
    return ws


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("headers", "status"), [
    pytest.param([("Sec-WebSocket-Version", "8")], 426, id="old version"),
    pytest.param([("Sec-WebSocket-Version", "")], 426, id="no version"),
    pytest.param([("Sec-WebSocket-Key", "short")], 400, id="malformed key"),
    pytest.param([("Sec-WebSocket-Key", "")], 400, id="empty key"),
    pytest.param([("Connection", "keep-alive")], 400, id="no Connection: Upgrade"),
])
async def test_bad_handshakes_get_their_status(parser: str, headers: list[tuple[str, str]],
                                               status: int) -> None:
    async with serving(mount=("/", echo), http_parser=parser) as srv:
        ws = await answer(srv.port, headers)
    assert ws.status == status
    if status == 426:
        assert ws.header(b"sec-websocket-version") == b"13"


async def test_connection_upgrade_may_be_one_token_of_several() -> None:
    async with serving(mount=("/", echo)) as srv:
        ws = await RawWebSocket.open(srv.port, headers=[("Connection", "keep-alive, Upgrade")])
        try:
            assert ws.status == 101
            await ws.send(frame(TEXT, b"ok"))
            assert await ws.next_event() == "ok"
        finally:
            await ws.aclose()


def origins_test(port: int) -> list[tuple[str, int]]:
    return [(f"http://127.0.0.1:{port}", 101), (f"HTTP://127.0.0.1:{port}", 101),
            ("http://127.0.0.1", 403), (f"https://127.0.0.1:{port}", 403),
            (f"http://127.0.0.1:{port}.evil.example", 403), ("null", 403)]


async def test_by_default_only_the_servers_own_pages_may_connect() -> None:
    async with serving(mount=("/", echo)) as srv:
        host = f"127.0.0.1:{srv.port}"
        for origin, status in origins_test(srv.port):
            ws = await answer(srv.port, [("Host", host), ("Origin", origin)])
            assert ws.status == status, origin
        assert (await answer(srv.port, [("Host", host)])).status == 101  # not a browser


async def test_allowed_origins_match_exactly_never_as_substrings() -> None:
    allowed = ["https://app.example", "http://localhost:8080"]
    async with serving(mount=("/", echo), websocket_origins=allowed) as srv:
        for origin, status in [
            ("https://app.example", 101), ("https://app.example:443", 101),
            ("https://APP.example", 101), ("http://localhost:8080", 101),
            ("https://app.example.evil.com", 403), ("https://evil-app.example", 403),
            ("http://app.example", 403), ("https://app.example:8443", 403),
            ("http://localhost", 403), ("http://localhost:80801", 403), ("null", 403),
        ]:
            ws = await answer(srv.port, [("Origin", origin)])
            assert ws.status == status, origin


async def test_any_origin_with_a_star() -> None:
    async with serving(mount=("/", echo), websocket_origins=["*"]) as srv:
        for origin in ("https://anywhere.example", "null"):
            assert (await answer(srv.port, [("Origin", origin)])).status == 101


async def test_the_origin_is_checked_over_http2_too() -> None:
    async with serving(mount=("/", echo)) as srv:
        with pytest.raises(Refused) as refused:
            async with connect(srv.port, "/", "h2", origin="https://evil.example"):
                pass
        assert refused.value.status == 403
        async with connect(srv.port, "/", "h2", origin="http://localhost") as ws:  # its :authority
            await ws.send("same origin")
            assert await ws.recv() == "same origin"


@pytest.mark.parametrize("origins", [["example.com"], ["https://example.com/path"], "https://a.example",
                                     [42]])
def test_bad_origin_settings_are_refused(origins: Any) -> None:
    with pytest.raises(ConfigError):
        skitai.Config(websocket_origins=origins)


async def test_dedicated_threads_run_out_with_503() -> None:
    async with serving(mount=("/talk", seedapps.talk), websocket_threads=1) as srv:
        async with connect(srv.port, "/talk?name=a", "h1") as first:
            await first.send("hello")
            assert await first.recv() == "Hello, a"
            with pytest.raises(Refused) as refused:
                async with connect(srv.port, "/talk?name=b", "h1"):
                    pass
            assert refused.value.status == 503
        async with connect(srv.port, "/talk?name=c", "h1") as third:
            await third.send("hello")
            assert await third.recv() == "Hello, c"


def failing_init(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise RuntimeError("broken before the handshake")


def bad_tuple(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["websocket_init"] = (99, 60, None)
    start_response("200 OK", [])
    return [b""]


def no_varname(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["websocket_init"] = (skitai.WEBSOCKET_REQDATA, 60, None)
    start_response("200 OK", [])
    return [b""]


@pytest.mark.parametrize("app", [failing_init, bad_tuple, no_varname])
async def test_an_app_that_fails_its_handshake_gets_500(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(mount=("/", app)) as srv:
        ws = await answer(srv.port, [])
    assert ws.status == 500
    assert [r.name for r in caplog.records if r.levelname == "ERROR"] == ["skitai.app"]


async def test_a_room_needs_its_query_parameter() -> None:
    async with serving(mount=("/chat", seedapps.chat)) as srv:
        assert (await answer(srv.port, [], "/chat")).status == 400
        assert (await answer(srv.port, [], "/chat?other=1")).status == 400


async def test_static_directories_do_not_take_websockets(tmp_path: Any) -> None:
    (tmp_path / "index.html").write_text("hi")
    async with serving(mount=[("/", str(tmp_path))]) as srv:
        assert (await answer(srv.port, [], "/index.html")).status == 404


@pytest.mark.parametrize(("offer", "accepted"), [
    pytest.param("permessage-deflate; server_max_window_bits=abc", None, id="unparsable window bits"),
    pytest.param("permessage-deflate; client_max_window_bits=99", None, id="window bits out of range"),
    pytest.param("permessage-deflate; server_max_window_bits=abc, permessage-deflate",
                 b"permessage-deflate", id="the next offer is taken"),
    pytest.param("permessage-deflate; client_max_window_bits=9; client_no_context_takeover, "
                 "permessage-deflate", b"permessage-deflate; client_no_context_takeover; "
                 b"client_max_window_bits=9", id="the first offer alone configures it"),
    pytest.param("x-unknown, permessage-deflate; server_no_context_takeover",
                 b"permessage-deflate; server_no_context_takeover", id="unknown extensions ignored"),
])
async def test_deflate_offers_are_negotiated_never_fatal(
    offer: str, accepted: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: an offer wsproto could not parse escaped as ValueError, an ERROR and a drop."""
    async with serving(mount=("/", echo)) as srv:
        ws = await RawWebSocket.open(srv.port, headers=[("Sec-WebSocket-Extensions", offer)])
        try:
            assert ws.status == 101
            assert ws.header(b"sec-websocket-extensions") == accepted
            if accepted is None:  # no compression: the raw client can talk to it
                await ws.send(frame(TEXT, b"plain"))
                assert await ws.next_event() == "plain"
        finally:
            await ws.aclose()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
