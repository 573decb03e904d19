"""TCP listeners and byte streams straight on non-blocking sockets.

anyio's own socket streams sit on asyncio transports (a protocol object,
two events, a read queue per connection) or on trio's stream wrappers.
With thousands of idle keep-alive connections that is most of their memory,
and on the hot path a good part of the CPU. These classes do the same job
with the socket alone: try the system call, and only when it would block,
wait for the socket (readable: `skitai.protocols.waits`, writable:
`anyio.wait_writable`). They implement
`anyio.abc.ByteStream`, so TLS (`anyio.streams.tls.TLSStream`) and every
driver work on top of them unchanged. See docs/discussion/sockets.md.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from skitai.protocols.waits import ReadableWaiter, readable_waiter_factory

RECEIVE_SIZE = 65536


class SocketStream(anyio.abc.ByteStream):
    """A connected, non-blocking TCP socket as an anyio byte stream."""

    def __init__(self, sock: socket.socket, readable: ReadableWaiter | None = None) -> None:
        """Make it on the event loop that uses it; a listener passes `readable` made for that loop."""
        sock.setblocking(False)
        self._sock = sock
        self._readable = readable or readable_waiter_factory()(sock)
        self._closed = False
        self._drained = False  # the last read took less than it asked for

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def remote_address(self) -> tuple[str, int] | None:
        try:
            return _host_port(self._sock.getpeername())
        except OSError:
            return None

    def local_address(self) -> tuple[str, int]:
        return _host_port(self._sock.getsockname())

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        sock = self._sock
        if self._drained:
            # The last read emptied the kernel's buffer: a read now would most
            # likely fail with EAGAIN; wait first and save the system call.
            self._drained = False
            try:
                await self._readable.wait()
            except (ValueError, OSError) as exc:
                raise anyio.ClosedResourceError from exc
        while True:
            # The wait is outside the except clause: an idle connection must
            # not keep a BlockingIOError and its traceback alive.
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                data = None
            except OSError as exc:
                raise self._broken(exc) from exc
            if data is None:
                if self._closed:
                    raise anyio.ClosedResourceError
                try:
                    await self._readable.wait()
                except (ValueError, OSError) as exc:
                    raise anyio.ClosedResourceError from exc
                continue
            if not data:
                raise anyio.EndOfStream
            self._drained = len(data) < max_bytes
            return data

    async def send(self, item: bytes) -> None:
        sock = self._sock
        view = memoryview(item)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = -1
            except OSError as exc:
                raise self._broken(exc) from exc
            if sent < 0:
                if self._closed:
                    raise anyio.ClosedResourceError
                try:
                    await anyio.wait_writable(sock)
                except (ValueError, OSError) as exc:
                    raise anyio.ClosedResourceError from exc
                continue
            view = view[sent:]

    async def send_eof(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise self._broken(exc) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._readable.close()
            self._sock.close()
        await anyio.lowlevel.checkpoint()

    def _broken(self, exc: OSError) -> Exception:
        if self._closed or exc.errno == errno.EBADF:
            return anyio.ClosedResourceError()
        return anyio.BrokenResourceError()


class TCPListener:
    """A bound, listening, non-blocking TCP socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._closed = False
        self.tls = False  # the server wraps its connections in TLS
        self._new_readable: Callable[[socket.socket], ReadableWaiter] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return _host_port(self._sock.getsockname())

    async def accept(self) -> SocketStream:
        """The next connection. Raises OSError (EMFILE, ...) for the caller to handle."""
        if self._new_readable is None:
            self._new_readable = readable_waiter_factory()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                client, _ = self._sock.accept()
            except BlockingIOError:
                try:
                    await anyio.wait_readable(self._sock)
                except (ValueError, OSError) as exc:
                    raise anyio.ClosedResourceError from exc
                continue
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # the client left before we took the connection
                if self._closed or exc.errno == errno.EBADF:
                    raise anyio.ClosedResourceError from exc
                raise
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SocketStream(client, self._new_readable(client))

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            anyio.notify_closing(self._sock)
            self._sock.close()
        await anyio.lowlevel.checkpoint()


def bind_tcp(host: str, port: int, backlog: int) -> list[TCPListener]:
    """Listeners on every address `host` resolves to, all on one port (0 picks one)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    listeners: list[TCPListener] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if listeners and port == 0:
                    address = (address[0], listeners[0].address[1], *address[2:])
                sock.bind(address)
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
            listeners.append(TCPListener(sock))
    except BaseException:
        for listener in listeners:
            listener._sock.close()
        raise
    return listeners


def _host_port(address: Any) -> tuple[str, int]:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return str(address), 0


async def linger(stream: anyio.abc.ByteStream, *, seconds: float = 2.0, limit: int = 1 << 20) -> None:
    """Half-close, then read what the client still sends, before the caller closes.

    Closing a socket with unread input makes the kernel reset the
    connection, which can destroy an error answer the client has not read
    yet (a 413 or 431 sent while the request is still arriving).
    """
    with anyio.move_on_after(seconds, shield=True):
        try:
            await stream.send_eof()
            while limit > 0:
                limit -= len(await stream.receive(RECEIVE_SIZE))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                NotImplementedError, OSError):
            return

