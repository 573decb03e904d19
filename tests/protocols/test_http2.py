"""The HTTP/2 driver at the frame level, with a client-role h2 peer.

Most tests talk to a real server (`serving()`) over loopback, HTTP/2 by
prior knowledge on the plain port, so they also cross the HTTP/1.x drivers'
preface sniffing (the directory's conftest runs them with both parsers);
the rest drive `HTTP2Connection` over a socket pair with a tiny handler.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import anyio
import anyio.abc
import h2.events
import h2.exceptions
import h2.settings
import h11
import pytest
import trustme
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

import skitai
from skitai.config import Limits
from skitai.protocols.events import Exchange
from skitai.protocols.http2 import (
    CONNECTION_WINDOW,
    MAX_CONCURRENT_STREAMS,
    STREAM_WINDOW,
    HTTP2Connection,
)
from skitai.protocols.timeouts import ConnectionControl
from skitai.wsgi import PREBUFFER
from tests.support import apps
from tests.support.h2peer import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    PRIORITY,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    H2Peer,
    StreamResult,
    frame,
    get,
    http2_driver,
    literal_block,
    socket_pair,
)
from tests.support.rawhttp import RawClient
from tests.support.servers import HTTP_PARSER, serving

WAIT = 10  # seconds any one step may take
MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE, which the server leaves at its default
GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
POST = [(b":method", b"POST"), *GET[1:]]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def pattern(size: int) -> bytes:
    """`size` bytes that are not all alike, so a misplaced piece shows."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Reads the body in pieces; answers its length and SHA-256."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    body = f"{size} {digest.hexdigest()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


digest = validator(_digest)


class Gate:
    """Apps wait here (bounded) until the test releases them; the test sees who arrived."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self._arrival = threading.Condition()
        self.count = 0

    def wait_in_app(self) -> None:
        with self._arrival:
            self.count += 1
            self._arrival.notify_all()
        assert self.released.wait(WAIT), "never released"

    async def arrived(self, count: int = 1) -> None:
        def wait() -> bool:
            with self._arrival:
                return self._arrival.wait_for(lambda: self.count >= count, WAIT)

        assert await anyio.to_thread.run_sync(wait), f"{count} requests never reached the app"


def gated(gate: Gate, body: bytes = b"done") -> WsgiApp:
    """An app that waits at `gate` for paths under /wait, and answers at once elsewhere."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/wait"):
            gate.wait_in_app()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return validator(app)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return str(certfile), str(keyfile)


def h2_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2"])
    return context


async def read_until_closed(stream: anyio.abc.ByteStream) -> bytes:
    """Everything the server sends until it closes (bounded by WAIT)."""
    received = b""
    with anyio.fail_after(WAIT):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


# ------------------------------------------------------------------ basics


async def test_get_and_post_on_one_connection() -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        got = await peer.response(await peer.request(b"GET", b"/"))
        posted = await peer.response(await peer.request(
            b"POST", b"/upload", [(b"content-type", b"text/plain"), (b"content-length", b"11")],
            body=b"hello world"))
        await peer.aclose()
    assert (got.status, bytes(got.data), got.ended) == (200, b"", True)
    assert got.header(b"server") == b"Skitai"
    assert got.header(b"date") is not None
    assert (posted.status, bytes(posted.data), posted.ended) == (200, b"hello world", True)
    assert posted.header(b"content-length") == b"11"


async def test_settings_are_sent_and_acknowledged() -> None:
    async with serving(mount=("/", apps.hello), max_header_block=20000) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        await peer.ping()  # the connection's WINDOW_UPDATE came before the PING's answer
        await peer.aclose()
    assert peer.settings_acked  # ours
    settings = peer.server_settings
    assert settings[SettingCodes.MAX_CONCURRENT_STREAMS] == MAX_CONCURRENT_STREAMS
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == STREAM_WINDOW
    assert settings[SettingCodes.MAX_HEADER_LIST_SIZE] == 20000
    assert (0, CONNECTION_WINDOW - 65535) in peer.window_updates


async def test_ping_is_answered_with_its_data() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        await peer.ping(b"\x00\xffabcd\x01\x02")
        await peer.ping(b"another1")
        await peer.aclose()
    assert peer.pings == [b"\x00\xffabcd\x01\x02", b"another1"]


async def test_unknown_frame_types_and_settings_are_ignored() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        await peer.send_raw(frame(0xFA, 0xFF, 0, b"whatever") + frame(0x20, 0, 7, b"x" * 100)
                            + frame(SETTINGS, 0, 0, b"\x7f\x7f\x00\x00\x00\x01"))
        await peer.ping()
        result = await peer.response(await peer.request())
        await peer.aclose()
    assert (result.status, bytes(result.data)) == (200, b"Hello World")
    assert peer.terminated is None


async def test_headers_split_over_continuation_frames() -> None:
    async with serving(mount=("/", apps.show_environ)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid, block = await peer.header_block([*GET, (b"x-long", b"v" * 3000)])
        await peer.send_raw(frame(HEADERS, END_STREAM, sid, block[:10])
                            + frame(CONTINUATION, 0, sid, block[10:1000])
                            + frame(CONTINUATION, END_HEADERS, sid, block[1000:]))
        result = await peer.response(sid)
        await peer.aclose()
    assert result.status == 200
    assert b'"HTTP_X_LONG": "' + b"v" * 3000 in result.data


async def test_request_trailers_end_the_body() -> None:
    async def handler(exchange: Exchange) -> None:
        body = b""
        while piece := await exchange.receive_body(65536):
            body += piece
        await exchange.respond(200, [(b"content-type", b"text/plain")], b"got " + body)

    async with http2_driver(handler) as (peer, _):
        await peer.start()
        sid = await peer.request(b"POST", b"/", [(b"te", b"trailers")], body=b"payload",
                                 end_stream=False)
        peer.conn.send_headers(sid, [(b"x-checksum", b"1234")], end_stream=True)
        await peer.flush()
        result = await peer.response(sid)
    assert (result.status, bytes(result.data)) == (200, b"got payload")


async def test_response_trailers_reach_the_client() -> None:
    async def handler(exchange: Exchange) -> None:
        await exchange.start_response(200, [(b"content-type", b"application/grpc")])
        await exchange.send_body(b"\x00\x00\x00\x00\x02hi")
        await exchange.end_response(trailers=[(b"grpc-status", b"0"), (b"grpc-message", b"OK")])

    async with http2_driver(handler) as (peer, _):
        await peer.start()
        result = await peer.response(await peer.request(b"POST", b"/svc/Method", body=b""))
    assert result.status == 200
    assert bytes(result.data) == b"\x00\x00\x00\x00\x02hi"
    assert result.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"OK")]
    assert result.ended


async def test_head_gets_headers_and_end_stream_only() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        result = await peer.response(await peer.request(b"HEAD", b"/"))
        await peer.aclose()
    assert (result.status, bytes(result.data), result.ended) == (200, b"", True)


async def test_h2c_upgrade_with_a_body_continues_on_stream_1() -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port)
        peer = H2Peer(stream)
        settings = peer.conn.initiate_upgrade_connection()
        await stream.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\nContent-Length: 11\r\n\r\n"
            b"hello world")
        head = b""
        with anyio.fail_after(WAIT):
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
        head, rest = head.split(b"\r\n\r\n", 1)
        await peer.flush()  # the preface and our SETTINGS
        peer.conn.receive_data(rest)
        result = await peer.response(1)
        again = await peer.response(await peer.request(b"POST", b"/", [(b"content-length", b"6")],
                                                       body=b"second"))
        await peer.aclose()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"upgrade: h2c" in head.lower()
    assert (result.status, bytes(result.data)) == (200, b"hello world")
    assert (again.status, bytes(again.data)) == (200, b"second")


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each whole frame in `data`."""
    frames = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        frames.append((data[3], data[9:9 + length]))
        data = data[9 + length:]
    return frames


async def http11_answer(client: RawClient) -> tuple[h11.Response, bytes]:
    """The next response, which must not be a 101 (h11 would wait for ever after one)."""
    head = b""
    with anyio.fail_after(WAIT):
        while b"\r\n\r\n" not in head:
            head += await client.stream.receive()
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    client.conn.receive_data(head)
    return await client.response(within=WAIT)


UPGRADE_HEAD = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\n")


@pytest.mark.parametrize(("what", "settings"), [
    ("not base64", b"abc"),
    ("not whole settings", b"AAAA"),
    ("SETTINGS_ENABLE_PUSH of 2", b"AAIAAAAC"),
    ("SETTINGS_MAX_FRAME_SIZE below 16384", b"AAUAAD__"),
    ("characters outside base64url", b"AAIA AAAA"),
])
async def test_h2c_upgrade_with_bad_settings_is_served_on_http11(
    what: str, settings: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(UPGRADE_HEAD + b"HTTP2-Settings: " + settings
                          + b"\r\nContent-Length: 11\r\n\r\nhello world")
        client.conn.send(h11.Request(method=b"POST", target=b"/echo", headers=[
            (b"host", b"x"), (b"connection", b"Upgrade, HTTP2-Settings"), (b"upgrade", b"h2c"),
            (b"http2-settings", settings), (b"content-length", b"11")]))
        client.conn.send(h11.Data(data=b"hello world"))
        client.conn.send(h11.EndOfMessage())
        head, body = await http11_answer(client)
        client.next_cycle()
        await client.send(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        client.conn.send(h11.Request(method=b"GET", target=b"/again", headers=[(b"host", b"x")]))
        client.conn.send(h11.EndOfMessage())
        again, _ = await http11_answer(client)
        await client.aclose()
    assert (head.status_code, body) == (200, b"hello world"), what
    assert head.http_version == b"1.1"
    assert again.status_code == 200
    assert errors_logged(caplog) == []


async def test_h2c_upgrade_with_a_large_body_is_served_on_http11() -> None:
    body = pattern(1 << 20)
    async with serving(mount=("/", digest)) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port)
        peer = H2Peer(stream)
        settings = peer.conn.initiate_upgrade_connection()
        client = RawClient(stream)
        client.conn.send(h11.Request(method=b"POST", target=b"/", headers=[
            (b"host", b"x"), (b"connection", b"Upgrade, HTTP2-Settings"), (b"upgrade", b"h2c"),
            (b"http2-settings", settings), (b"content-length", str(len(body)).encode())]))

        async def upload() -> None:
            await client.send(UPGRADE_HEAD.replace(b"/echo", b"/") + b"HTTP2-Settings: " + settings
                              + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

        async with anyio.create_task_group() as tg:
            tg.start_soon(upload)
            client.conn.send(h11.Data(data=body))
            client.conn.send(h11.EndOfMessage())
            head, answer = await http11_answer(client)
        await client.aclose()
    assert (head.status_code, head.http_version) == (200, b"1.1")
    assert answer.decode() == f"{len(body)} {sha256(body)}"


async def test_h2c_upgrade_with_a_chunked_body_is_served_on_http11() -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port)
        settings = H2Peer(stream).conn.initiate_upgrade_connection()
        client = RawClient(stream)
        await client.send(UPGRADE_HEAD + b"HTTP2-Settings: " + settings
                          + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        client.conn.send(h11.Request(method=b"POST", target=b"/echo", headers=[
            (b"host", b"x"), (b"transfer-encoding", b"chunked")]))
        client.conn.send(h11.Data(data=b"hello"))
        client.conn.send(h11.EndOfMessage())
        head, answer = await http11_answer(client)
        await client.aclose()
    assert (head.status_code, head.http_version, answer) == (200, b"1.1", b"hello")


# ------------------------------------------------------------------ flow control


async def test_one_mebibyte_upload_completes() -> None:
    body = pattern(1 << 20)
    async with serving(mount=("/", digest)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid = await peer.request(b"POST", b"/", [(b"content-length", str(len(body)).encode())],
                                 body=body)
        result = await peer.response(sid)
        await peer.aclose()
    assert (result.status, result.data.decode()) == (200, f"{len(body)} {sha256(body)}")


async def test_request_windows_open_only_as_the_app_reads() -> None:
    # More streams than the connection window holds at one stream window each.
    count = CONNECTION_WINDOW // STREAM_WINDOW + 2
    size = STREAM_WINDOW + (256 << 10)
    body = pattern(size)
    gate = Gate()

    def slow_reader(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        gate.wait_in_app()
        return _digest(environ, start_response)

    async with serving(mount=("/", validator(slow_reader)), threads=4) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        conn = peer.conn
        sids = [await peer.request(b"POST", b"/", [(b"content-length", str(size).encode())],
                                   end_stream=False) for _ in range(count)]
        sent = dict.fromkeys(sids, 0)

        async def fill() -> bool:
            """Send on every stream what its window allows; True if anything went."""
            progressed = False
            for sid in sids:
                while sent[sid] < size:
                    window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size,
                                 size - sent[sid])
                    if window <= 0:
                        break
                    conn.send_data(sid, body[sent[sid]:sent[sid] + window],
                                   end_stream=sent[sid] + window == size)
                    sent[sid] += window
                    progressed = True
                await peer.flush()
            return progressed

        # Fill the windows until three PING round trips in a row bring no more.
        quiet = 0
        with anyio.fail_after(60):
            while quiet < 3:
                progressed = await fill()
                updates = len(peer.window_updates)
                await peer.ping()
                quiet = 0 if progressed or len(peer.window_updates) > updates else quiet + 1
        held_window = conn.outbound_flow_control_window
        held_streams = {sid: conn.local_flow_control_window(sid) for sid in sids}
        acknowledged = {sid: sum(d for s, d in peer.window_updates if s == sid) for sid in sids}
        connection_acks = sum(d for s, d in peer.window_updates if s == 0) - (CONNECTION_WINDOW - 65535)
        apps_waiting = gate.count
        unfinished = [sid for sid in sids if sent[sid] < size]

        gate.released.set()
        with anyio.fail_after(60):
            while any(sent[sid] < size for sid in sids):
                if not await fill():
                    await peer.receive()
        results = [await peer.response(sid, within=60) for sid in sids]
        await peer.aclose()
    assert held_window == 0, "the connection window reopened before any app read"
    assert unfinished and all(held_streams[sid] == 0 for sid in sids if sent[sid] < size)
    # Before an app starts the server reads (and acknowledges) at most PREBUFFER of its body.
    assert all(ack <= PREBUFFER + MAX_FRAME for ack in acknowledged.values()), acknowledged
    assert connection_acks <= count * (PREBUFFER + MAX_FRAME)
    assert 1 <= apps_waiting <= 4
    assert [(r.status, r.data.decode()) for r in results] == [(200, f"{size} {sha256(body)}")] * count


async def test_large_response_follows_a_small_client_window() -> None:
    size = 16 << 20
    window = 8192
    piece = pattern(1 << 16)

    def big(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        for _ in range(size // len(piece)):
            yield piece

    async with serving(mount=("/", validator(big))) as srv:
        peer = await H2Peer.connect(srv.host, srv.port,
                                    settings={SettingCodes.INITIAL_WINDOW_SIZE: window}, auto_ack=False)
        await peer.start()
        sid = await peer.request(b"GET", b"/big")
        result = peer.streams[sid]
        received = hashlib.sha256()
        largest = 0
        with anyio.fail_after(120):
            while not result.done and not peer.eof:
                for event in await peer.receive():
                    if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                        largest = max(largest, event.flow_controlled_length)
                        received.update(event.data)
                        # Give back exactly what arrived, a frame at a time.
                        peer.conn.increment_flow_control_window(event.flow_controlled_length)
                        # The batch may hold the stream's end further on: h2 has closed it then.
                        with suppress(h2.exceptions.StreamClosedError):
                            peer.conn.increment_flow_control_window(event.flow_controlled_length, sid)
                result.data.clear()
                await peer.flush()
        await peer.aclose()
    assert result.status == 200
    assert result.ended, "END_STREAM never came"
    assert received.hexdigest() == sha256(piece * (size // len(piece)))
    assert 0 < largest <= window


async def test_data_beyond_the_stream_window_is_a_flow_control_error() -> None:
    async def never_reads(exchange: Exchange) -> None:
        await anyio.sleep(WAIT)

    async with http2_driver(never_reads) as (peer, _):
        await peer.start()
        sid = await peer.request(b"POST", b"/", end_stream=False)
        chunk = b"x" * MAX_FRAME
        await peer.send_raw(frame(DATA, 0, sid, chunk) * (STREAM_WINDOW // MAX_FRAME)
                            + frame(DATA, 0, sid, b"!"))
        with anyio.fail_after(WAIT):
            while peer.terminated is None and peer.streams[sid].reset is None and not peer.eof:
                await peer.receive()
    answer = peer.terminated.error_code if peer.terminated else peer.streams[sid].reset
    assert answer == ErrorCodes.FLOW_CONTROL_ERROR


# ------------------------------------------------------------------ streams


async def test_one_stream_over_the_limit_is_refused_alone() -> None:
    gate = Gate()
    async with serving(mount=("/", gated(gate))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sids = [await peer.request(b"GET", b"/wait") for _ in range(MAX_CONCURRENT_STREAMS + 1)]
        await peer.ping()  # every HEADERS above has been handled
        refused = {sid: peer.streams[sid].reset for sid in sids if peer.streams[sid].reset is not None}
        gate.released.set()
        results = [await peer.response(sid) for sid in sids[:-1]]
        after = await peer.response(await peer.request(b"GET", b"/"))
        await peer.aclose()
    assert refused == {sids[-1]: ErrorCodes.REFUSED_STREAM}
    assert [(r.status, bytes(r.data)) for r in results] == [(200, b"done")] * MAX_CONCURRENT_STREAMS
    assert (after.status, peer.terminated) == (200, None)


async def test_a_stream_over_the_limit_reset_by_the_client_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """HEADERS and the client's own RST_STREAM in one read: h2 has closed the
    stream before the server would refuse it, and the refusal must not fail
    the connection (found by fuzz/test_http2.py)."""
    gate = Gate()
    async with serving(mount=("/", gated(gate))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sids = [await peer.request(b"GET", b"/wait") for _ in range(MAX_CONCURRENT_STREAMS)]
        await peer.ping()
        late, block = await peer.header_block(GET)
        await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, late, block)
                            + frame(RST_STREAM, 0, late, ErrorCodes.CANCEL.to_bytes(4, "big")))
        await peer.ping()
        gate.released.set()
        results = [await peer.response(sid) for sid in sids]
        after = await peer.response(await peer.request(b"GET", b"/"))
        await peer.aclose()
    assert [r.status for r in results] == [200] * MAX_CONCURRENT_STREAMS
    assert (after.status, peer.terminated) == (200, None)
    assert errors_logged(caplog) == []


async def test_client_reset_stops_the_app_and_spares_other_streams() -> None:
    started = threading.Event()
    closed = threading.Event()

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            started.set()
            while not closed.is_set():
                yield b"x" * 16384

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/endless":
            return Endless()
        return [b"other"]

    async with serving(mount=("/", validator(app))) as srv:
        peer = await H2Peer.connect(srv.host, srv.port, auto_ack=False)
        await peer.start()
        endless = await peer.request(b"GET", b"/endless")
        await peer.wait_until(lambda: len(peer.streams[endless].data) >= 65535)  # its window is spent
        peer.conn.reset_stream(endless, ErrorCodes.CANCEL)
        # What arrived was consumed: the connection window opens again for the next stream.
        peer.conn.increment_flow_control_window(len(peer.streams[endless].data))
        await peer.flush()
        assert await anyio.to_thread.run_sync(closed.wait, WAIT), "close() was not called"
        other = await peer.response(await peer.request(b"GET", b"/other"))
        await peer.ping()
        await peer.aclose()
    assert started.is_set()
    assert (other.status, bytes(other.data)) == (200, b"other")
    assert peer.terminated is None


async def test_stream_reset_before_its_work_starts_is_never_served() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"served"]

    async with serving(mount=("/", validator(app))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid, block = await peer.header_block([*GET[:1], (b":path", b"/reset"), *GET[2:]])
        # HEADERS and RST_STREAM in one write: h2 reports both before any task runs.
        await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
                            + frame(RST_STREAM, 0, sid, int(ErrorCodes.CANCEL).to_bytes(4, "big")))
        after = await peer.response(await peer.request(b"GET", b"/after"))
        await peer.aclose()
    assert (after.status, bytes(after.data)) == (200, b"served")
    assert calls == ["/after"]
    assert peer.streams[sid].headers is None


async def test_reset_stream_is_not_answered_by_a_handler_that_never_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def answer_at_once(exchange: Exchange) -> None:
        data = await exchange.receive_body(100)  # returns at once: the stream is reset
        await exchange.respond(200, [(b"content-type", b"text/plain")], data)

    async with http2_driver(answer_at_once) as (peer, _):
        await peer.start()
        sid, block = await peer.header_block(POST, end_stream=False)
        await peer.send_raw(frame(HEADERS, END_HEADERS, sid, block)
                            + frame(RST_STREAM, 0, sid, int(ErrorCodes.CANCEL).to_bytes(4, "big")))
        await peer.ping()
        after = await peer.response(await peer.request(b"GET", b"/"))
    assert peer.streams[sid].headers is None
    assert after.status == 200
    assert errors_logged(caplog) == []


async def test_bursts_of_streams_reuse_tasks_and_close_cleanly() -> None:
    gate = Gate()
    async with serving(mount=("/", gated(gate)), threads=8) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        for burst in range(3):
            sids = [await peer.request(b"GET", b"/wait") for _ in range(8)]
            await gate.arrived(8 * (burst + 1))
            gate.released.set()
            results = [await peer.response(sid) for sid in sids]
            assert [(r.status, bytes(r.data)) for r in results] == [(200, b"done")] * 8
            gate.released.clear()
        await peer.aclose()
    # serving() checked on exit: no connection, task or descriptor left behind


async def test_client_goaway_lets_the_stream_in_flight_finish() -> None:
    gate = Gate()
    async with serving(mount=("/", gated(gate, b"finished"))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid = await peer.request(b"GET", b"/wait")
        await gate.arrived()
        await peer.send_raw(frame(GOAWAY, 0, 0, sid.to_bytes(4, "big") + b"\0\0\0\0"))
        await peer.ping()  # the GOAWAY has been read
        gate.released.set()
        result = await peer.response(sid)
        await peer.read_to_eof()
        await peer.aclose()
    assert (result.status, bytes(result.data), result.ended) == (200, b"finished", True)


async def test_drain_queues_the_goaway_without_starting_a_task() -> None:
    """Regression: a graceful stop spawned the GOAWAY into the stream task
    group, which trio refuses while that group is closing ("Nursery is
    closed to new arrivals"), so the server's shutdown failed."""

    async def unused(exchange: Exchange) -> None:
        raise AssertionError("no request is made")

    class ClosedTaskGroup:
        def start_soon(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("Nursery is closed to new arrivals")

    server_end, client_end = await socket_pair()
    control = ConnectionControl(1)
    conn = HTTP2Connection(
        server_end, unused, limits=Limits(), scheme="http", client=("127.0.0.1", 40000),
        server=("127.0.0.1", 5000), control=control, server_header=b"Skitai",
    )
    conn._h2.initiate_connection()
    conn._h2.data_to_send()
    conn._tasks = ClosedTaskGroup()  # type: ignore[assignment]
    control.on_drain = conn._drain
    control.idle = False  # a stream in flight: drain() asks the driver, not the scope
    control.drain()
    queued = conn._h2.data_to_send()
    assert queued[3] == GOAWAY
    assert int.from_bytes(queued[13:17], "big") == ErrorCodes.NO_ERROR
    await server_end.aclose()
    await client_end.aclose()


async def test_settings_go_out_even_when_a_goaway_comes_first() -> None:
    async with serving(mount=("/", apps.hello)) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port)
        await stream.send(PREFACE + frame(SETTINGS, 0, 0) + frame(GOAWAY, 0, 0, b"\0" * 8))
        received = await read_until_closed(stream)
        await stream.aclose()
    assert received[3] == SETTINGS  # the server's preface, not dropped with the GOAWAY


async def test_graceful_shutdown_finishes_the_stream_in_flight() -> None:
    gate = Gate()
    # Opened before the server, so its leak check does not count it.
    sock = socket.socket()
    answers: dict[str, Any] = {}
    async with anyio.create_task_group() as tasks:
        async with serving(mount=("/", gated(gate, b"finished"))) as srv:
            await anyio.to_thread.run_sync(sock.connect, (srv.host, srv.port))
            peer = await H2Peer(await anyio.abc.SocketStream.from_socket(sock)).start()
            first = await peer.request(b"GET", b"/wait")
            await gate.arrived()
            late, block = await peer.header_block(GET)

            async def client() -> None:
                try:
                    answers["goaway"] = await peer.goaway()
                    # A new stream after the GOAWAY, while the first is still in flight.
                    await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, late, block))
                    await peer.ping()
                    answers["late"] = peer.streams[late].reset
                    gate.released.set()
                    answers["first"] = await peer.response(first)
                    await peer.read_to_eof()
                finally:
                    gate.released.set()
                    await peer.aclose()

            tasks.start_soon(client)
        # leaving serving() cancels the server: a graceful stop
    goaway = answers["goaway"]
    assert goaway is not None, "no GOAWAY"
    assert (goaway.error_code, goaway.last_stream_id) == (ErrorCodes.NO_ERROR, first)
    assert answers["late"] == ErrorCodes.REFUSED_STREAM
    assert peer.streams[late].headers is None
    result = answers["first"]
    assert (result.status, bytes(result.data), result.ended) == (200, b"finished", True)
    assert gate.count == 1


async def test_grace_deadline_cancels_the_stream_in_flight() -> None:
    gate = Gate()
    sock = socket.socket()  # opened before the server, as in the test above
    config = skitai.Config(mount=("/", gated(gate, b"finished")), port=0, grace=0.2,
                           http_parser=HTTP_PARSER["name"])
    serving_scope = anyio.CancelScope()
    stopped = anyio.Event()

    async def serve(*, task_status: Any) -> None:
        with serving_scope:
            await skitai.serve(config, task_status=task_status)
        stopped.set()

    try:
        async with anyio.create_task_group() as tasks:
            host, port = (await tasks.start(serve))[0]
            await anyio.to_thread.run_sync(sock.connect, (host, port))
            peer = await H2Peer(await anyio.abc.SocketStream.from_socket(sock)).start()
            sid = await peer.request(b"GET", b"/wait")
            await gate.arrived()
            serving_scope.cancel()  # a graceful stop; the app does not finish within grace
            with anyio.fail_after(WAIT):
                await stopped.wait()
            await peer.read_to_eof()
            await peer.aclose()
    finally:
        gate.released.set()
    assert peer.terminated is not None, "no GOAWAY"
    assert (peer.terminated.error_code, peer.terminated.last_stream_id) == (ErrorCodes.NO_ERROR, sid)
    assert peer.streams[sid].headers is None
    assert not peer.streams[sid].ended


# ------------------------------------------------------------------ idle timeout


async def test_idle_connection_after_the_preface_is_closed_with_goaway() -> None:
    async with serving(mount=("/", apps.hello), keep_alive_timeout=0.5) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port)
        await stream.send(PREFACE + frame(SETTINGS, 0, 0))
        received = await read_until_closed(stream)
        await stream.aclose()
    goaways = [payload for kind, payload in parse_frames(received) if kind == GOAWAY]
    assert goaways, "closed without a GOAWAY"
    assert int.from_bytes(goaways[0][4:8], "big") == ErrorCodes.NO_ERROR


@pytest.mark.parametrize("last", ["ping", "request", "two requests"])
async def test_idle_connection_is_closed_with_goaway(last: str) -> None:
    async with serving(mount=("/", apps.hello), keep_alive_timeout=0.5) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        if last == "ping":
            await peer.ping()
        else:
            for _ in range(1 if last == "request" else 2):
                result = await peer.response(await peer.request())
                assert result.status == 200
        await peer.read_to_eof(within=WAIT)
        await peer.aclose()
    assert peer.terminated is not None, "closed without a GOAWAY"
    assert peer.terminated.error_code == ErrorCodes.NO_ERROR
    assert peer.terminated.last_stream_id == {"ping": 0, "request": 1, "two requests": 3}[last]


async def test_a_stream_in_flight_keeps_the_connection_open_past_the_idle_timeout() -> None:
    async def handler(exchange: Exchange) -> None:
        await anyio.sleep(0.6)  # longer than the idle timeout
        await exchange.respond(200, [(b"content-type", b"text/plain")], b"late")

    async with http2_driver(handler, limits=Limits(keep_alive_timeout=0.2)) as (peer, control):
        await peer.start()
        result = await peer.response(await peer.request(b"GET", b"/"))
        assert (result.status, bytes(result.data), peer.terminated) == (200, b"late", None)
        await peer.goaway(within=WAIT)
    assert peer.terminated is not None
    assert peer.terminated.error_code == ErrorCodes.NO_ERROR
    assert control.expired == "idle"


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout() -> None:
    async def handler(exchange: Exchange) -> None:
        await exchange.start_response(200, [(b"content-type", b"application/octet-stream")])
        piece = b"x" * 65536
        for _ in range(1024):  # 64 MiB: far more than the socket buffers hold
            await exchange.send_body(piece)
        await exchange.end_response()

    limits = Limits(send_timeout=0.3, keep_alive_timeout=0.3)
    async with http2_driver(handler, limits=limits) as (peer, control):
        peer.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        await peer.start()
        peer.conn.increment_flow_control_window(2**31 - 1 - 65535)
        await peer.request(b"GET", b"/")  # and never read the answer
        with anyio.fail_after(WAIT):
            while control.expired is None:  # noqa: ASYNC110 - set by the sweeper
                await anyio.sleep(0.05)
        assert control.expired == "send"


# ------------------------------------------------------------------ scheme


def show_scheme(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/page":
        environ["skitai.hint_promise"]("/pushed")
    body = environ["wsgi.url_scheme"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def request_with_scheme(peer: H2Peer, scheme: bytes, path: bytes = b"/") -> int:
    sid = peer.conn.get_next_available_stream_id()
    peer.streams[sid] = StreamResult()
    peer.conn.send_headers(sid, [(b":method", b"GET"), (b":path", path), (b":scheme", scheme),
                                 (b":authority", b"localhost")], end_stream=True)
    await peer.flush()
    return sid


async def test_url_scheme_over_h2c_is_http_whatever_the_client_says() -> None:
    async with serving(mount=("/", validator(show_scheme))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        claimed = await peer.response(await request_with_scheme(peer, b"https"))
        plain = await peer.response(await request_with_scheme(peer, b"http"))
        await peer.aclose()
    assert (claimed.status, bytes(claimed.data)) == (200, b"http")
    assert (plain.status, bytes(plain.data)) == (200, b"http")


async def test_url_scheme_over_tls_is_https_whatever_the_client_says(
    ca: trustme.CA, cert_files: tuple[str, str]
) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", validator(show_scheme)), certfile=certfile, keyfile=keyfile) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port, ssl_context=h2_context(ca))).start()
        claimed = await peer.response(await request_with_scheme(peer, b"http"))
        await peer.aclose()
    assert (claimed.status, bytes(claimed.data)) == (200, b"https")


async def test_pushed_requests_have_the_connections_scheme() -> None:
    async with serving(mount=("/", validator(show_scheme))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid = await request_with_scheme(peer, b"https", b"/page")
        promised: list[h2.events.PushedStreamReceived] = []
        with anyio.fail_after(WAIT):
            while not promised or not all(peer.streams.get(p.pushed_stream_id, StreamResult()).done
                                          for p in promised) or not peer.streams[sid].done:
                events = await peer.receive()
                assert events or not peer.eof
                promised += [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        await peer.aclose()
    assert bytes(peer.streams[sid].data) == b"http"
    assert len(promised) == 1
    assert dict(promised[0].headers)[b":scheme"] == b"http"
    assert bytes(peer.streams[promised[0].pushed_stream_id].data) == b"http"


# ------------------------------------------------------------------ protocol errors

Attack = Callable[[H2Peer], Awaitable[int | None]]  # sends something wrong; the stream it names


def raw(data: bytes) -> Attack:
    async def attack(peer: H2Peer) -> int | None:
        await peer.send_raw(data)
        return None

    return attack


def on_open_stream(make: Callable[[int], bytes]) -> Attack:
    """Open a stream whose request body is still to come, then send `make(stream_id)`."""
    async def attack(peer: H2Peer) -> int | None:
        sid = await peer.request(b"POST", b"/wait", end_stream=False)
        await peer.send_raw(make(sid))
        return sid

    return attack


def requesting(headers: list[tuple[bytes, bytes]], body: bytes | None = None) -> Attack:
    """A request with exactly these headers (pseudo-headers included), sent as given."""
    async def attack(peer: H2Peer) -> int | None:
        sid = peer.conn.get_next_available_stream_id()
        peer.streams[sid] = StreamResult()
        peer.conn.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            peer.conn.send_data(sid, body, end_stream=True)
        await peer.flush()
        return sid

    return attack


def with_header(name: bytes, value: bytes) -> Attack:
    return requesting([*GET, (name, value)])


async def after_response(peer: H2Peer) -> int | None:
    """DATA on a stream that is closed both ways."""
    sid = await peer.request(b"GET", b"/")
    await peer.response(sid)
    peer.streams[sid] = StreamResult()  # that answer was right; only what follows counts
    await peer.send_raw(frame(DATA, 0, sid, b"late"))
    return sid


async def after_end_stream(peer: H2Peer) -> int | None:
    """DATA on a stream the client has ended and the app is still answering."""
    sid = await peer.request(b"GET", b"/wait")
    await peer.send_raw(frame(DATA, 0, sid, b"late"))
    return sid


async def lower_stream_id(peer: H2Peer) -> int | None:
    await peer.response(await peer.request(b"GET", b"/", stream_id=5))
    await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, 3, literal_block(GET)))
    return None


async def trailers_without_end_stream(peer: H2Peer) -> int | None:
    sid = await peer.request(b"POST", b"/wait", body=b"abc", end_stream=False)
    await peer.send_raw(frame(HEADERS, END_HEADERS, sid, literal_block([(b"x-trailer", b"1")])))
    return sid


async def pseudo_header_in_trailers(peer: H2Peer) -> int | None:
    sid = await peer.request(b"POST", b"/wait", body=b"abc", end_stream=False)
    trailers = literal_block([(b":path", b"/other")])
    await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, sid, trailers))
    return sid


def settings(code: int, value: int) -> bytes:
    return frame(SETTINGS, 0, 0, code.to_bytes(2, "big") + value.to_bytes(4, "big"))


P, F, W, C, S = (ErrorCodes.PROTOCOL_ERROR, ErrorCodes.FRAME_SIZE_ERROR, ErrorCodes.FLOW_CONTROL_ERROR,
                 ErrorCodes.COMPRESSION_ERROR, ErrorCodes.STREAM_CLOSED)
GET_BLOCK = literal_block(GET)

# (what, attack, code): connection errors, answered with GOAWAY
CONNECTION_ERRORS: list[tuple[str, Attack, ErrorCodes]] = [
    ("DATA on stream 0", raw(frame(DATA, 0, 0, b"x")), P),
    ("HEADERS on stream 0", raw(frame(HEADERS, END_HEADERS | END_STREAM, 0, GET_BLOCK)), P),
    ("RST_STREAM on stream 0", raw(frame(RST_STREAM, 0, 0, b"\0\0\0\x08")), P),
    ("PRIORITY on stream 0", raw(frame(PRIORITY, 0, 0, b"\0\0\0\x03\x10")), P),
    ("CONTINUATION on stream 0", raw(frame(CONTINUATION, END_HEADERS, 0, GET_BLOCK)), P),
    ("PING on stream 1", raw(frame(PING, 0, 1, b"12345678")), P),
    ("SETTINGS on stream 1", raw(frame(SETTINGS, 0, 1)), P),
    ("GOAWAY on stream 1", raw(frame(GOAWAY, 0, 1, b"\0\0\0\0\0\0\0\0")), P),
    ("DATA on an idle stream", raw(frame(DATA, 0, 9, b"x")), P),
    ("RST_STREAM on an idle stream", raw(frame(RST_STREAM, 0, 9, b"\0\0\0\x08")), P),
    ("WINDOW_UPDATE on an idle stream", raw(frame(WINDOW_UPDATE, 0, 9, b"\0\0\0\x01")), P),
    ("HEADERS on an even stream", raw(frame(HEADERS, END_HEADERS | END_STREAM, 2, GET_BLOCK)), P),
    ("HEADERS on a lower stream id than the last", lower_stream_id, P),
    ("HEADERS not followed by CONTINUATION",
     raw(frame(HEADERS, END_STREAM, 1, GET_BLOCK) + frame(PING, 0, 0, b"12345678")), P),
    ("CONTINUATION after END_HEADERS",
     on_open_stream(lambda sid: frame(CONTINUATION, END_HEADERS, sid, GET_BLOCK)), P),
    ("oversize HEADERS", raw(frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                   literal_block([*GET, (b"x-big", b"v" * 2 * MAX_FRAME)]))), F),
    ("oversize PING", raw(frame(PING, 0, 0, b"p" * (MAX_FRAME + 1))), F),
    ("PING of 7 bytes", raw(frame(PING, 0, 0, b"1234567")), F),
    ("SETTINGS of 5 bytes", raw(frame(SETTINGS, 0, 0, b"\0\x04\0\0\x01")), F),
    ("SETTINGS ACK with a payload", raw(frame(SETTINGS, ACK, 0, b"\0\x04\0\0\x01\0")), F),
    ("WINDOW_UPDATE of 3 bytes", raw(frame(WINDOW_UPDATE, 0, 0, b"\0\0\x01")), F),
    ("connection window over 2^31-1", raw(frame(WINDOW_UPDATE, 0, 0, (2**31 - 1).to_bytes(4, "big"))), W),
    ("zero connection window increment", raw(frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0")), P),
    ("SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", raw(settings(SettingCodes.INITIAL_WINDOW_SIZE, 2**31)), W),
    ("SETTINGS_ENABLE_PUSH of 2", raw(settings(SettingCodes.ENABLE_PUSH, 2)), P),
    ("SETTINGS_MAX_FRAME_SIZE below 16384", raw(settings(SettingCodes.MAX_FRAME_SIZE, 16383)), P),
    ("SETTINGS_MAX_FRAME_SIZE over 2^24-1", raw(settings(SettingCodes.MAX_FRAME_SIZE, 1 << 24)), P),
    ("HPACK index 0", raw(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x80")), C),
    ("HPACK index past the tables", raw(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\x10")), C),
    ("HPACK literal cut short", raw(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x00\x05ab")), C),
    ("HPACK table size update over the limit",
     raw(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x3f\xe1\xff\x03" + GET_BLOCK)), C),
]

# (what, attack, code): stream errors, answered with RST_STREAM on that stream or with GOAWAY
STREAM_ERRORS: list[tuple[str, Attack, ErrorCodes]] = [
    ("uppercase header name", with_header(b"X-Upper", b"1"), P),
    ("connection header", with_header(b"connection", b"keep-alive"), P),
    ("keep-alive header", with_header(b"keep-alive", b"timeout=5"), P),
    ("proxy-connection header", with_header(b"proxy-connection", b"close"), P),
    ("transfer-encoding header", with_header(b"transfer-encoding", b"chunked"), P),
    ("upgrade header", with_header(b"upgrade", b"websocket"), P),
    ("te other than trailers", with_header(b"te", b"gzip"), P),
    ("no :method", requesting([h for h in GET if h[0] != b":method"]), P),
    ("no :path", requesting([h for h in GET if h[0] != b":path"]), P),
    ("empty :path", requesting([(b":path", b"") if h[0] == b":path" else h for h in GET]), P),
    ("no :scheme", requesting([h for h in GET if h[0] != b":scheme"]), P),
    ("unknown pseudo-header", with_header(b":foo", b"bar"), P),
    ("response pseudo-header", with_header(b":status", b"200"), P),
    ("pseudo-header after a regular one", requesting([*GET[:3], (b"accept", b"*/*"), GET[3]]), P),
    ("duplicate :path", with_header(b":path", b"/again"), P),
    ("content-length above the body", requesting([*POST, (b"content-length", b"10")], b"hello"), P),
    ("content-length below the body", requesting([*POST, (b"content-length", b"3")], b"hello"), P),
    ("DATA on a closed stream", after_response, S),
    ("DATA after END_STREAM", after_end_stream, S),
    ("oversize DATA", on_open_stream(lambda sid: frame(DATA, 0, sid, b"d" * (MAX_FRAME + 1))), F),
    ("RST_STREAM of 3 bytes", on_open_stream(lambda sid: frame(RST_STREAM, 0, sid, b"\0\0\x08")), F),
    ("PRIORITY of 4 bytes", on_open_stream(lambda sid: frame(PRIORITY, 0, sid, b"\0\0\0\x03")), F),
    ("stream window over 2^31-1", on_open_stream(
        lambda sid: frame(WINDOW_UPDATE, 0, sid, (2**31 - 1).to_bytes(4, "big"))), W),
    ("zero stream window increment", on_open_stream(lambda sid: frame(WINDOW_UPDATE, 0, sid, b"\0" * 4)), P),
    ("trailers without END_STREAM", trailers_without_end_stream, P),
    ("pseudo-header in trailers", pseudo_header_in_trailers, P),
    ("whitespace around a value", with_header(b"x-padded", b" v "), P),
    ("header name with a space", with_header(b"x bad", b"1"), P),
    (":path not a path", requesting([(b":path", b"index") if h[0] == b":path" else h for h in GET]), P),
    (":protocol without CONNECT", with_header(b":protocol", b"websocket"), P),
    ("neither :authority nor host", requesting(GET[:3]), P),
    (":authority and host differ", with_header(b"host", b"elsewhere"), P),
    ("two host fields", requesting([*GET[:3], (b"host", b"x"), (b"host", b"x")]), P),
    ("CONNECT with :path", requesting([(b":method", b"CONNECT"), *GET[1:]]), P),
]


async def _attack(attack: Attack, caplog: pytest.LogCaptureFixture) -> tuple[H2Peer, int | None, Any]:
    """Run `attack` on a fresh connection; return the peer, the stream named, and what came back."""
    gate = Gate()
    async with serving(mount=("/", gated(gate))) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid = await attack(peer)
        stream = peer.streams.get(sid) if sid else None
        with anyio.fail_after(WAIT):
            while peer.terminated is None and not peer.eof and not (stream and stream.reset is not None):
                await peer.receive()
        answered = peer.terminated or (stream.reset if stream else None)
        if peer.terminated is None and not peer.eof:
            # A stream error only: the connection goes on.
            gate.released.set()
            after = await peer.response(await peer.request(b"GET", b"/"))
            assert (after.status, bytes(after.data)) == (200, b"done")
        elif peer.terminated is not None:
            await peer.read_to_eof()  # after a GOAWAY the server closes
        gate.released.set()
        await peer.aclose()
        # The server is still there for everyone else.
        fresh = await get(srv.host, srv.port)
        assert (fresh.status, bytes(fresh.data)) == (200, b"done")
    assert errors_logged(caplog) == []
    return peer, sid, answered


@pytest.mark.parametrize(("what", "attack", "code"), CONNECTION_ERRORS, ids=[c[0] for c in CONNECTION_ERRORS])
async def test_connection_errors_get_goaway(
    what: str, attack: Attack, code: ErrorCodes, caplog: pytest.LogCaptureFixture
) -> None:
    peer, _, _ = await _attack(attack, caplog)
    assert peer.terminated is not None, f"{what}: closed without a GOAWAY"
    assert peer.terminated.error_code == code


@pytest.mark.parametrize(("what", "attack", "code"), STREAM_ERRORS, ids=[c[0] for c in STREAM_ERRORS])
async def test_stream_errors_get_rst_stream_or_goaway(
    what: str, attack: Attack, code: ErrorCodes, caplog: pytest.LogCaptureFixture
) -> None:
    peer, sid, answered = await _attack(attack, caplog)
    assert answered is not None, f"{what}: closed without a GOAWAY or RST_STREAM"
    if peer.terminated is not None:
        assert peer.terminated.error_code == code
    else:
        assert answered == code
    assert sid is None or peer.streams[sid].headers is None, "the bad request was answered"


async def test_bad_preface_over_tls_gets_goaway(
    ca: trustme.CA, cert_files: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", apps.hello), certfile=certfile, keyfile=keyfile) as srv:
        stream = await anyio.connect_tcp(srv.host, srv.port, ssl_context=h2_context(ca), tls=True,
                                         tls_standard_compatible=False)
        await stream.send(PREFACE.replace(b"SM", b"XX") + frame(SETTINGS, 0, 0))
        received = await read_until_closed(stream)
        await stream.aclose()
        peer = await (await H2Peer.connect(srv.host, srv.port, ssl_context=h2_context(ca))).start()
        after = await peer.response(await peer.request())
        await peer.aclose()
    frames = []
    while len(received) >= 9:
        length = int.from_bytes(received[:3], "big")
        frames.append((received[3], received[9:9 + length]))
        received = received[9 + length:]
    goaways = [payload for kind, payload in frames if kind == GOAWAY]
    assert goaways, f"no GOAWAY, only frame types {[kind for kind, _ in frames]}"
    assert int.from_bytes(goaways[0][4:8], "big") == ErrorCodes.PROTOCOL_ERROR
    assert (after.status, bytes(after.data)) == (200, b"Hello World")
    assert errors_logged(caplog) == []


# ------------------------------------------------------------------ header limits


async def test_too_many_header_fields_get_431_on_their_stream() -> None:
    many = [(b"x-field-%d" % i, b"v") for i in range(Limits().max_headers + 20)]
    async with serving(mount=("/", apps.hello)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        refused = await peer.response(await peer.request(b"GET", b"/", many))
        after = await peer.response(await peer.request(b"GET", b"/"))
        await peer.aclose()
    assert refused.status == 431
    assert (after.status, bytes(after.data), peer.terminated) == (200, b"Hello World", None)


async def test_header_list_over_the_limit_gets_431_on_its_stream() -> None:
    limit = 8192
    big = [(b"x-big-%d" % i, b"v" * 1000) for i in range(limit // 1000 + 2)]
    async with serving(mount=("/", apps.hello), max_header_block=limit) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        refused = await peer.response(await peer.request(b"GET", b"/", big))
        after = await peer.response(await peer.request(b"GET", b"/"))
        await peer.aclose()
    assert peer.server_settings[SettingCodes.MAX_HEADER_LIST_SIZE] == limit
    assert refused.status == 431
    assert (after.status, bytes(after.data), peer.terminated) == (200, b"Hello World", None)


async def test_header_size_is_counted_after_hpack_decoding() -> None:
    limit = 8192
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    entry = (b"x-entry", b"e" * 3800)  # small enough to stay in the 4 KiB HPACK table
    async with serving(mount=("/", validator(app)), max_header_block=limit) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        first = await peer.response(await peer.request(b"GET", b"/first", [entry]))
        # The same field twenty times: 20 bytes on the wire (indexed), 80 KB decoded.
        sid, block = await peer.header_block([*GET[:1], (b":path", b"/bomb"), *GET[2:], *[entry] * 20])
        await peer.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, sid, block))
        bomb = peer.streams[sid]
        with anyio.fail_after(WAIT):
            while not bomb.done and peer.terminated is None and not peer.eof:
                await peer.receive()
        await peer.aclose()
    assert len(block) < 100
    assert first.status == 200
    assert calls == ["/first"]
    if peer.terminated is None:
        assert bomb.status == 431
    else:
        assert peer.terminated.error_code in (ErrorCodes.ENHANCE_YOUR_CALM, ErrorCodes.PROTOCOL_ERROR)
