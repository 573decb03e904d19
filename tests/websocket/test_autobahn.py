"""Autobahn|Testsuite's fuzzingclient against a WebSocket echo endpoint.

`wstest` is Python 2.7 code; `autobahn/setup_py27.sh` (vendored from the
acceptance kit) installs it into ${TMPDIR:-/tmp}/py27 and /ab27 without
touching the system, and `scripts/test` runs it under CI=true. Elsewhere
the test is skipped when wstest is missing.

The quick set (385 cases: every case but the big-message sub-cases of
permessage-deflate) runs by default on one backend, a couple of minutes;
SKITAI_AUTOBAHN_FULL=1 runs all 517 cases on both backends (most of an
hour). A case fails when its behaviour or its closing behaviour is FAILED;
OK, NON-STRICT, INFORMATIONAL and UNIMPLEMENTED pass, as in the kit's
autobahn_summary.py. The report stays in the test's tmp_path (index.html).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

import anyio
import pytest

import skitai
from tests.support.servers import serving

HERE = Path(__file__).parent / "autobahn"
TMP = Path(os.environ.get("TMPDIR", "/tmp"))
PY27 = Path(os.environ.get("SKITAI_PY27", TMP / "py27"))
WSTEST = Path(os.environ.get("SKITAI_WSTEST_VENV", TMP / "ab27")) / "bin" / "wstest"
FULL = os.environ.get("SKITAI_AUTOBAHN_FULL", "") not in ("", "0")
log = logging.getLogger(__name__)  # the verdict counts: shown with -o log_cli=true

if not WSTEST.exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"wstest is not installed at {WSTEST}: scripts/test installs it under CI")
    pytest.skip(f"wstest not installed ({WSTEST}); run tests/websocket/autobahn/setup_py27.sh",
                allow_module_level=True)


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def fuzz(case_set: str, workdir: Path) -> dict[str, dict[str, object]]:
    """Serve the echo (16 MiB messages, chapter 9 needs them) and run the fuzzingclient at it."""
    async with serving(mount=("/ws", echo), access_log=False) as srv:
        spec = json.loads((HERE / f"fuzzingclient-{case_set}.json").read_text())
        spec["servers"][0]["url"] = f"ws://127.0.0.1:{srv.port}/ws"
        (workdir / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "LD_LIBRARY_PATH": str(PY27 / "usr" / "lib" / "x86_64-linux-gnu")}
        result = await anyio.run_process([str(WSTEST), "-m", "fuzzingclient", "-s", "spec.json"],
                                         cwd=workdir, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    index = json.loads((workdir / "reports" / "index.json").read_text())
    (cases,) = index.values()
    return dict(cases)


def failures(cases: dict[str, dict[str, object]]) -> tuple[list[str], Counter[str]]:
    failed = sorted(cid for cid, case in cases.items()
                    if "FAILED" in (case.get("behavior"), case.get("behaviorClose")))
    verdicts = Counter(str(case.get("behavior")) for case in cases.values())
    log.info("%d cases, %d failed: %s", len(cases), len(failed), dict(sorted(verdicts.items())))
    return failed, verdicts


@pytest.mark.timeout(900)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_quick_set(tmp_path: Path) -> None:
    cases = await fuzz("quick", tmp_path)
    failed, verdicts = failures(cases)
    assert len(cases) == 385
    assert not failed, f"FAILED cases: {failed} ({dict(verdicts)}); report: {tmp_path}/reports"


@pytest.mark.skipif(not FULL, reason="the full set takes most of an hour: SKITAI_AUTOBAHN_FULL=1")
@pytest.mark.timeout(7200)
async def test_full_set(tmp_path: Path) -> None:
    cases = await fuzz("full", tmp_path)
    failed, verdicts = failures(cases)
    assert len(cases) == 517
    assert not failed, f"FAILED cases: {failed} ({dict(verdicts)}); report: {tmp_path}/reports"
