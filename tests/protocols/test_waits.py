"""skitai.protocols.waits: the wake-up and the readable waits, on asyncio, uvloop and trio."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest

from skitai.protocols.sockets import SocketStream
from skitai.protocols.waits import wakeup_factory


@pytest.fixture(params=[
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """The server runs asyncio on uvloop by default: its reader registration differs from the stock loop's."""
    return request.param


@pytest.fixture
def http_parser() -> str:
    """No HTTP here: one run, not one per HTTP/1.1 parser."""
    return "auto"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


Pair = tuple[socket.socket, socket.socket]


def stream_of(sock: socket.socket) -> SocketStream:
    return SocketStream(sock)


async def test_wakeup_set_before_or_after_the_wait() -> None:
    wakeup = wakeup_factory()()
    wakeup.set()
    wakeup.set()
    with anyio.fail_after(1):
        await wakeup.wait()  # kept from before the wait; two sets are one wake-up
    woken = []

    async def waiter() -> None:
        await wakeup.wait()
        woken.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woken == []
        wakeup.set()
    assert woken == [True]
    with anyio.move_on_after(0.05) as scope:
        await wakeup.wait()  # the set was used up
    assert scope.cancelled_caught


async def test_wakeup_survives_a_cancelled_wait() -> None:
    wakeup = wakeup_factory()()
    with anyio.move_on_after(0.01):
        await wakeup.wait()
    wakeup.set()
    with anyio.fail_after(1):
        await wakeup.wait()


async def test_wakeup_set_and_cancelled_at_once_is_not_lost() -> None:
    wakeup = wakeup_factory()()
    returned = []

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            await wakeup.wait()
            returned.append(True)

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, scope)
        await anyio.wait_all_tasks_blocked()
        wakeup.set()
        scope.cancel()
    if not returned:
        with anyio.fail_after(1):
            await wakeup.wait()


async def test_receive_waits_for_data_again_and_again(pair: Pair) -> None:
    left, right = pair
    stream = stream_of(left)
    right.setblocking(False)
    for number in range(50):
        async with anyio.create_task_group() as tg:
            received: list[bytes] = []

            async def reader() -> None:
                received.append(await stream.receive(10))  # noqa: B023 - awaited in this iteration

            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            assert received == []
            right.send(b"%d" % number)
        assert received == [b"%d" % number]
    await stream.aclose()


async def test_data_that_arrives_while_nobody_waits(pair: Pair) -> None:
    left, right = pair
    stream = stream_of(left)
    right.send(b"a")
    assert await stream.receive(10) == b"a"  # the buffer is drained: the next read waits first
    right.send(b"b")
    await anyio.sleep(0.02)  # readable for a while with no reader: the loop must not spin on it
    right.send(b"c")
    with anyio.fail_after(1):
        data = await stream.receive(10)
    assert data == b"bc"
    right.close()
    with pytest.raises(anyio.EndOfStream):
        await stream.receive(10)
    await stream.aclose()


async def test_a_cancelled_receive_leaves_the_stream_usable(pair: Pair) -> None:
    left, right = pair
    stream = stream_of(left)
    with anyio.move_on_after(0.01) as scope:
        await stream.receive(10)
    assert scope.cancelled_caught
    right.send(b"x")
    with anyio.fail_after(1):
        assert await stream.receive(10) == b"x"
    await stream.aclose()


async def test_two_readers_at_once_is_an_error(pair: Pair) -> None:
    left, _ = pair
    stream = stream_of(left)
    async with anyio.create_task_group() as tg:
        tg.start_soon(stream.receive, 10)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await stream.receive(10)
        tg.cancel_scope.cancel()
    await stream.aclose()


async def test_closing_wakes_a_waiting_reader(pair: Pair) -> None:
    left, _ = pair
    stream = stream_of(left)
    outcome: list[type[BaseException]] = []

    async def reader() -> None:
        try:
            await stream.receive(10)
        except anyio.ClosedResourceError as exc:
            outcome.append(type(exc))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(1):
            await stream.aclose()
    assert outcome == [anyio.ClosedResourceError]


async def test_a_reused_descriptor_number_is_watched_afresh() -> None:
    """A closed stream unregisters its socket: the next socket with the same number must wake its reader."""
    for _ in range(20):
        left, right = socket.socketpair()
        stream = stream_of(left)
        try:
            right.send(b"1")
            assert await stream.receive(10) == b"1"
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.receive, 10)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()  # closes while registered, as an idle connection does
            right.send(b"2")
            with anyio.fail_after(1):
                assert await stream.receive(10) == b"2"
        finally:
            await stream.aclose()
            right.close()


ASYNCIO_SERVER = """
import socket, sys
import anyio, skitai
from skitai.runner import serve


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


def get(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        return b"".join(iter(lambda: sock.recv(4096), b""))


async def main():
    async with anyio.create_task_group() as tg:
        [(_, port)] = await tg.start(serve, skitai.Config.from_options({"mount": ("/", hello), "port": 0}))
        assert (await anyio.to_thread.run_sync(get, port)).endswith(b"hi")
        tg.cancel_scope.cancel()
    print("trio" in sys.modules)


anyio.run(main, backend="asyncio")
"""


def test_an_asyncio_server_does_not_import_trio() -> None:
    """trio's half of the waits is imported only under trio: importing trio costs about 4 MB."""
    result = subprocess.run([sys.executable, "-c", ASYNCIO_SERVER],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
