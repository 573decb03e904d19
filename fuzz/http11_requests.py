"""Hypothesis strategies for what an HTTP/1.1 client may send.

Arbitrary bytes rarely get past a request line, so most of the fuzzing
starts from requests that are nearly valid: a request line, header fields
and a body framed by Content-Length or chunked coding, several of them
pipelined. Each piece is usually spelled right and now and then wrong (odd
versions, conflicting framing fields, signed, hex or huge lengths, bad chunk
sizes, forbidden trailers, obs-fold, bare LF). Half the time the byte string
is then edited a little, so the parser and the framing checks see what lies
just beside the valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
ODD_METHODS = (b"CONNECT", b"TRACE", b"BREW", b"get", b"G\xc3\x89T", b"")
ODD_VERSIONS = (b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1.1 ", b"HTTP/11",
                b"HTTP/1", b"")
ODD_TARGETS = (b"*", b"", b"//", b"x.y:80", b"example.com:443", b"/\xff", b"/a b",
               b"http://x", b"https://[::1]:80/a?b", b"ftp://x/", b"HTTP://x/y")
ODD_HOSTS = (b"example.com:8080", b"", b"[::1]:80", b"a b", b"x, y", b"x\xff")
FIELD_NAMES = (b"Accept", b"User-Agent", b"Content-Type", b"Connection", b"Expect", b"TE",
               b"Trailer", b"Upgrade", b"Cookie", b"X-Forwarded-For", b"X")
FIELD_VALUES = {
    b"Connection": (b"close", b"keep-alive", b"Keep-Alive, Upgrade", b"upgrade", b""),
    b"Expect": (b"100-continue", b"100-Continue", b"nothing"),
    b"TE": (b"trailers", b"gzip"),
    b"Trailer": (b"X-Sum", b"Content-Length"),
    b"Upgrade": (b"websocket", b"h2c"),
}
ODD_SEPARATORS = (b":", b" : ", b":\t", b": \t", b"::")
ODD_CODINGS = (b"Chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"chunked ",
               b" chunked", b"chunked, chunked", b"", b"x")
ODD_TRAILERS = (b"Content-Length", b"Transfer-Encoding", b"Host", b"Connection", b"X-\x00")
EDITS = ("flip", "insert", "insert", "delete", "repeat", "truncate")
INSERTIONS = (b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b",", b";",
              b"\r\n ", b"\x7f", b"\xff", b"0\r\n\r\n", b"Content-Length: 3\r\n",
              b"Transfer-Encoding: chunked\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PATH = "abcxyz0129/-._~%?=&#:@+!$'()*,;"
VALUE = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t"


def usually(right: st.SearchStrategy[T], wrong: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Draws from `right` about fifteen times in sixteen, else from `wrong`.

    Shrinks towards `right`. Rarer mistakes let more requests of a pipeline
    through, so the fuzzing reaches the later ones and their framing.
    """
    return st.integers(0, 15).flatmap(lambda n: right if n < 15 else wrong)


def rarely() -> st.SearchStrategy[bool]:
    """True about one time in sixteen; shrinks to False.

    Not `n == 0`: hypothesis draws the low end of a range far more often.
    """
    return st.integers(0, 15).map(lambda n: n == 15)


def spelled(right: bytes, wrong: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    return usually(st.just(right), st.sampled_from(wrong))


def text(alphabet: str, min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[bytes]:
    return st.text(alphabet, min_size=min_size, max_size=max_size).map(
        lambda s: s.encode("latin-1"))


def lengths(actual: int) -> st.SearchStrategy[bytes]:
    """A Content-Length value: usually the right one, else a near or a malformed one."""
    right = str(actual).encode()
    return usually(st.just(right), st.one_of(
        st.integers(0, actual + 8).map(lambda n: str(n).encode()),
        st.sampled_from((b"+" + right, b"-" + right, b"0" + right, b" " + right + b" ",
                         right + b", " + right, right + b",", hex(actual).encode(),
                         b"%x" % actual, b"99999999999999999999", b"1e3", b"", right + b"\x00")),
    ))


@st.composite
def chunked(draw: st.DrawFn, body: bytes, eol: bytes) -> bytes:
    """`body` in chunked coding, with the odd bad chunk size, extension or trailer."""
    out = []
    at = 0
    while at < len(body):
        size = draw(st.integers(1, len(body) - at))
        chunk_size = draw(spelled(b"%x" % size, (
            b"%X" % size, b"00%x" % size, b"%x;ext=1" % size, b"%x ;a=b" % size, b"0x%x" % size,
            b"-%x" % size, b"%x " % size, b"zz", b"ffffffffffffffffffff", b"%x" % (size + 1), b"",
        )))
        out.append(chunk_size + eol + body[at : at + size] + eol)
        at += size
    last = draw(spelled(b"0", (b"000", b"0;last", b"", b"1")))
    trailers = draw(st.lists(spelled(b"X-Sum", ODD_TRAILERS), max_size=2))
    out.append(last + eol + b"".join(name + b": 1" + eol for name in trailers) + eol)
    return b"".join(out)


@st.composite
def framed_body(draw: st.DrawFn, eol: bytes) -> tuple[list[bytes], bytes]:
    """Framing header lines and the body they frame (or misframe)."""
    body = draw(st.binary(max_size=64))
    framing = draw(usually(st.sampled_from(("none", "length", "chunked")),
                           st.sampled_from(("both", "two lengths", "two codings"))))
    if framing == "none":
        return [], body if draw(rarely()) else b""
    if framing in ("length", "two lengths"):
        lines = [b"Content-Length: " + draw(lengths(len(body)))]
        if framing == "two lengths":
            lines.append(b"content-length: " + draw(lengths(len(body))))
        return lines, body
    lines = [b"Transfer-Encoding: " + draw(spelled(b"chunked", ODD_CODINGS))]
    if framing == "both":
        lines.insert(draw(st.integers(0, 1)), b"Content-Length: " + draw(lengths(len(body))))
    if framing == "two codings":
        lines.append(b"Transfer-Encoding: " + draw(spelled(b"chunked", ODD_CODINGS)))
    return lines, draw(chunked(body, eol))


@st.composite
def field_lines(draw: st.DrawFn, eol: bytes) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(FIELD_NAMES), text(TOKEN, 1, 12)))
        choices = FIELD_VALUES.get(name)
        value = draw(st.sampled_from(choices) if choices else text(VALUE, max_size=40))
        line = name + draw(spelled(b": ", ODD_SEPARATORS)) + value
        if draw(rarely()):
            line += eol + draw(st.sampled_from((b" ", b"\t"))) + b"folded"  # obs-fold
        lines.append(line)
    return lines


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request, nearly valid."""
    eol = draw(spelled(b"\r\n", (b"\n",)))
    method = draw(usually(st.sampled_from(METHODS), st.sampled_from(ODD_METHODS)))
    target = draw(usually(text(PATH, max_size=30).map(lambda p: b"/" + p),
                          st.sampled_from(ODD_TARGETS)))
    version = draw(usually(st.sampled_from((b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0")),
                           st.sampled_from(ODD_VERSIONS)))
    lines = draw(field_lines(eol))
    if not draw(rarely()):
        lines.insert(draw(st.integers(0, len(lines))), b"Host: " + draw(spelled(b"x", ODD_HOSTS)))
    framing, body = draw(framed_body(eol))
    for line in framing:
        lines.insert(draw(st.integers(0, len(lines))), line)
    head = b" ".join((method, target, version)) + eol + b"".join(line + eol for line in lines)
    return head + eol + body


@st.composite
def edited(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with up to three small edits: a flipped bit, an inserted separator, a cut."""
    for _ in range(draw(st.one_of(st.just(0), st.integers(1, 3)))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(EDITS))
        if edit == "flip" and at < len(data):
            bit = 1 << draw(st.integers(0, 7))
            data = data[:at] + bytes([data[at] ^ bit]) + data[at + 1 :]
        elif edit == "insert":
            data = data[:at] + draw(st.sampled_from(INSERTIONS)) + data[at:]
        elif edit == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif edit == "repeat":
            data = data[:at] + data[at : at + draw(st.integers(1, 40))] + data[at:]
        elif edit == "truncate":
            data = data[:at]
    return data


@st.composite
def pipelines(draw: st.DrawFn, max_requests: int = 4) -> bytes:
    """Up to `max_requests` nearly valid requests back to back, perhaps edited."""
    return draw(edited(b"".join(draw(st.lists(requests(), min_size=1, max_size=max_requests)))))
