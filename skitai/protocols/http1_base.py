"""The connection loop both HTTP/1.x drivers share.

A driver supplies how a request is read (`_receive_request`), what object
answers it (`_new_exchange`), what happens between two requests
(`_next_cycle`) and how an error is answered (`_answer_error`); this class
runs them: one request after another, a protocol error answered once and
followed by a lingering close, a timeout turned into 408 where one is due,
and the connection always closed and reported at the end.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from skitai.config import Limits
from skitai.errors import ClientDisconnected, RemoteProtocolError, RequestTimeout
from skitai.protocols.events import Exchange, Request
from skitai.protocols.http1_rules import READ_SIZE, check_request, peer, split_target
from skitai.protocols.http2 import PREFACE, HTTP2Connection
from skitai.protocols.sockets import linger
from skitai.protocols.timeouts import BODY, HEAD, SEND, ConnectionControl

log = logging.getLogger("skitai.server")

# What _cycle returns: True for another request, False to close, or the
# coroutine function that continues the connection on another driver.
Outcome = bool | Callable[[], Awaitable[None]]

Handler = Callable[[Exchange], Awaitable[None]]


class HTTP1Driver(ABC):
    __slots__ = (
        "_answering_head", "_client", "_exchange", "_handler", "_limits", "_receive_closed",
        "_requests", "_scheme", "_server", "_server_header", "_stream", "_successor", "control",
        "linger_on_close",
    )

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        handler: Handler,
        *,
        limits: Limits,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int],
        control: ConnectionControl,
        server_header: bytes,
        requests: int = 0,
    ) -> None:
        self._stream = stream
        self._handler = handler
        self._limits = limits
        self._scheme = scheme
        self._client = client
        self._server = server
        self.control = control
        self._server_header = server_header
        self._requests = requests  # requests already served on this connection
        self._receive_closed = False
        # The connection ends with request body the app did not read: read it
        # away before closing, or the kernel's reset may destroy the answer.
        self.linger_on_close = False
        self._answering_head = False  # the request being answered is HEAD: no body in an error
        self._exchange: Any = None
        self._successor: Callable[[], Awaitable[None]] | None = None  # another protocol's driver

    def _make_request(
        self, method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]]
    ) -> Request:
        """The neutral Request of a parsed head, after the checks both parsers share."""
        check_request(method, target, version, headers, self._limits)
        text_method = method.decode("ascii")
        path, query = split_target(text_method, target)
        return Request(
            method=text_method,
            target=target,
            path=path,
            query=query,
            http_version=version,
            headers=headers,
            scheme=self._scheme,
            client=self._client,
            server=self._server,
            connection_number=self.control.number,
            request_number=self._requests,
        )

    async def _read(self) -> bytes:
        """Bytes from the client; b"" once it has closed its side."""
        if self._receive_closed:
            return b""
        try:
            data = await self._stream.receive(READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            data = b""
        if not data:
            self._receive_closed = True
        return data

    async def send(self, data: bytes) -> None:
        control = self.control
        control.arm(SEND, self._limits.send_timeout)
        try:
            await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ClientDisconnected(str(exc) or type(exc).__name__) from exc
        finally:
            control.disarm()

    async def run(self) -> None:
        """Serve until the connection ends. Never raises, except cancellation."""
        control = self.control
        handed_over = False
        outcome: Outcome = False  # stays so when a timeout cancels the scope
        try:
            with control.scope:
                while (outcome := await self._cycle()) is True:
                    pass
                if outcome is False and self.linger_on_close:
                    await linger(self._stream)
            if callable(outcome):
                handed_over = True
                await outcome()
                return
            exchange = self._exchange
            if control.expired == HEAD or (
                control.expired == BODY and not (exchange and exchange.response_started)
            ):
                late = RequestTimeout(f"request {control.expired} not received in time")
                with anyio.move_on_after(1, shield=True):
                    await self._answer_error(late)
        except RemoteProtocolError as exc:
            await self._answer_error(exc)
            await linger(self._stream)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("connection %d failed", control.number)
        finally:
            if not handed_over:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
                if control.on_close is not None:
                    control.on_close(control)

    async def _cycle(self) -> Outcome:
        """One request and its response; True to wait for the next on this connection.

        Its own frame, so nothing of a finished exchange stays alive while the
        connection idles.
        """
        request = await self._receive_request()
        if request is None:
            return self._after_last_request()
        exchange = self._exchange = self._new_exchange(request)
        try:
            await self._handler(exchange)
        except RemoteProtocolError as exc:
            if exchange.response_started:
                log.warning("%s %s: %s", peer(self._client), exc.status, exc.message)
                return False
            raise
        if not exchange.finished:
            if not exchange.response_started:
                await exchange.respond(500, [(b"content-type", b"text/plain")], b"no response")
            return False  # with a body cut short the framing is lost
        self._exchange = None
        return await self._next_cycle(exchange)

    def _after_last_request(self) -> Outcome:
        """What _cycle returns when no request came: False to close, or a successor."""
        return self._successor or False

    async def _sniff_http2(self, data: bytes) -> bytes | None:
        """The first bytes of a connection, read on as far as the HTTP/2 preface goes.

        Data that is the preface (h2c with prior knowledge) hands the connection
        to the HTTP/2 driver and gives None; anything else is returned to be
        parsed as HTTP/1.
        """
        while len(data) < len(PREFACE) and PREFACE.startswith(data):
            more = await self._read()
            if not more:
                return data
            data += more
        if not data.startswith(PREFACE):
            return data
        self._switch_to_http2(initial_data=data)
        return None

    def _switch_to_http2(
        self, *, initial_data: bytes, upgrade: tuple[bytes, Request, bytes] | None = None
    ) -> None:
        driver = HTTP2Connection(
            self._stream, self._handler, limits=self._limits, scheme=self._scheme,
            client=self._client, server=self._server, control=self.control,
            server_header=self._server_header, initial_data=initial_data, upgrade=upgrade,
        )

        async def successor() -> None:
            self.control.renew()
            await driver.run()

        self._successor = successor

    def upgraded_stream(self, leftover: bytes) -> UpgradedStream:
        """The connection as a `Tunnel` after a 101, starting with `leftover`."""
        return UpgradedStream(self, leftover)

    @abstractmethod
    async def _receive_request(self) -> Request | None:
        """The next request head, or None once the connection is over."""

    @abstractmethod
    def _new_exchange(self, request: Request) -> Exchange:
        """The object through which the handler answers `request`."""

    @abstractmethod
    async def _next_cycle(self, exchange: Any) -> bool:
        """Get ready for the next request after `exchange`; False to close."""

    @abstractmethod
    async def _answer_error(self, exc: RemoteProtocolError) -> None:
        """Send the answer a protocol error deserves, if a response can still be sent."""


class UpgradedStream:
    """An HTTP/1.1 connection after `101 Switching Protocols`: the `Tunnel` a WebSocket runs on.

    Bytes that arrived behind the request head (a first frame sent in the
    same packet as the handshake) come first. Writes keep the connection's
    send timeout; the driver closes the connection once the exchange is over.
    """

    __slots__ = ("_driver", "_leftover")

    def __init__(self, driver: HTTP1Driver, leftover: bytes) -> None:
        self._driver = driver
        self._leftover = leftover

    async def receive(self) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        try:  # as HTTP1Driver._read, one frame less on an idle session's stack
            return await self._driver._stream.receive(READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return b""

    async def send(self, data: bytes) -> None:
        await self._driver.send(data)

    async def end(self) -> None:
        """Nothing to send: the end of the exchange closes the connection."""
