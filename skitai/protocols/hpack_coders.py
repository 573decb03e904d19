"""hpack's encoder and decoder for the HTTP/2 driver, with two changes.

* A field block that does not decode is a COMPRESSION_ERROR (RFC 9113
  4.3); h2 reports it as a PROTOCOL_ERROR.
* Coding is remembered per state of the dynamic table. A server sends the
  same few response heads again and again, and clients repeat their
  requests; once every field of a head is in the table, its block is the
  same bytes each time and coding it leaves the table as it was. Each coder
  keeps a small map (header list to block, or block to header list) that
  is valid for one *generation* of its table: every insertion, eviction or
  resize starts a new one, so a remembered coding is only reused where
  hpack itself would produce the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import h2.exceptions
import hpack
import hpack.table
from h2.errors import ErrorCodes

_REMEMBERED = 32  # codings kept per coder; the map starts afresh when full


class CompressionError(h2.exceptions.ProtocolError):
    error_code = ErrorCodes.COMPRESSION_ERROR


class _Table(hpack.table.HeaderTable):
    """A dynamic table that counts its changes."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.generation += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.generation += 1
        hpack.table.HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class Encoder(hpack.Encoder):
    def __init__(self) -> None:
        super().__init__()
        self.header_table = self._table = _Table()
        self._blocks: dict[tuple[Any, ...], tuple[int, bytes]] = {}

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self._table
        key = tuple(headers)
        if table.resized:  # the block starts with a table size update: never the same again
            return super().encode(key, huffman)
        known = self._blocks.get(key)
        if known is not None and known[0] == table.generation:
            return known[1]
        generation = table.generation
        block = super().encode(key, huffman)
        if table.generation == generation:
            if len(self._blocks) >= _REMEMBERED:
                self._blocks.clear()
            self._blocks[key] = (generation, block)
        return block


class Decoder(hpack.Decoder):
    def __init__(self) -> None:
        super().__init__()
        self.header_table = self._table = _Table()
        self._headers: dict[bytes, tuple[tuple[int, int, int], list[Any]]] = {}

    def decode(self, data: bytes, raw: bool = False) -> Iterable[Any]:
        table = self._table
        state = (table.generation, self.max_header_list_size, self.max_allowed_table_size)
        known = self._headers.get(data)
        if known is not None and known[0] == state and raw:
            return list(known[1])
        try:
            headers = super().decode(data, raw)
        except hpack.OversizedHeaderListError:
            raise  # h2 answers it with ENHANCE_YOUR_CALM
        except (hpack.HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise CompressionError(f"header block does not decode: {exc}") from exc
        if raw and table.generation == state[0]:
            if len(self._headers) >= _REMEMBERED:
                self._headers.clear()
            self._headers[bytes(data)] = (state, list(headers))
        return headers
