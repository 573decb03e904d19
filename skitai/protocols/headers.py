"""Header helpers shared by the drivers: Date, reason phrases, field checks."""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus

REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
# RFC 9110 renamed these; Python's table still has the RFC 7231 names.
REASONS.update({413: b"Content Too Large", 414: b"URI Too Long", 416: b"Range Not Satisfiable",
                422: b"Unprocessable Content"})

# RFC 9110 5.5: field values are VCHAR, obs-text, SP and HTAB; every other
# control character (NUL, BEL, DEL, bare CR or LF, ...) makes the field invalid.
_BAD_FIELD_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2


def reason_phrase(status: int) -> bytes:
    return REASONS.get(status, b"Unknown")


def has_bad_field_byte(value: bytes) -> bool:
    return _BAD_FIELD_BYTE.search(value) is not None


def is_token(name: bytes) -> bool:
    return TOKEN.fullmatch(name) is not None


class DateCache:
    """The IMF-fixdate for the current second, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._value = formatdate(second, usegmt=True).encode("ascii")
            self._second = second
        return self._value


DATE = DateCache()
