"""A raw WebSocket client for what real clients never send.

Frames are built byte by byte (any opcode, reserved bits, mask, length);
what the server sends back is decoded by a client-role wsproto, so the
server's frames are checked as a real client would.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import generate_accept_token

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
WITHIN = 10.0


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
          mask: bytes | None = MASK, length: int | None = None) -> bytes:
    """One frame: `rsv` is the 3 reserved bits (4 = RSV1); `length` may lie about the payload."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    flag = 0x80 if mask is not None else 0
    if size < 126:
        head += bytes([flag | size])
    elif size < 1 << 16:
        head += bytes([flag | 126]) + struct.pack("!H", size)
    else:
        head += bytes([flag | 127]) + struct.pack("!Q", size)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_frame(code: int | None = 1000, reason: bytes = b"") -> bytes:
    return frame(CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


def handshake(path: str = "/", headers: Sequence[tuple[str, str]] = (), *, key: bytes | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {(key or base64.b64encode(os.urandom(16))).decode()}",
             "Sec-WebSocket-Version: 13"]
    names = {name.lower() for name, _ in headers}
    lines = [line for line in lines if line.split(":")[0].lower() not in names]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawWebSocket:
    """A socket that did a WebSocket handshake; server frames decoded by wsproto."""

    def __init__(self, stream: anyio.abc.ByteStream, head: bytes, rest: bytes) -> None:
        self.stream = stream
        self.head = head
        self.ws = Connection(ConnectionType.CLIENT)
        self.events: list[Any] = []
        self.eof = False
        if rest:
            self.ws.receive_data(rest)
            self.events += list(self.ws.events())

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    @classmethod
    async def open(cls, port: int, path: str = "/", *, after: bytes = b"",
                   headers: Sequence[tuple[str, str]] = ()) -> RawWebSocket:
        """Handshake (with `after` in the same write) and read the answer's head."""
        stream = await anyio.connect_tcp("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        await stream.send(handshake(path, headers, key=key) + after)
        data = b""
        with anyio.fail_after(WITHIN):
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
        head, _, rest = data.partition(b"\r\n\r\n")
        client = cls(stream, head, rest)
        if client.status == 101:
            assert client.header(b"sec-websocket-accept") == generate_accept_token(key), head
        return client

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def _read(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.eof = True
            return
        if self.ws.state is not ConnectionState.CLOSED:
            self.ws.receive_data(data)
            self.events += list(self.ws.events())

    async def next_event(self) -> Any:
        """The next message (joined), Ping, Pong or CloseConnection; None at EOF."""
        parts: list[Any] = []
        with anyio.fail_after(WITHIN):
            while True:
                while self.events:
                    event = self.events.pop(0)
                    if isinstance(event, TextMessage | BytesMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            return ("" if isinstance(event.data, str) else b"").join(parts)
                    elif isinstance(event, Ping | Pong | CloseConnection):
                        return event
                if self.eof:
                    return None
                await self._read()

    async def closed_with(self) -> int | None:
        """Events until the server's close frame: its code (None if the connection just ended)."""
        while True:
            event = await self.next_event()
            if event is None:
                return None
            if isinstance(event, CloseConnection):
                return event.code

    async def read_to_eof(self) -> None:
        with anyio.fail_after(WITHIN):
            while not self.eof:
                await self._read()

    async def aclose(self) -> None:
        await self.stream.aclose()
