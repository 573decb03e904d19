"""Fuzz the WebSocket driver against one invariant.

Any frames a client sends (bad masks, lengths, opcodes and reserved bits,
invalid UTF-8, control frames out of place, huge fragments, garbage), sent
whole, byte by byte or in drawn pieces, on either backend, get the same
answer: well-formed frames that echo a prefix of the complete messages a
plain wsproto server reads from the same bytes, the pongs due, then the
close the situation calls for: the code of wsproto's protocol error (1002,
1007), the client's own code echoed, 1009 for an oversized frame or
message, and 1000 (the app returns) or none when the bytes just end. The driver never logs a
crash, and leaves no task, thread or file descriptor behind.

One difference between splits is allowed: a message that arrives together
with the client's close is not echoed (once a close has come, wsproto sends
nothing but the answering close), while the same message a read earlier is.
After a protocol error the app answers everything that came before it, so
then the echoes match too.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ_SETTINGS, FUZZ_TIMEOUT, Progress
from fuzz.harness import BACKENDS, pieces_of
from fuzz.websocket_frames import conversations
from fuzz.websocket_harness import (
    DEFAULT_LIMITS,
    SMALL_LIMITS,
    Outcome,
    converse_cleanly,
    decode,
    reference,
)
from skitai.config import Limits


def outcome_every_way(data: bytes, cut_sizes: Sequence[int], limits: Limits, compressed: bool) -> Outcome:
    splits = {
        "whole": [data],
        "byte by byte": [data[i : i + 1] for i in range(len(data))],
        "in drawn pieces": pieces_of(data, cut_sizes),
    }
    _, client_code, _ = reference(data, compressed)
    first: Outcome | None = None
    for backend in BACKENDS:
        for split, pieces in splits.items():
            outcome = decode(converse_cleanly(backend, pieces, limits, compressed), compressed)
            if first is None:
                first = outcome
            same = (outcome.close, outcome.pongs) == (first.close, first.pongs)
            if client_code is None:  # no close of the client's own: every message is answered
                same = same and outcome.messages == first.messages
            assert same, f"sent {split} on {backend}: {outcome} after {first}"
            check(data, outcome, compressed)
    assert first is not None
    return first


def check(data: bytes, outcome: Outcome, compressed: bool) -> None:
    messages, client_code, error_code = reference(data, compressed)
    if not compressed:
        assert list(outcome.messages) == messages[: len(outcome.messages)], "echoed what was not sent"
    # An oversized frame or message closes 1009 before wsproto (which has no
    # limits) would see anything wrong; otherwise the code is the situation's.
    if error_code is not None:  # a protocol error: its code, never silence
        allowed: set[int | None] = {error_code, 1009}
    elif client_code is not None:  # the client's close, echoed
        allowed = {client_code, 1009}
    else:  # the bytes end: the echo app returns (1000), or the connection is gone first
        allowed = {None, 1000, 1009}
    assert outcome.close in allowed, (outcome.close, client_code, error_code)


def report(outcome: Outcome) -> None:
    event(f"echoed: {min(len(outcome.messages), 3)}{'+' if len(outcome.messages) > 3 else ''}")
    event(f"closed with: {outcome.close}")


@pytest.mark.timeout(FUZZ_TIMEOUT)
@FUZZ_SETTINGS
@given(data=conversations(), cut_sizes=st.lists(st.integers(1, 64), max_size=24),
       limits=st.sampled_from((SMALL_LIMITS, DEFAULT_LIMITS)))
def test_frames(data: bytes, cut_sizes: list[int], limits: Limits, progress: Progress) -> None:
    report(outcome_every_way(data, cut_sizes, limits, compressed=False))
    progress("websocket frames")


@pytest.mark.timeout(FUZZ_TIMEOUT)
@FUZZ_SETTINGS
@given(data=conversations(), cut_sizes=st.lists(st.integers(1, 64), max_size=24))
def test_frames_with_deflate(data: bytes, cut_sizes: list[int], progress: Progress) -> None:
    report(outcome_every_way(data, cut_sizes, SMALL_LIMITS, compressed=True))
    progress("websocket frames, deflate")
