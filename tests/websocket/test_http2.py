"""WebSocket over HTTP/2 (RFC 8441): extended CONNECT streams beside ordinary ones."""

from __future__ import annotations

import anyio
import h2.settings
import pytest

import skitai
from tests.support.h2peer import H2Peer
from tests.support.servers import serving
from tests.support.wsclient import Closed, connect
from tests.support.wsraw import MASK

codes: list[int] = []
ended: list[anyio.Event] = []


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        codes.append(ws.close_code or 0)
        for event in ended:
            event.set()


def hello(environ: dict[str, object], start_response: object) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [b"hello"]


async def test_the_server_offers_extended_connect() -> None:
    async with serving(mount=("/", echo)) as srv:
        peer = await H2Peer.connect(srv.host, srv.port)
        try:
            await peer.start()
            assert peer.server_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
        finally:
            await peer.aclose()


async def test_websockets_and_requests_share_a_connection() -> None:
    async with serving(mount=[("/ws", echo), ("/", hello)]) as srv:
        peer = await H2Peer.connect(srv.host, srv.port)
        try:
            await peer.start()
            async with connect(srv.port, "/ws", "h2", peer=peer) as a, \
                    connect(srv.port, "/ws", "h2", peer=peer) as b:
                await a.send("to a")
                await b.send(b"to b" * 100_000)  # past the stream's flow-control windows
                get = await peer.request(b"GET", b"/")
                assert await b.recv() == b"to b" * 100_000
                assert await a.recv() == "to a"
                result = await peer.response(get)
                assert (result.status, bytes(result.data)) == (200, b"hello")
                sid = b.sid
            assert peer.streams[sid].ended  # the close ended the stream (END_STREAM)
        finally:
            await peer.aclose()


async def test_a_reset_stream_ends_the_session_as_1006() -> None:
    codes.clear()
    done = anyio.Event()
    ended[:] = [done]
    async with serving(mount=("/", echo)) as srv:
        peer = await H2Peer.connect(srv.host, srv.port)
        try:
            await peer.start()
            async with connect(srv.port, "/", "h2", peer=peer) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                peer.conn.reset_stream(ws.sid)
                await peer.flush()
                with anyio.fail_after(10):
                    await done.wait()
                ws.closed = Closed(1006)  # nothing left to close
        finally:
            await peer.aclose()
    assert codes == [1006]


async def test_an_unknown_protocol_is_not_a_websocket() -> None:
    async with serving(mount=("/", echo)) as srv:
        peer = await H2Peer.connect(srv.host, srv.port)
        try:
            await peer.start()
            sid = await peer.request(b"CONNECT", b"/", [(b":protocol", b"chat")], end_stream=False)
            assert (await peer.response(sid)).status == 405
        finally:
            await peer.aclose()


@pytest.mark.parametrize("mask", [MASK])
async def test_protocol_errors_close_the_stream_with_the_code(mask: bytes) -> None:
    async with serving(mount=("/", echo)) as srv, connect(srv.port, "/", "h2") as ws:
        await ws.send_raw(b"\x83\x80" + mask)  # a reserved opcode
        assert (await ws.wait_closed()).code == 1002
