"""`WebSocket`: one session as an async handler sees it, on the event loop, without a thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skitai.errors import WebSocketClosed
from skitai.protocols.websocket import Data, WebSocketConnection

# Close codes an app may send (RFC 6455 7.4): the defined ones that are not
# reserved for local use, and the registered (3000-3999) and private (4000-4999) ranges.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

Environ = dict[str, Any]


class WebSocket:
    """A WebSocket session: `receive`, `send`, `close`, and `async for message in ws`.

    Messages are `str` (text frames) or `bytes` (binary frames), whole
    however the client fragmented them. `receive()` raises
    `skitai.WebSocketClosed` (with `.code`) once the session is closed and
    every message that came before the close has been received; `async for`
    just ends there. `send()` waits while the client is slow to read.

    `id` is unique among the server's sessions (the seed's client id);
    `environ` is the PEP 3333 environ of the handshake request (no body);
    `subprotocol` is the one agreed on, or None.
    """

    __slots__ = ("_conn", "_environ", "id", "subprotocol")

    def __init__(
        self, conn: WebSocketConnection, *, id: int, environ: Environ | Callable[[], Environ],
        subprotocol: str | None,
    ) -> None:
        self._conn = conn
        self._environ = environ  # or how to build it: most handlers never look
        self.id = id
        self.subprotocol = subprotocol

    @property
    def environ(self) -> Environ:
        if callable(self._environ):
            self._environ = self._environ()
        return self._environ

    async def receive(self) -> Data:
        return await self._conn.receive()

    async def send(self, message: Data) -> None:
        kind = type(message)
        if kind is not str and kind is not bytes:
            if not isinstance(message, bytearray | memoryview | str | bytes):
                raise TypeError(f"a WebSocket message is str or bytes, not {kind.__name__}")
            message = bytes(message) if isinstance(message, bytearray | memoryview) else message
        await self._conn.send(message)

    def send_nowait(self, message: Data) -> bool:
        """Queue a message without waiting (rooms use it); False if closed or dropped as too slow."""
        return self._conn.send_nowait(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the client's answer is awaited in the background."""
        if code not in _SENDABLE and not 3000 <= code <= 4999:
            raise ValueError(f"{code} is not a close code an app may send")
        await self._conn.close(code, reason)

    @property
    def closed(self) -> bool:
        """A close frame has gone either way, or the connection is gone."""
        return self._conn.closed

    @property
    def close_code(self) -> int | None:
        """The code of the closing handshake, once there is one (1006: the connection just ended)."""
        return self._conn.close_code

    @property
    def close_reason(self) -> str:
        return self._conn.close_reason

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self._conn.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<WebSocket {self.id} {state}>"
