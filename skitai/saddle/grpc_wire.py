"""gRPC over HTTP/2, the wire part: message framing, compression, timeouts, status codes.

Each message is a 5-byte prefix (a compressed flag and a 32-bit length)
and the message bytes (gRPC's PROTOCOL-HTTP2.md). A call ends with the
trailers `grpc-status` and `grpc-message`. Nothing here knows Saddle.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Awaitable, Callable
from urllib.parse import quote

PREFIX = struct.Struct(">BI")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
ENCODINGS = ("identity", "gzip", "deflate")


class Status(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class GrpcError(Exception):
    """Raise it in a handler to end the call with this status and message."""

    def __init__(self, status: Status | int, message: str = "") -> None:
        super().__init__(message)
        self.status = Status(status)
        self.message = message


def parse_timeout(value: str | None) -> float | None:
    """Seconds of a `grpc-timeout` header ("100m", "5S"); None when absent.

    A malformed value ends the call with INVALID_ARGUMENT: guessing a
    deadline the client did not mean would be worse.
    """
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if not (digits.isdigit() and 0 < len(digits) <= 8 and unit in _TIMEOUT_UNITS):
        raise GrpcError(Status.INVALID_ARGUMENT, f"malformed grpc-timeout {value[:20]!r}")
    return int(digits) * _TIMEOUT_UNITS[unit]


def trailers(status: Status, message: str = "") -> list[tuple[str, str]]:
    fields = [("grpc-status", str(int(status)))]
    if message:
        # percent-encoded, as PROTOCOL-HTTP2.md asks for grpc-message
        fields.append(("grpc-message", quote(message[:1024], safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")))
    return fields


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()
    return zlib.compress(data)  # deflate: a zlib stream, as grpc sends it


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Undo `encoding`; at most `limit` bytes come out, so a bomb cannot grow past it."""
    unpacker = zlib.decompressobj(31 if encoding == "gzip" else 15)
    try:
        out = unpacker.decompress(data, limit + 1)
    except zlib.error as exc:
        raise GrpcError(Status.INTERNAL, f"message does not decompress ({encoding}): {exc}") from None
    if len(out) > limit:
        raise GrpcError(Status.RESOURCE_EXHAUSTED, f"message over {limit} bytes once decompressed")
    if not unpacker.eof or unpacker.unused_data:
        raise GrpcError(Status.INTERNAL, f"message is not one complete {encoding} stream")
    return out


def frame(message: bytes, encoding: str | None) -> bytes:
    """One length-prefixed message, compressed when an encoding is given and it pays."""
    if encoding is not None and len(message) >= 1024:
        return PREFIX.pack(1, len(packed := compress(message, encoding))) + packed
    return PREFIX.pack(0, len(message)) + message


class MessageReader:
    """Cuts a request body into messages, piece by piece as it arrives."""

    def __init__(self, receive: Callable[[], Awaitable[bytes]], encoding: str | None, limit: int) -> None:
        self._receive = receive
        self._encoding = encoding
        self._limit = limit
        self._buffer = bytearray()
        self._ended = False

    async def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            if self._ended:
                return False
            data = await self._receive()
            if not data:
                self._ended = True
            self._buffer += data
        return True

    async def next(self) -> bytes | None:
        """The next message, or None at the end of the body."""
        if not await self._fill(PREFIX.size):
            if self._buffer:
                raise GrpcError(Status.INTERNAL, "request body ends inside a message prefix")
            return None
        flag, length = PREFIX.unpack_from(self._buffer)
        if flag > 1:
            raise GrpcError(Status.INTERNAL, f"invalid compressed flag {flag}")
        if length > self._limit:
            raise GrpcError(Status.RESOURCE_EXHAUSTED, f"message of {length} bytes, over {self._limit}")
        if not await self._fill(PREFIX.size + length):
            raise GrpcError(Status.INTERNAL, f"request body ends inside a message of {length} bytes")
        message = bytes(self._buffer[PREFIX.size:PREFIX.size + length])
        del self._buffer[:PREFIX.size + length]
        if flag:
            if self._encoding is None:
                raise GrpcError(Status.INTERNAL, "compressed message without grpc-encoding")
            message = decompress(message, self._encoding, self._limit)
        return message
