"""A raw-socket HTTP/1.1 client for what real clients never send."""

from __future__ import annotations

import anyio
import anyio.abc
import h11


class RawClient:
    """Sends bytes as given and decodes responses with a client-role h11."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, host: str, port: int) -> RawClient:
        return cls(await anyio.connect_tcp(host, port))

    async def send(self, data: bytes, *, chunk_size: int | None = None) -> None:
        if chunk_size is None:
            await self.stream.send(data)
            return
        for i in range(0, len(data), chunk_size):
            await self.stream.send(data[i : i + chunk_size])

    async def read_all(self, within: float = 5.0) -> bytes:
        """Everything until the server closes."""
        chunks = []
        with anyio.fail_after(within):
            while True:
                try:
                    chunks.append(await self.stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return b"".join(chunks)

    async def response(self, method: bytes = b"GET", within: float = 5.0) -> tuple[h11.Response, bytes]:
        """The next final response and its body (h11 needs the request method)."""
        if self.conn.our_state is h11.IDLE:
            self.conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
            self.conn.send(h11.EndOfMessage())
        head = None
        body = bytearray()
        with anyio.fail_after(within):
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await self.stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        data = b""
                    self.conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    return head, bytes(body)
                elif isinstance(event, h11.ConnectionClosed):
                    raise EOFError("closed before a complete response")

    def next_cycle(self) -> None:
        self.conn.start_next_cycle()

    async def aclose(self) -> None:
        await self.stream.aclose()
