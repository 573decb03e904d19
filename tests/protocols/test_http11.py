"""The HTTP/1.1 driver, over a socket pair, with a client-role h11 decoding answers."""

from __future__ import annotations

import anyio
import pytest

from skitai.config import Limits
from skitai.protocols.events import Exchange
from tests.support.rawhttp import RawClient
from tests.support.streams import http11_driver

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def echo(exchange: Exchange) -> None:
    body = b""
    while chunk := await exchange.receive_body(65536):
        body += chunk
    request = exchange.request
    await exchange.respond(
        200, [(b"Content-Type", b"text/plain")],
        f"{request.method} {request.target.decode()} {len(body)}:".encode() + body,
    )


async def no_read(exchange: Exchange) -> None:
    await exchange.respond(201, [], b"created")


async def exchange_all(
    data: bytes, handler=echo, limits: Limits | None = None, chunk: int | None = None
) -> bytes:
    """Send data, half-close, and return everything the server sent until it closed."""
    async with http11_driver(handler, limits=limits) as (client_end, _):
        raw = RawClient(client_end)
        try:
            await raw.send(data, chunk_size=chunk)
            await client_end.send_eof()
        except anyio.BrokenResourceError:
            pass  # the server answered and closed before reading everything
        return await raw.read_all()


async def test_keep_alive_serves_several_requests() -> None:
    async with http11_driver(echo) as (client_end, _):
        client = RawClient(client_end)
        for _ in range(3):
            await client.send(GET)
            head, body = await client.response()
            assert head.status_code == 200
            assert body == b"GET / 0:"
            client.next_cycle()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with http11_driver(echo) as (client_end, _):
        client = RawClient(client_end)
        await client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        bodies = []
        for method in (b"GET", b"GET", b"POST"):
            _, body = await client.response(method)
            bodies.append(body)
            client.next_cycle()
    assert bodies == [b"GET /1 0:", b"GET /2 0:", b"POST /3 3:abc"]


async def test_connection_close_is_honoured() -> None:
    out = await exchange_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET)
    assert out.count(b"HTTP/1.1 200 OK") == 1
    assert b"\r\nConnection: close\r\n" in out


async def test_http10_closes_unless_keep_alive_is_asked() -> None:
    out = await exchange_all(b"GET / HTTP/1.0\r\n\r\n" b"GET / HTTP/1.0\r\n\r\n")
    assert out.count(b" 200 OK") == 1
    async with http11_driver(echo) as (client_end, _):
        client = RawClient(client_end)
        for _ in range(2):
            await client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head, body = await client.response()
            assert head.status_code == 200
            assert (b"connection", b"keep-alive") in head.headers.raw_items() or \
                (b"Connection", b"keep-alive") in head.headers.raw_items()
            assert body == b"GET / 0:"
            client.next_cycle()


async def test_chunked_request_body() -> None:
    out = await exchange_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: ok\r\n\r\n"
    )
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"POST /up 11:hello world")


async def test_expect_continue_is_sent_only_when_the_body_is_read() -> None:
    async with http11_driver(echo) as (client_end, _):
        await client_end.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        with anyio.fail_after(5):
            interim = await client_end.receive()
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        await client_end.send(b"abc")
        client = RawClient(client_end)
        _, body = await client.response(b"POST")
        assert body == b"POST / 3:abc"
    out = await exchange_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", no_read
    )
    assert b"100 Continue" not in out
    assert out.startswith(b"HTTP/1.1 201 Created\r\n")


async def test_head_has_no_body_and_the_get_length() -> None:
    out = await exchange_all(b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert body == b""
    assert b"\r\nContent-Length: 10\r\n" in head  # len(b"HEAD /x 0:"), the body a GET gets


async def test_reason_date_and_server_once_each() -> None:
    async def custom_server(exchange: Exchange) -> None:
        await exchange.respond(404, [(b"Server", b"mine")], b"")

    out = await exchange_all(GET)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.lower().count(b"\r\ndate: ") == 1
    assert out.lower().count(b"\r\nserver: ") == 1
    out = await exchange_all(GET, custom_server)
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert out.lower().count(b"\r\nserver: ") == 1 and b"Server: mine" in out


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 8200 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"y" * 70000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x07b\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET x.y:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\nContent-Length: 5\r\n\r\n", 400),
    ],
)
async def test_bad_requests_get_a_precise_answer_and_a_close(request_bytes: bytes, status: int) -> None:
    limits = Limits(max_body_size=1000)
    whole = await exchange_all(request_bytes, limits=limits)
    assert whole.startswith(b"HTTP/1.1 %d " % status), whole[:80]
    assert b"\r\nConnection: close\r\n" in whole or b"\r\nconnection: close\r\n" in whole
    by_byte = await exchange_all(request_bytes, limits=limits, chunk=1)
    assert by_byte.split(b"\r\n", 1)[0] == whole.split(b"\r\n", 1)[0]


async def test_chunked_body_over_the_limit_is_413() -> None:
    body = b"".join(b"64\r\n" + b"x" * 100 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    out = await exchange_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
        limits=Limits(max_body_size=1000),
    )
    assert out.startswith(b"HTTP/1.1 413 ")


async def test_slow_head_gets_408() -> None:
    async with http11_driver(echo, limits=Limits(header_timeout=0.2)) as (client_end, _):
        await client_end.send(b"GET / HTTP/1.1\r\n")
        out = await RawClient(client_end).read_all()
    assert out.startswith(b"HTTP/1.1 408 ")


async def test_idle_keep_alive_connection_is_closed_silently() -> None:
    async with http11_driver(echo, limits=Limits(keep_alive_timeout=0.2)) as (client_end, _):
        client = RawClient(client_end)
        await client.send(GET)
        await client.response()
        assert await client.read_all() == b""


async def test_max_requests_per_connection() -> None:
    out = await exchange_all(GET * 3, limits=Limits(max_requests_per_connection=2))
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.count(b"Connection: close") == 1


async def test_drain_closes_an_idle_connection_at_once() -> None:
    async with http11_driver(echo) as (client_end, control):
        client = RawClient(client_end)
        await client.send(GET)
        await client.response()
        await anyio.wait_all_tasks_blocked()
        control.drain()
        assert await client.read_all(within=1) == b""


async def test_unread_body_is_drained_to_keep_the_connection() -> None:
    async with http11_driver(no_read) as (client_end, _):
        client = RawClient(client_end)
        await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        head, _ = await client.response(b"POST")
        assert head.status_code == 201
        client.next_cycle()
        await client.send(GET)
        head, _ = await client.response()
        assert head.status_code == 201


async def test_partial_request_after_a_complete_one_gets_400_at_eof() -> None:
    # The second head is already buffered when EOF comes: a cut-short
    # request, as when its bytes arrive one by one, not an idle close.
    out = await exchange_all(GET + b"GET / HT")
    assert out.count(b"HTTP/1.1 200 OK") == 1
    assert b"HTTP/1.1 400 " in out


async def test_bare_lf_heads_are_refused() -> None:
    # RFC 9112 2.2 allows either; both parsers refuse, so they agree.
    for request in (b"GET / HTTP/1.1\nHost: x\n\n",
                    b"POST / HTTP/1.1\r\nHost: x\nContent-Length: 5\r\n\r\n\x00\r\n\r\n"):
        out = await exchange_all(request)
        assert out.startswith(b"HTTP/1.1 400 "), out[:60]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"HEAD * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"HEAD /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: y\r\n\r\n", 400),
])
async def test_refused_head_request_gets_its_error_head(request_bytes: bytes, status: int) -> None:
    out = await exchange_all(request_bytes)
    assert out.startswith(b"HTTP/1.1 %d " % status)
    assert out.endswith(b"\r\n\r\n")  # a response to HEAD has no body


CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def _head_of(length: int, *lines: bytes) -> bytes:
    """A GET whose head, blank line included, is `length` bytes long."""
    start = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines)
    return start + b"X: " + b"a" * (length - len(start) - 7) + b"\r\n\r\n"


@pytest.mark.parametrize(("request_bytes", "status"), [
    (_head_of(101), 200),  # h11 waits with 100 bytes of it at most: not over the limit
    (_head_of(102), 431),
    (_head_of(150, b"not a field line"), 431),  # too long is found before malformed
    (_head_of(150, b"Transfer-Encoding: gzip"), 431),
    (b" " + _head_of(150), 400),  # h11 refuses this from its first byte
    (CHUNKED + b"1;" + b"e" * 97 + b"\r\nx\r\n0\r\n\r\n", 200),  # a chunk-size line of 101 bytes
    (CHUNKED + b"1;" + b"e" * 98 + b"\r\nx\r\n0\r\n\r\n", 431),
    (CHUNKED + b"1;" + b"e" * 150 + b"\r\nx\r\n0\r\n\r\n", 431),
    (CHUNKED + b"1\nx\n0\n\n" + b"y" * 150 + b"\r\n", 431),  # LF does not end one
    (CHUNKED + b"0\r\n" + b"X-T: 1\r\n" * 20 + b"\r\n", 431),  # trailers
    (CHUNKED + b"0\r\nX: " + b"a" * 94 + b"\r\n\r\n", 200),  # a trailer section of 101 bytes
    (CHUNKED + b"0\r\nX: " + b"a" * 95 + b"\r\n\r\n", 431),
])
async def test_long_head_or_line_is_judged_the_same_whole_or_byte_by_byte(
    request_bytes: bytes, status: int
) -> None:
    # h11 refuses what it waits for once more than max_header_block bytes
    # of it are buffered, so a long head, chunk-size line or trailer section
    # arriving byte by byte is refused before it is parsed; arriving whole,
    # it must be refused alike.
    limits = Limits(max_header_block=100)
    for chunk in (None, 1):
        out = await exchange_all(request_bytes, limits=limits, chunk=chunk)
        assert out.startswith(b"HTTP/1.1 %d " % status), (chunk, out[:40])


async def test_chunk_lines_and_trailers_within_the_limit_keep_the_connection() -> None:
    # Measured against max_header_block like a head, a chunk-size line and a
    # trailer section within it are read, and the requests behind them are
    # served, however the bytes are cut.
    limits = Limits(max_header_block=100)
    chunked = (CHUNKED + b"3;" + b"e" * 90 + b"\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
               + b"X-T: 1\r\n" * 10 + b"\r\n")
    data = chunked + b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz" + GET
    for chunk in (None, 1, 7):
        out = await exchange_all(data, limits=limits, chunk=chunk)
        assert out.count(b"HTTP/1.1 200 OK\r\n") == 3, (chunk, out)
        assert b"POST / 5:abcde" in out and b"POST /2 3:xyz" in out, chunk
        assert out.endswith(b"GET / 0:"), chunk


@pytest.mark.parametrize("line", [
    b"5; some; parameters=stuff",  # gunicorn's valid vector 013
    b"5;a = b",
    b'5;a="q \\" ;d"',
    b"5;a=b;c",
])
async def test_chunk_extensions_with_the_whitespace_rfc_9112_allows(line: bytes) -> None:
    for chunk in (None, 1):
        out = await exchange_all(CHUNKED + line + b"\r\nhello\r\n0\r\n\r\n", chunk=chunk)
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"POST / 5:hello"), (chunk, out)


@pytest.mark.parametrize("line", [b"5;=b", b"5;a=", b'5;a="open', b"5;a\x01", b"5;a b"])
async def test_malformed_chunk_extensions(line: bytes, http_parser: str) -> None:
    out = await exchange_all(CHUNKED + line + b"\r\nhello\r\n0\r\n\r\n")
    # The llhttp driver checks RFC 9112's grammar; h11 takes anything after ";".
    assert out.startswith(b"HTTP/1.1 400 " if http_parser == "httptools" else b"HTTP/1.1 200 "), out


async def test_any_token_is_a_method() -> None:
    # RFC 9110 9.1: a method is any token. llhttp knows a fixed list; the fast
    # driver hands a request with another one, and the rest of its connection,
    # to the h11 driver.
    for chunk in (None, 1):
        async with http11_driver(echo) as (client_end, _):
            client = RawClient(client_end)
            await client.send(GET + b"-BLARGH /x HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", chunk_size=chunk)
            bodies = []
            for method in (b"GET", b"-BLARGH", b"POST"):
                head, body = await client.response(method)
                assert head.status_code == 200
                bodies.append(body)
                client.next_cycle()
        assert bodies == [b"GET / 0:", b"-BLARGH /x 0:", b"POST /y 2:ab"], chunk


async def test_upgrade_request_not_taken_is_answered_with_its_body() -> None:
    # llhttp stops at a head asking to upgrade; the fast driver hands the
    # connection to the h11 driver, which reads the body and goes on.
    async with http11_driver(echo) as (client_end, _):
        client = RawClient(client_end)
        await client.send(b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo\r\n"
                          b"Content-Length: 5\r\n\r\nhello" + GET)
        head, body = await client.response(b"POST")
        assert (head.status_code, body) == (200, b"POST /up 5:hello")
        client.next_cycle()
        head, body = await client.response()
        assert (head.status_code, body) == (200, b"GET / 0:")
