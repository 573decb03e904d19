"""Content negotiation for gzip, shared by the WSGI and static adapters."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

GZIP_WBITS = 31  # zlib container with a gzip header and trailer


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """True when an Accept-Encoding value allows gzip (RFC 9110 12.5.3)."""
    if not accept_encoding:
        return False
    star = None
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.partition(b";")
        coding = coding.strip()
        q = _quality(params)
        if coding in (b"gzip", b"x-gzip"):
            return q > 0
        if coding == b"*":
            star = q > 0
    return bool(star)


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def gzip_bytes(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
    return compressor.compress(data) + compressor.flush()


class GzipStream:
    """Compresses a body piece by piece; each piece is flushed so streaming still streams."""

    __slots__ = ("_compressor",)

    def __init__(self, level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush()


def with_vary(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers with Accept-Encoding added to Vary."""
    out: list[tuple[bytes, bytes]] = []
    found = False
    for name, value in headers:
        if name.lower() == b"vary":
            found = True
            if b"accept-encoding" not in value.lower() and value.strip() != b"*":
                value = value + b", Accept-Encoding"
        out.append((name, value))
    if not found:
        out.append((b"Vary", b"Accept-Encoding"))
    return out
