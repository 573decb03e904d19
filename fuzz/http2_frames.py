"""Hypothesis strategies for HTTP/2 conversations: mostly valid frames, then edited.

A conversation is the client preface followed by frames built one by one:
requests whose header blocks come from one HPACK encoder (so the decoder's
table state matters), split over CONTINUATION frames; bodies; window
updates, SETTINGS, PING, PRIORITY, RST_STREAM, GOAWAY and unknown frames,
each with values drawn from the edges of their ranges; floods of
CONTINUATION frames and HPACK bombs (one large field, then many indexed
references to it). Then a few edits of the bytes (a flipped bit, a changed
byte, an insertion, a cut) move some of it off the valid path.
"""

from __future__ import annotations

import struct

import hpack
from hypothesis import strategies as st

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, END_HEADERS, PADDED = 0x1, 0x4, 0x8

edge_u31 = st.sampled_from([0, 1, 0x3FFF, 0x4000, 0xFFFF, 0x10000, 2**31 - 1, 2**31, 2**32 - 1])
stream_ids = st.one_of(st.sampled_from([0, 1, 2, 3, 5, 7, 101, 2**31 - 1]), st.integers(0, 2**32 - 1))
settings_ids = st.one_of(st.integers(1, 6), st.integers(0, 0xFFFF), st.just(8))
methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT", b"OPTIONS", b"", b"get"])
paths = st.sampled_from([b"/", b"/echo?x=1", b"*", b"", b"index", b"/" + b"a" * 300])
names = st.sampled_from([b"accept", b"content-length", b"te", b"connection", b"X-Up", b":path",
                         b":status", b"host", b"cookie", b"x y", b""])
good_names = st.sampled_from([b"accept", b"user-agent", b"x-test", b"cookie", b"accept-encoding"])
good_values = st.sampled_from([b"", b"*/*", b"gzip", b"a=1", b"v" * 100])
values = st.sampled_from([b"", b"0", b"5", b"-1", b"trailers", b"gzip", b" pad ", b"a\x00b", b"x" * 200])


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload) & 0xFFFFFF
    return struct.pack(">I", length)[1:] + bytes([kind & 0xFF, flags & 0xFF]) + \
        struct.pack(">I", stream_id & 0xFFFFFFFF) + payload


@st.composite
def _request(draw: st.DrawFn, encoder: hpack.Encoder, stream_id: int) -> bytes:
    headers = [(b":method", draw(methods)), (b":path", draw(paths)), (b":scheme", b"http"),
               (b":authority", b"x")]
    if draw(st.integers(0, 4)) == 0:  # now and then, pseudo-headers out of order or missing
        headers = draw(st.permutations(headers))[: draw(st.integers(0, 4))]
    extra = st.tuples(names, values) if draw(st.integers(0, 4)) == 0 else st.tuples(good_names, good_values)
    headers += draw(st.lists(extra, max_size=4))
    block = encoder.encode(headers)
    body = draw(st.one_of(st.none(), st.binary(max_size=64)))
    ends = body is None and draw(st.booleans())
    cut = draw(st.integers(0, len(block)))
    out = frame(HEADERS, (END_STREAM if ends else 0) | (0 if cut < len(block) else END_HEADERS),
                stream_id, block[:cut])
    if cut < len(block):
        out += frame(CONTINUATION, END_HEADERS, stream_id, block[cut:])
    if body is not None:
        out += frame(DATA, END_STREAM if draw(st.booleans()) else 0, stream_id, body)
    return out


@st.composite
def _control_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["data", "window", "settings", "ping", "priority", "rst", "goaway",
                                 "unknown", "push"]))
    sid = draw(stream_ids)
    if kind == "data":
        flags = draw(st.sampled_from([0, END_STREAM, PADDED, PADDED | END_STREAM]))
        return frame(DATA, flags, sid, draw(st.binary(max_size=40)))
    if kind == "window":
        return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", draw(edge_u31) & 0xFFFFFFFF))
    if kind == "settings":
        pairs = draw(st.lists(st.tuples(settings_ids, edge_u31), max_size=4))
        payload = b"".join(struct.pack(">HI", i & 0xFFFF, v & 0xFFFFFFFF) for i, v in pairs)
        return frame(SETTINGS, draw(st.sampled_from([0, 1])), draw(st.sampled_from([0, 0, sid])), payload)
    if kind == "ping":
        return frame(PING, draw(st.sampled_from([0, 1])), draw(st.sampled_from([0, 0, sid])),
                     draw(st.binary(min_size=7, max_size=9)))
    if kind == "priority":
        return frame(PRIORITY, 0, sid, struct.pack(">IB", draw(stream_ids) & 0xFFFFFFFF, 15))
    if kind == "rst":
        return frame(RST_STREAM, 0, sid, struct.pack(">I", draw(st.integers(0, 20))))
    if kind == "goaway":
        last, code = draw(stream_ids) & 0xFFFFFFFF, draw(st.integers(0, 20))
        return frame(GOAWAY, 0, 0, struct.pack(">II", last, code))
    if kind == "push":
        return frame(PUSH_PROMISE, END_HEADERS, sid, struct.pack(">I", 2) + b"\x82")
    return frame(draw(st.integers(10, 255)), draw(st.integers(0, 255)), sid, draw(st.binary(max_size=16)))


@st.composite
def _continuation_flood(draw: st.DrawFn, encoder: hpack.Encoder, stream_id: int) -> bytes:
    block = encoder.encode([(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
                            (b":authority", b"x")])
    out = frame(HEADERS, END_STREAM, stream_id, block)
    for _ in range(draw(st.integers(1, 300))):
        out += frame(CONTINUATION, 0, stream_id, b"\x00\x01a\x01b")  # never END_HEADERS
    return out


@st.composite
def _hpack_bomb(draw: st.DrawFn, encoder: hpack.Encoder, stream_id: int) -> bytes:
    big = (b"x-bomb", b"b" * draw(st.sampled_from([1000, 3900])))
    encoder.encode([big])  # into the table (the server sees it in the first request below)
    first = encoder.encode([(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
                            (b":authority", b"x"), big])
    bomb = encoder.encode([(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
                           (b":authority", b"x"), *[big] * draw(st.integers(20, 400))])
    return frame(HEADERS, END_STREAM | END_HEADERS, stream_id, first) + \
        frame(HEADERS, END_STREAM | END_HEADERS, stream_id + 2, bomb)


@st.composite
def conversations(draw: st.DrawFn) -> bytes:
    encoder = hpack.Encoder()
    out = bytearray(PREFACE)
    out += frame(SETTINGS, 0, 0)
    next_id = 1
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["request"] * 6 + ["control"] * 3 + ["flood", "bomb"]))
        if kind == "request":
            out += draw(_request(encoder, next_id))
            next_id += 2
        elif kind == "control":
            out += draw(_control_frame())
        elif kind == "flood":
            out += draw(_continuation_flood(encoder, next_id))
            next_id += 2
        else:
            out += draw(_hpack_bomb(encoder, next_id))
            next_id += 4
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(out)))
        edit = draw(st.sampled_from(["flip", "byte", "insert", "cut"]))
        if edit == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=9))
        else:
            del out[at:]
    return bytes(out)
