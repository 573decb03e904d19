"""One access line per WebSocket session, in the access-line format, written when it ends."""

from __future__ import annotations

import re

import pytest

import skitai
from tests.support.servers import serving
from tests.websocket.conftest import Transport

LINE = re.compile(
    r'(?P<client>127\.0\.0\.1:\d+) (?P<host>\S+) "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r"(?P<bytes_in>\d+) (?P<bytes_out>\d+) (?P<gtxnid>GTID-\S+) (?P<ltxnid>\d+) "
    r'(?P<user>-|"[^"]*") (?P<agent>-|"(?:[^"\\]|\\.)*") (?P<handling>\d+)ms (?P<open>\d+)ms '
    r"ws (?P<messages_in>\d+)/(?P<messages_out>\d+) (?P<close>\d{4})$"
)


@skitai.websocket
async def twice(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)
        await ws.send(message)


async def test_a_session_is_one_line_when_it_ends(transport: Transport,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="skitai.access")
    async with serving(mount=("/chat", twice), **transport.options) as srv:
        async with transport.connect(srv.port, "/chat?room=1") as ws:
            await ws.send("hello")  # 5 bytes in, 10 out
            assert [await ws.recv(), await ws.recv()] == ["hello", "hello"]
            await ws.send(b"\x00" * 1000)
            assert len(await ws.recv()) == len(await ws.recv()) == 1000
            assert not [r for r in caplog.records if r.name == "skitai.access"]  # not before its end
            assert await ws.close(4001) == 4001
    lines = [r.getMessage() for r in caplog.records if r.name == "skitai.access"]
    assert len(lines) == 1, lines
    line = LINE.match(lines[0])
    assert line is not None, lines[0]
    h2 = transport.name == "h2"
    assert line["request"] == ("CONNECT /chat?room=1 HTTP/2 #1" if h2 else "GET /chat?room=1 HTTP/1.1")
    assert line["status"] == ("200" if h2 else "101")
    assert (line["bytes_in"], line["bytes_out"]) == ("1005", "2010")
    assert (line["messages_in"], line["messages_out"], line["close"]) == ("2", "4", "4001")
    assert line["ltxnid"] == "1000"
