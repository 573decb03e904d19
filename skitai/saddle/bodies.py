"""What a handler may return, turned into response bytes.

| returned | sent |
|---|---|
| str | UTF-8 |
| bytes, bytearray, memoryview | as is |
| None | an empty body |
| dict | JSON (`application/json` unless a Content-Type was set) |
| int, float, bool | their text |
| file-like (`read`) | read and sent 64 KiB at a time, never whole |
| iterator, generator (sync or async) | each item as it comes (str, bytes) |
| object with `more()` | `more()` until it returns empty (a producer) |
| list, tuple | each item in turn, converted as above |

Anything with a `close()` has it called once the body is sent or the client
went away. The seed's last kind, values for XML-RPC callers, is handled by
skitai.saddle.rpc: a value is only a body for HTTP callers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio.from_thread

READ_SIZE = 65536
JSON = "application/json"


class Body:
    """A response body: complete bytes, or an iterator of bytes that must be closed."""

    __slots__ = ("content", "content_type", "stream")

    def __init__(self, content: bytes | None, stream: Stream | None = None,
                 content_type: str | None = None) -> None:
        self.content = content
        self.stream = stream
        self.content_type = content_type  # the type this kind of value implies, if any


def make_body(value: Any) -> Body:
    """A Body for a handler's return value; TypeError for values that cannot be sent."""
    if isinstance(value, str):
        return Body(value.encode("utf-8"))
    if isinstance(value, bytes):
        return Body(value)
    if value is None:
        return Body(b"")
    if isinstance(value, dict):
        return Body(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"),
                    content_type=JSON)
    if isinstance(value, bytearray | memoryview):
        return Body(bytes(value))
    if isinstance(value, int | float):
        return Body(str(value).encode("ascii"))
    if isinstance(value, list | tuple):
        if all(isinstance(item, str | bytes) for item in value):
            return Body(b"".join(i.encode("utf-8") if isinstance(i, str) else i for i in value))
        return Body(None, Stream(_chain(value), value))
    if hasattr(value, "read"):
        return Body(None, Stream(_read_file(value), value))
    if hasattr(value, "more"):
        return Body(None, Stream(_produce(value), value))
    if hasattr(value, "__anext__"):
        return Body(None, Stream(_async_items(value), value))
    if hasattr(value, "__next__") or hasattr(value, "__iter__"):
        return Body(None, Stream(_items(iter(value)), value))
    raise TypeError(f"a handler cannot return a {type(value).__name__} as a response body")


class Stream:
    """The bytes of a streamed body, with `close()` reaching the returned object."""

    __slots__ = ("_closed", "_pieces", "_source", "on_close")

    def __init__(self, pieces: Iterator[bytes], source: Any) -> None:
        self._pieces = pieces
        self._source = source
        self._closed = False
        self.on_close: Callable[[], None] | None = None  # called last

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
        finally:
            try:
                _close(self._source)
            finally:
                if self.on_close is not None:
                    self.on_close()


def _close(source: Any) -> None:
    if isinstance(source, list | tuple):
        for part in source:  # parts never reached still hold files
            _close(part)
        return
    close = getattr(source, "close", None)
    if close is not None:
        close()
    elif hasattr(source, "aclose"):
        anyio.from_thread.run(source.aclose)


def _to_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise TypeError(f"a response body cannot hold a {type(item).__name__}")


def _read_file(file: Any) -> Iterator[bytes]:
    while data := file.read(READ_SIZE):
        yield _to_bytes(data)


def _produce(producer: Any) -> Iterator[bytes]:
    while data := producer.more():
        yield _to_bytes(data)


def _items(iterator: Iterator[Any]) -> Iterator[bytes]:
    for item in iterator:
        if item:
            yield _to_bytes(item)


def _async_items(iterator: AsyncIterator[Any]) -> Iterator[bytes]:
    """An async iterator read from a worker thread, each step on the event loop."""
    while True:
        try:
            item: Any = anyio.from_thread.run(iterator.__anext__)  # type: ignore[arg-type]
        except StopAsyncIteration:
            return
        if item:
            yield _to_bytes(item)


def _chain(parts: list[Any] | tuple[Any, ...]) -> Iterator[bytes]:
    for part in parts:
        body = make_body(part)
        if body.content is not None:
            if body.content:
                yield body.content
            continue
        assert body.stream is not None
        try:
            yield from body.stream
        finally:
            body.stream.close()
