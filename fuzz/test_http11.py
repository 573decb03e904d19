"""Fuzz the HTTP/1.1 driver against one invariant.

Any byte sequence, sent whole, byte by byte or in drawn pieces, on either
backend, gets well-formed responses: the test handler's answers, then at
most one 4xx (or 501/505) from the driver followed by a close. Every way of
sending gets the same answers, and each conversation leaves no task,
thread or file descriptor behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from fuzz.answers import Answer, check_answers, decode
from fuzz.budget import FUZZ_SETTINGS, FUZZ_TIMEOUT, Progress
from fuzz.harness import (
    BACKENDS,
    DEFAULT_LIMITS,
    HANDLERS,
    PARSERS,
    SMALL_LIMITS,
    converse_cleanly,
    pieces_of,
)
from fuzz.http11_requests import pipelines
from skitai.config import Limits
from skitai.protocols.http2 import PREFACE

any_handler = st.sampled_from(sorted(HANDLERS))
any_limits = st.sampled_from((SMALL_LIMITS, DEFAULT_LIMITS))
any_cuts = st.lists(st.integers(1, 64), max_size=24)


def answers_every_way(data: bytes, cut_sizes: Sequence[int], handler: str,
                      limits: Limits, parser: str) -> list[Answer]:
    """The answers to `data`, after checking they are valid and the same every way."""
    splits = {
        "whole": [data],
        "byte by byte": [data[i : i + 1] for i in range(len(data))],
        "in drawn pieces": pieces_of(data, cut_sizes),
    }
    reference: list[Answer] | None = None
    for backend in BACKENDS:
        for split, pieces in splits.items():
            answers = decode(converse_cleanly(backend, pieces, handler, limits, parser))
            check_answers(answers)
            if reference is None:
                reference = answers
            assert answers == reference, f"sent {split} on {backend}, the answers differ"
    assert reference is not None
    return reference


def report(answers: Sequence[Answer]) -> None:
    """Show how deep the fuzzing got (`--hypothesis-show-statistics`)."""
    served = sum(1 for answer in answers if answer.echo is not None)
    event(f"handler answers: {served if served < 3 else '3 or more'}")
    refused = [answer.status for answer in answers if answer.echo is None]
    event(f"driver answer: {refused[0] if refused else 'none'}")


@pytest.mark.timeout(FUZZ_TIMEOUT)
@pytest.mark.parametrize("parser", PARSERS)
@FUZZ_SETTINGS
@given(data=st.binary(max_size=512), cut_sizes=any_cuts, handler=any_handler, limits=any_limits)
def test_arbitrary_bytes(data: bytes, cut_sizes: list[int], handler: str, limits: Limits,
                         parser: str, progress: Progress) -> None:
    assume(not data.startswith(PREFACE))  # that is HTTP/2, fuzzed in test_http2.py
    report(answers_every_way(data, cut_sizes, handler, limits, parser))
    progress("arbitrary bytes")


@pytest.mark.timeout(FUZZ_TIMEOUT)
@pytest.mark.parametrize("parser", PARSERS)
@FUZZ_SETTINGS
@given(data=pipelines(), cut_sizes=any_cuts, handler=any_handler, limits=any_limits)
def test_mutated_requests(data: bytes, cut_sizes: list[int], handler: str, limits: Limits,
                          parser: str, progress: Progress) -> None:
    assume(not data.startswith(PREFACE))
    report(answers_every_way(data, cut_sizes, handler, limits, parser))
    progress("mutated requests")


# Inputs the fuzzers once found a difference on, kept as plain tests.
FOUND = [
    # llhttp reported the last complete field only when a byte-by-byte read
    # ended inside the next (broken) one: 431 one way, 400 the other.
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n"
    b"GET /0000000 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\nAccept: \r\n"
    b"Accept: 000000\r\nUser-Agent: 000000000000\r\nConnection: closTransfer-Encoding: chunked\r\n"
    b"e\r\n\r\n0\r\n\r\n",
    # A pipelined head was counted from its first byte only when it began a read.
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n"
    b"DELETE //;'/~+# HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\nAccept: \r\n"
    b"Accept: 000000\r\nContent-Type: 000000000000\r\nConnection: cTransfer-Encoding: chunked\r\n"
    b"lose\r\n\r\n0\r\n\r\n",
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("data", FOUND)
def test_found_cases(data: bytes, parser: str) -> None:
    answers_every_way(data, [3, 7], "echo", SMALL_LIMITS, parser)
