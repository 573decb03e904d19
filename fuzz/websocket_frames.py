"""Hypothesis strategies for what a WebSocket client may send: nearly valid frames, edited.

Frames are built byte by byte (never through wsproto, which refuses to
make bad ones): any opcode, reserved bits, a mask or none, lengths that
lie, text that is not UTF-8, close frames with every kind of code and
reason, control frames too long or fragmented, continuations out of place.
Most frames are well-formed, so a conversation gets past its first frame.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RESERVED_OPCODES = (0x3, 0x7, 0xB, 0xF)
CLOSE_CODES = (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1015,
               999, 1016, 2000, 2999, 3000, 4999, 5000)
MASK = b"\x1f\x2e\x3d\x4c"


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True,
          length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    flag = 0x80 if masked else 0
    if size < 126:
        head += bytes([flag | size])
    elif size < 1 << 16:
        head += bytes([flag | 126]) + struct.pack("!H", size)
    else:
        head += bytes([flag | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


text_payloads = st.one_of(
    st.text(max_size=60).map(lambda t: t.encode()),
    st.binary(max_size=40),  # mostly not UTF-8
    st.sampled_from([b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", "☃".encode()[:2]]),
)


@st.composite
def close_payloads(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["code", "code", "code+reason", "empty", "one byte", "bad reason"]))
    code = struct.pack("!H", draw(st.sampled_from(CLOSE_CODES)))
    if shape == "empty":
        return b""
    if shape == "one byte":
        return b"\x03"
    if shape == "code+reason":
        return code + draw(st.text(max_size=30)).encode()[:123]
    if shape == "bad reason":
        return code + b"\xff\xfe"
    return code


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text"] * 4 + ["binary"] * 3 + ["continuation"] * 2
                                + ["ping", "pong", "close", "reserved"]))
    fin = draw(st.booleans()) if kind in ("text", "binary", "continuation") else draw(
        st.sampled_from([True] * 9 + [False]))
    if kind == "text":
        opcode, payload = TEXT, draw(text_payloads)
    elif kind in ("binary", "continuation"):
        opcode = BINARY if kind == "binary" else CONTINUATION
        payload = draw(st.one_of(text_payloads, st.binary(max_size=300)))
    elif kind in ("ping", "pong"):
        opcode = PING if kind == "ping" else PONG
        payload = draw(st.binary(max_size=130))  # past 125 is an error
    elif kind == "close":
        opcode, payload = CLOSE, draw(close_payloads())
    else:
        opcode, payload = draw(st.sampled_from(RESERVED_OPCODES)), draw(st.binary(max_size=8))
    rsv = draw(st.sampled_from([0] * 12 + [4, 2, 1]))
    masked = draw(st.sampled_from([True] * 15 + [False]))
    length = draw(st.sampled_from([None] * 15 + [len(payload) + 7, 1 << 40]))
    return frame(opcode, payload, fin=fin, rsv=rsv, masked=masked, length=length)


@st.composite
def messages(draw: st.DrawFn) -> list[bytes]:
    """One well-formed message in 1 to 3 fragments, now and then a ping between them."""
    text = draw(st.booleans())
    payload = draw(st.text(max_size=150)).encode() if text else draw(st.binary(max_size=250))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=2)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    out = []
    for index, piece in enumerate(pieces):
        opcode = (TEXT if text else BINARY) if index == 0 else CONTINUATION
        out.append(frame(opcode, piece, fin=index == len(pieces) - 1))
        if index < len(pieces) - 1 and draw(st.sampled_from([False] * 4 + [True])):
            out.append(frame(PING, draw(st.binary(max_size=20))))
    return out


@st.composite
def conversations(draw: st.DrawFn) -> bytes:
    """Well-formed messages and pings, one frame of them sometimes replaced by a wild one,
    then often a proper close, sometimes garbage."""
    parts = [f for message in draw(st.lists(messages(), max_size=5)) for f in message]
    if draw(st.booleans()):
        wild = draw(frames())
        if parts and draw(st.booleans()):
            parts[draw(st.integers(0, len(parts) - 1))] = wild
        else:
            parts.insert(draw(st.integers(0, len(parts))), wild)
    data = b"".join(parts)
    if draw(st.booleans()):
        data += frame(CLOSE, draw(close_payloads()))
    if draw(st.sampled_from([False] * 9 + [True])):
        data += draw(st.binary(max_size=16))
    return data
