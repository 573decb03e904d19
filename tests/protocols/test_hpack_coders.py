"""The HTTP/2 driver's HPACK coders remember codings: they must still code exactly as hpack does."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skitai.protocols.hpack_coders import CompressionError, Decoder, Encoder

# Few distinct fields, so lists repeat and the remembered codings are used.
names = st.sampled_from([b":status", b"content-type", b"date", b"x-a", b"x-b", b"set-cookie"])
values = st.sampled_from([b"200", b"404", b"text/plain", b"v" * 40, b"w" * 300, b"", b"1"])
header_lists = st.lists(st.lists(st.tuples(names, values), min_size=1, max_size=6), max_size=40)
table_sizes = st.lists(st.sampled_from([None, None, None, 0, 64, 256, 4096]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(header_lists, table_sizes)
def test_encoder_blocks_decode_as_hpack_does(lists: list[list[tuple[bytes, bytes]]],
                                             sizes: list[int | None]) -> None:
    ours, reference = Encoder(), hpack.Encoder()
    decoder = hpack.Decoder()
    for index, headers in enumerate(lists):
        size = sizes[index] if index < len(sizes) else None
        if size is not None:
            ours.header_table_size = reference.header_table_size = size
        block = ours.encode(headers)
        assert block == reference.encode(headers)
        assert decoder.decode(block, raw=True) == headers


@settings(max_examples=300, deadline=None)
@given(header_lists, table_sizes)
def test_decoder_reads_hpack_blocks(lists: list[list[tuple[bytes, bytes]]], sizes: list[int | None]) -> None:
    encoder = hpack.Encoder()
    ours, reference = Decoder(), hpack.Decoder()
    for index, headers in enumerate(lists):
        size = sizes[index] if index < len(sizes) else None
        if size is not None:
            encoder.header_table_size = size
        block = encoder.encode(headers)
        table = list(reference.header_table.dynamic_entries)
        assert ours.decode(block, raw=True) == reference.decode(block, raw=True) == headers
        if list(reference.header_table.dynamic_entries) == table and (block[0] & 0xE0) != 0x20:
            # Decoding these bytes again changes nothing: ours may answer from memory.
            assert ours.decode(block, raw=True) == reference.decode(block, raw=True) == headers


def test_remembered_block_is_not_reused_after_the_table_changed() -> None:
    encoder, decoder = Encoder(), hpack.Decoder()
    first = [(b"x-a", b"1")]
    assert decoder.decode(encoder.encode(first), raw=True) == first
    indexed = encoder.encode(first)  # now only an index, remembered
    encoder.header_table_size = 0  # the entry is gone
    again = encoder.encode(first)
    assert again != indexed
    assert decoder.decode(again, raw=True) == first


def test_undecodable_block_is_a_compression_error() -> None:
    with pytest.raises(CompressionError):
        Decoder().decode(b"\x80", raw=True)
