"""Fuzz the HTTP/2 driver: whatever a client sends, the server stays well.

Any conversation (`http2_frames.py`: frames built from a client-role HPACK
encoder, then edited), sent whole or in drawn pieces, on either backend,
ends with the server closing the connection having sent only well-formed
frames, a GOAWAY with a defined error code when it ends the connection on
an error, nothing logged at ERROR, and no task, thread or file descriptor
left behind. A second connection served by the same handler at the same
time gets its answer regardless.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence

import anyio
import h2.config
import h2.connection
import h2.events
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import Frame, GoAwayFrame
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ_SETTINGS, FUZZ_TIMEOUT, Progress
from fuzz.harness import (
    BACKENDS,
    CONVERSATION_TIMEOUT,
    HANDLERS,
    Pieces,
    _receive_all,
    driver_errors,
    open_fds,
    pieces_of,
)
from fuzz.http2_frames import conversations
from skitai.config import Limits
from skitai.protocols.http2 import HTTP2Connection
from skitai.protocols.sockets import SocketStream
from skitai.protocols.timeouts import ConnectionControl

LIMITS = (Limits(max_header_block=4096, max_headers=16, max_body_size=32,
                 header_timeout=60, body_timeout=60, keep_alive_timeout=60),
          Limits(header_timeout=60, body_timeout=60, keep_alive_timeout=60))
MAX_FRAME = (1 << 24) - 1


def driver(stream: SocketStream | Pieces, control: ConnectionControl, limits: Limits) -> HTTP2Connection:
    return HTTP2Connection(stream, HANDLERS["echo"], limits=limits, scheme="http",
                           client=("127.0.0.1", 40000), server=("127.0.0.1", 8080), control=control,
                           server_header=b"Skitai")


async def _send(stream: SocketStream, pieces: Sequence[bytes]) -> None:
    try:
        for piece in pieces:
            await stream.send(piece)
            await anyio.lowlevel.checkpoint()
        await stream.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the server closed first


async def _clean_request(limits: Limits) -> int:
    """One GET on its own connection, next to the fuzzed one: its status."""
    server_sock, client_sock = socket.socketpair()
    client = SocketStream(client_sock)
    peer = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    peer.initiate_connection()
    peer.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")],
                      end_stream=True)
    status = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver(SocketStream(server_sock), ConnectionControl(2), limits).run)
        await client.send(peer.data_to_send())
        while not status:
            data = await client.receive()
            for received in peer.receive_data(data):
                if isinstance(received, h2.events.ResponseReceived):
                    status = int(dict(received.headers)[b":status"])
        await client.aclose()
    return status


async def converse(pieces: Sequence[bytes], limits: Limits) -> tuple[bytes, int]:
    server_sock, client_sock = socket.socketpair()
    client = SocketStream(client_sock)
    ended: list[ConnectionControl] = []
    control = ConnectionControl(1, on_close=ended.append)
    fuzzed = driver(Pieces(SocketStream(server_sock), [len(p) for p in pieces]), control, limits)
    tasks_before = len(anyio.get_running_tasks())
    received = bytearray()
    statuses: list[int] = []

    async def other() -> None:
        statuses.append(await _clean_request(limits))

    try:
        with anyio.fail_after(CONVERSATION_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(fuzzed.run)
                tg.start_soon(_send, client, pieces)
                tg.start_soon(other)
                await _receive_all(client, received)
    except TimeoutError:
        raise AssertionError(f"no close within {CONVERSATION_TIMEOUT} s") from None
    finally:
        await client.aclose()
    assert ended == [control], "the driver did not report its close"
    assert server_sock.fileno() == -1, "the driver left its socket open"
    assert len(anyio.get_running_tasks()) == tasks_before, "tasks left running"
    return bytes(received), statuses[0]


def check_frames(output: bytes) -> str:
    """Every frame the server sent is well-formed; how the connection ended."""
    view = memoryview(output)
    ending = "closed"
    first = True
    responses = 0
    while view:
        assert len(view) >= 9, f"a cut frame header at the end: {bytes(view)!r}"
        header, length = Frame.parse_frame_header(view[:9])
        assert length <= MAX_FRAME and len(view) >= 9 + length, "a cut frame at the end"
        header.parse_body(view[9:9 + length])
        if first:
            assert header.type == 0x4, "the server's preface is not SETTINGS"
            first = False
        responses += header.type == 0x1 and header.stream_id % 2 == 1
        if isinstance(header, GoAwayFrame):
            ending = ErrorCodes(header.error_code).name  # ValueError for an undefined code
        view = view[9 + length:]
    event(f"responses: {min(responses, 3)}{'+' if responses >= 3 else ''}")
    return ending


def converse_cleanly(backend: str, pieces: Sequence[bytes], limits: Limits) -> str:
    fds_before = open_fds()
    threads_before = set(threading.enumerate())
    with driver_errors() as errors:
        output, other = anyio.run(converse, pieces, limits, backend=backend)
    assert not errors, "the driver failed: " + "; ".join(r.getMessage() for r in errors)
    assert other == 200, f"the other connection got {other}"
    assert not set(threading.enumerate()) - threads_before, "threads left behind"
    assert open_fds() == fds_before, "file descriptors left behind"
    return check_frames(output)


@pytest.mark.timeout(FUZZ_TIMEOUT)
@FUZZ_SETTINGS
@given(data=conversations(), cut_sizes=st.lists(st.integers(1, 64), max_size=12),
       limits=st.sampled_from(LIMITS))
def test_any_conversation(data: bytes, cut_sizes: list[int], limits: Limits, progress: Progress) -> None:
    for backend in BACKENDS:
        for pieces in ([data], pieces_of(data, cut_sizes)):
            event(f"ended: {converse_cleanly(backend, pieces, limits)}")
    progress("http2 conversations")
