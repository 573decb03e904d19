"""Progress lines for long fuzz runs."""

from __future__ import annotations

import sys
import time

import pytest

from fuzz.budget import LONG, PROGRESS_EVERY, Progress


@pytest.fixture(scope="session")
def progress(pytestconfig: pytest.Config) -> Progress:
    """`progress(name)` counts one example and, in a long run, shows the count now and then.

    The line goes to the terminal past pytest's output capture, so a long
    run is seen moving without `-s`.
    """
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    counts: dict[str, int] = {}
    started = time.monotonic()
    shown = [started]

    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1
        now = time.monotonic()
        if not LONG or now - shown[0] < PROGRESS_EVERY:
            return
        shown[0] = now
        with capture.global_and_fixture_disabled():
            sys.stderr.write(f"\nfuzz {name}: {counts[name]} examples in {now - started:.0f} s\n")
            sys.stderr.flush()

    return count
