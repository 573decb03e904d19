"""WebSocket clients for tests, one interface over every transport.

* `h1` and `tls`: the `websockets` library's asyncio client (HTTP/1.1
  Upgrade) on a loop thread of its own, so it runs the same under both
  backends of the server;
* `h2`: RFC 8441, an extended CONNECT on a prior-knowledge HTTP/2
  connection of the `H2Peer`, its stream's DATA framed by a client-role
  wsproto.

`Closed.code` is the close code the server sent (1006: none).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import anyio
import h2.exceptions
import h2.settings
import trustme
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_connection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate

from tests.support.h2peer import H2Peer

Data = str | bytes
TRANSPORTS = ["h1", "tls", "h2"]
RECEIVE_WITHIN = 10.0


class Closed(Exception):
    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class Refused(Exception):
    """The server did not accept the handshake."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(f"handshake refused with {status}")
        self.status = status
        self.headers = headers


class Client(Protocol):
    subprotocol: str | None
    extensions: str | None

    async def send(self, message: Data) -> None: ...
    async def recv(self) -> Data: ...
    async def close(self, code: int = 1000, reason: str = "") -> int: ...


class TLS:
    """A certificate for 127.0.0.1 and the client context that trusts it."""

    def __init__(self, directory: Any) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        self.certfile = str(directory / "server.pem")
        with open(self.certfile, "wb") as out:
            out.write(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
        self.client_context = ssl.create_default_context()
        ca.configure_trust(self.client_context)


class LoopThread:
    """An asyncio loop in a thread of its own, for the `websockets` asyncio client.

    The client then runs the same under both backends of the server, and
    all of its socket work stays in that one thread. (The library's sync
    client reads from a second thread, which can race a close and read a
    recycled file descriptor: in a test process that is the server's.)
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="websockets client",
                                       daemon=True)
        self.thread.start()

    async def run(self, coro: Any, within: float = RECEIVE_WITHIN) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await anyio.to_thread.run_sync(future.result, within)


# Made at import, so its file descriptors are there before any server's leak check.
CLIENT_LOOP = LoopThread()


class ThreadedClient:
    """The `websockets` asyncio client, on the client loop thread."""

    def __init__(self, ws: ClientConnection, runner: LoopThread) -> None:
        self.ws = ws
        self.runner = runner
        self.subprotocol = ws.subprotocol
        self.extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None

    async def send(self, message: Data | Sequence[Data]) -> None:
        try:
            await self.runner.run(self.ws.send(message))
        except ConnectionClosed as exc:
            raise self._closed() from exc

    async def recv(self) -> Data:
        try:
            return await self.runner.run(self.ws.recv())  # type: ignore[no-any-return]
        except ConnectionClosed as exc:
            raise self._closed() from exc

    async def ping(self) -> None:
        async def ping_pong() -> None:
            await asyncio.wait_for(await self.ws.ping(), RECEIVE_WITHIN)

        await self.runner.run(ping_pong())

    async def close(self, code: int = 1000, reason: str = "") -> int:
        await self.runner.run(self.ws.close(code, reason))
        return self._closed().code

    def _closed(self) -> Closed:
        received = self.ws.protocol.close_rcvd
        return Closed(received.code, received.reason) if received else Closed(1006)


class H2Client:
    """A WebSocket on one stream of an HTTP/2 connection (RFC 8441)."""

    def __init__(self, peer: H2Peer, sid: int, deflate: PerMessageDeflate | None) -> None:
        self.peer = peer
        self.sid = sid
        self.ws = Connection(ConnectionType.CLIENT, [deflate] if deflate is not None else [])
        result = peer.streams[sid]
        self.subprotocol = result.header(b"sec-websocket-protocol") and \
            result.header(b"sec-websocket-protocol").decode()  # type: ignore[union-attr]
        ext = result.header(b"sec-websocket-extensions")
        self.extensions = ext.decode() if ext else None
        self.messages: list[Data] = []
        self.closed: Closed | None = None
        self._parts: list[Data] = []

    async def _write(self, data: bytes) -> None:
        try:
            self.peer.conn.send_data(self.sid, data)
        except h2.exceptions.StreamClosedError:
            return  # the server has ended the stream: nothing more can go
        await self.peer.flush()

    async def send(self, message: Data) -> None:
        if self.closed is not None:
            raise self.closed
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        await self._write(self.ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        await self._write(data)

    async def _pump(self) -> None:
        """One read of the connection; its DATA for our stream through wsproto."""
        result = self.peer.streams[self.sid]
        if not result.data and not result.done:
            await self.peer.receive()
        data = bytes(result.data)
        result.data.clear()
        if data:
            self.ws.receive_data(data)
        elif result.done or self.peer.eof:
            if self.closed is None:
                self.closed = Closed(1006)
            return
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    joiner: Any = "" if isinstance(event.data, str) else b""
                    self.messages.append(joiner.join(self._parts))
                    self._parts = []
            elif isinstance(event, Ping):
                await self._write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = Closed(event.code, event.reason or "")
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._write(self.ws.send(event.response()))
                if not result.done:
                    with suppress(h2.exceptions.StreamClosedError):
                        self.peer.conn.end_stream(self.sid)  # the close handshake is over: our FIN
                    await self.peer.flush()

    async def recv(self) -> Data:
        with anyio.fail_after(RECEIVE_WITHIN):
            while not self.messages:
                if self.closed is not None:
                    raise self.closed
                await self._pump()
        return self.messages.pop(0)

    async def wait_closed(self) -> Closed:
        with anyio.fail_after(RECEIVE_WITHIN):
            while self.closed is None:
                await self._pump()
        return self.closed

    async def close(self, code: int = 1000, reason: str = "") -> int:
        if self.ws.state is ConnectionState.OPEN:
            await self._write(self.ws.send(CloseConnection(code=code, reason=reason)))
        return (await self.wait_closed()).code


@asynccontextmanager
async def connect(
    port: int, path: str, transport: str, *, tls: TLS | None = None, subprotocols: Sequence[str] = (),
    origin: str | None = None, compression: bool = True, peer: H2Peer | None = None,
) -> AsyncIterator[Any]:
    """A WebSocket to `path` on 127.0.0.1:`port` over `transport` (see TRANSPORTS)."""
    if transport == "h2":
        async with _h2_connect(port, path, subprotocols=subprotocols, origin=origin,
                               compression=compression, peer=peer) as client:
            yield client
        return
    scheme = "wss" if transport == "tls" else "ws"
    options: dict[str, Any] = {"open_timeout": RECEIVE_WITHIN, "close_timeout": RECEIVE_WITHIN,
                               "max_size": None, "compression": "deflate" if compression else None}
    if subprotocols:
        options["subprotocols"] = list(subprotocols)
    if origin is not None:
        options["origin"] = origin
    if transport == "tls":
        assert tls is not None
        options["ssl"] = tls.client_context
    url = f"{scheme}://127.0.0.1:{port}{path}"
    runner = CLIENT_LOOP

    async def opening() -> ClientConnection:
        return await open_connection(url, **options)

    try:
        ws = await runner.run(opening())
    except InvalidStatus as exc:
        raise Refused(exc.response.status_code, dict(exc.response.headers)) from exc
    try:
        yield ThreadedClient(ws, runner)
    finally:
        await runner.run(ws.close())


@asynccontextmanager
async def _h2_connect(
    port: int, path: str, *, subprotocols: Sequence[str], origin: str | None, compression: bool,
    peer: H2Peer | None,
) -> AsyncIterator[H2Client]:
    own = peer is None
    if peer is None:
        peer = await H2Peer.connect("127.0.0.1", port)
        await peer.start()
    try:
        enabled = peer.server_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
        assert enabled == 1, "the server does not offer extended CONNECT"
        headers = [(b":protocol", b"websocket"), (b"sec-websocket-version", b"13")]
        if subprotocols:
            headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        deflate = PerMessageDeflate() if compression else None
        if deflate is not None:
            headers.append((b"sec-websocket-extensions", deflate.name.encode() + b"; " +
                            str(deflate.offer()).encode()))
        sid = await peer.request(b"CONNECT", path.encode(), headers, end_stream=False)
        result = peer.streams[sid]
        await peer.wait_until(lambda: result.headers is not None or result.done)
        if result.headers is None or result.status != 200:
            status = result.status if result.headers is not None else 0
            raise Refused(status, {k.decode(): v.decode() for k, v in result.headers or []})
        accepted = result.header(b"sec-websocket-extensions")
        if deflate is not None and accepted:
            deflate.finalize(accepted.decode())
        client = H2Client(peer, sid, deflate if accepted else None)
        try:
            yield client
        finally:
            if client.closed is None and not peer.eof:
                with anyio.move_on_after(RECEIVE_WITHIN):
                    await client.close()
    finally:
        if own:
            await peer.aclose()
