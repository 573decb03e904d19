"""How long the fuzzers run: a short slice by default, a long run on request.

`SKITAI_FUZZ_LONG=1` selects the long run; `SKITAI_FUZZ_EXAMPLES` sets its
number of examples per test. Either way hypothesis keeps its example
database (`.hypothesis/`), so whatever a long run found is replayed first by
every later run, short or long.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from hypothesis import HealthCheck, settings

LONG = os.environ.get("SKITAI_FUZZ_LONG", "") not in ("", "0")
LONG_EXAMPLES = int(os.environ.get("SKITAI_FUZZ_EXAMPLES", "20000"))
SHORT_EXAMPLES = 300

FUZZ_SETTINGS = settings(
    max_examples=LONG_EXAMPLES if LONG else SHORT_EXAMPLES,
    deadline=None,  # one example opens a dozen connections; timing is not the property
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Per test, for pytest-timeout. A passing short slice takes seconds; a failing
# one then shrinks its example for up to five minutes (hypothesis's own
# bound), which is worth waiting for. The long run is bounded by its example
# count; this is only the backstop.
FUZZ_TIMEOUT = 6 * 3600 if LONG else 420
PROGRESS_EVERY = 10.0  # seconds between progress lines in a long run

Progress = Callable[[str], None]  # the `progress` fixture: counts an example of a test
