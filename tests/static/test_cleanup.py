"""Open files are closed however a response ends: done, client gone, cancelled, file cut short."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import anyio
import anyio.lowlevel
import httpx
import pytest

from skitai import Compression, static
from skitai.errors import ClientDisconnected
from skitai.protocols.events import Exchange, ExchangeStats, Headers, Request
from tests.support.rawhttp import RawClient
from tests.support.servers import serving

LARGE = 64 << 20  # far more than loopback socket buffers hold


def files_open_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except FileNotFoundError:
            pass  # closed while we looked
    return count


@pytest.fixture
def large_file(site: Path) -> Path:
    path = site / "large.bin"
    with path.open("wb") as file:
        file.truncate(LARGE)  # sparse: quick to make, quick to read
    return path


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll: the server has no event for "this connection is gone"."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_client_leaving_mid_file_closes_it(site: Path, large_file: Path) -> None:
    async with serving(mount=("/", str(site))) as srv:
        client = await RawClient.connect(srv.host, srv.port)
        await client.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.stream.receive()).startswith(b"HTTP/1.1 200 ")
        assert files_open_on(large_file) == 1
        await client.aclose()
        await wait_for(lambda: srv.server.connection_count == 0)
        assert files_open_on(large_file) == 0


async def test_file_shrinking_mid_response_cuts_it_short(site: Path, large_file: Path) -> None:
    async with serving(mount=("/", str(site))) as srv, \
            httpx.AsyncClient(base_url=srv.url, headers={"Accept-Encoding": "identity"}) as client:
        received = 0
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("GET", "/large.bin") as response:
                async for chunk in response.aiter_raw():
                    if received == 0:
                        os.truncate(large_file, 0)
                    received += len(chunk)
        assert 0 < received < LARGE
        await wait_for(lambda: srv.server.connection_count == 0)
        assert files_open_on(large_file) == 0


class RecordingExchange:
    """An exchange that keeps what is sent and lets a test act on the Nth body piece."""

    def __init__(self, path: str, on_piece: int, action: Callable[[], Awaitable[None]]) -> None:
        self.request = Request(
            method="GET", target=path.encode(), path=path.encode(), query=b"",
            http_version="1.1", headers=[(b"host", b"x")], scheme="http",
            client=("127.0.0.1", 1), server=("127.0.0.1", 2),
        )
        self.stats = ExchangeStats()
        self.status = 0
        self.pieces: list[bytes] = []
        self.ended = False
        self._on_piece = on_piece
        self._action = action

    async def start_response(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        self.status = status

    async def send_body(self, data: bytes) -> None:
        self.pieces.append(data)
        if len(self.pieces) == self._on_piece:
            await self._action()

    async def end_response(self, trailers: Headers = ()) -> None:
        self.ended = True


async def _serve(site: Path, exchange: RecordingExchange) -> bool:
    return await static.serve(
        cast(Exchange, exchange),
        str(site),
        exchange.request.path.decode(),
        script_name="",
        max_age=0,
        follow_symlinks=False,
        compression=Compression(),
    )


async def test_cancellation_mid_file_closes_it(site: Path, large_file: Path) -> None:
    with anyio.CancelScope() as scope:

        async def cancel() -> None:
            scope.cancel()
            await anyio.lowlevel.checkpoint()

        exchange = RecordingExchange("/large.bin", on_piece=2, action=cancel)
        await _serve(site, exchange)
    assert scope.cancelled_caught
    assert len(exchange.pieces) == 2
    assert not exchange.ended
    assert files_open_on(large_file) == 0


async def test_disconnect_mid_file_closes_it(site: Path, large_file: Path) -> None:
    async def disconnect() -> None:
        raise ClientDisconnected("gone")

    exchange = RecordingExchange("/large.bin", on_piece=3, action=disconnect)
    with pytest.raises(ClientDisconnected):
        await _serve(site, exchange)
    assert files_open_on(large_file) == 0


async def test_chunks_are_bounded_and_the_file_closed_at_the_end(site: Path) -> None:
    data = os.urandom(3 * static.CHUNK_SIZE + 10)
    (site / "three.bin").write_bytes(data)

    async def nothing() -> None:
        pass

    exchange = RecordingExchange("/three.bin", on_piece=0, action=nothing)
    assert await _serve(site, exchange)
    assert exchange.status == 200
    assert exchange.ended
    assert [len(piece) for piece in exchange.pieces] == [static.CHUNK_SIZE] * 3 + [10]
    assert b"".join(exchange.pieces) == data
    assert files_open_on(site / "three.bin") == 0
