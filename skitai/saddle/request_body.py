"""Request bodies handed to a body parser (skitai.saddle.plugins.BODY_PARSERS) as they arrive.

A parser reads a `ParserStream`: the body a piece at a time, within the
app's limit for its media type (413 past it, whatever the parser asks for).
So that `was.request.get_body()` still answers for bodies up to
`max_cache_size`, what the parser reads is also copied into a spooled
temporary file: in memory up to `IN_MEMORY` bytes, on disk beyond, in a
file that has no name in any directory (it cannot be left behind). Caching
the body in memory before parsing, as a simpler design would, holds a
whole upload up to `max_cache_size` in memory per request; this way a
request holds at most a piece of it.

On the event loop (async routes), the parser runs in a worker thread and
reads through a `LoopBody`, which waits for each piece on the loop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.from_thread

from skitai.saddle.errors import BodyTooLarge

PIECE = 65536
IN_MEMORY = 65536  # bytes of the copy held in memory before it goes to disk

Read = Callable[[int], bytes]


class ParserStream:
    """A binary stream over `read`: at most `limit` bytes, copied for get_body() up to `keep_up_to`.

    `declared` is the Content-Length, when there is one: a body declared
    larger than `keep_up_to` is not copied at all.
    """

    def __init__(self, read: Read, *, limit: int, keep_up_to: int, declared: int | None) -> None:
        self._read = read
        self._limit = limit
        self._keep_up_to = keep_up_to
        self._received = 0
        self._copy: tempfile.SpooledTemporaryFile[bytes] | None = None
        if declared is None or declared <= keep_up_to:
            self._copy = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - closed by close()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            pieces = []
            while piece := self.read(PIECE):
                pieces.append(piece)
            return b"".join(pieces)
        data = self._read(min(size, self._limit - self._received + 1))
        self._received += len(data)
        if self._received > self._limit:
            raise BodyTooLarge(f"body over {self._limit} bytes")
        if self._copy is not None and data:
            if self._received > self._keep_up_to:
                self._drop_copy()
            else:
                self._copy.write(data)
        return data

    def copy(self) -> bytes:
        """The body read so far, for `get_body()`; 413 when it was too large to keep."""
        if self._copy is None:
            raise BodyTooLarge(f"a body over {self._keep_up_to} bytes (max_cache_size) is not kept")
        self._copy.seek(0)
        data = self._copy.read()
        self._copy.seek(0, 2)
        return data

    def close(self) -> None:
        self._drop_copy()

    def _drop_copy(self) -> None:
        if self._copy is not None:
            self._copy.close()
            self._copy = None


class LoopBody:
    """The body of a request served on the event loop, read from a worker thread."""

    def __init__(self, receive: Callable[[int], Coroutine[Any, Any, bytes]]) -> None:
        self._receive = receive
        self._buffer = bytearray()
        self._ended = False

    def read(self, size: int) -> bytes:
        while not self._ended and len(self._buffer) < size:
            piece: bytes = anyio.from_thread.run(self._receive, PIECE)
            if piece:
                self._buffer += piece
            else:
                self._ended = True
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data
