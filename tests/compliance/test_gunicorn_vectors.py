"""gunicorn's request vectors, replayed over real sockets by the acceptance kit's tool.

`replay_http.py` and `vectors/gunicorn/` are vendored from the acceptance
kit (the vectors are gunicorn's, MIT, see vectors/gunicorn/LICENSE).
Every invalid vector, size-limit ones included, must be rejected or
closed, by both HTTP/1.1 parsers. Every valid vector must be answered,
except those listed in `REFUSED_VALID` (`REFUSED_VALID_BY_LLHTTP` for
llhttp: the same vectors, one with another status), each with its reason (docs/reference/http11.md
repeats the lists).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from tests.support import apps
from tests.support.servers import serving

HERE = Path(__file__).parent
VECTORS = HERE / "vectors" / "gunicorn"

REFUSED_VALID = {
    # RFC 9112 6.1: a transfer coding the server does not understand gets 501;
    # we decode only "chunked" ("identity" is no longer a transfer coding).
    "009.http": 501,
    "025.http": 501,
    "025_line.http": 501,
    "029.http": 501,
    "030.http": 501,
    "rfc9112_smuggle_gzip_chunked_01.http": 501,
    "rfc9112_smuggle_te_identity_chunked_01.http": 501,
    # RFC 9112 3.2 / RFC 3986: raw non-ASCII bytes are not allowed in a request-target.
    "027.http": 400,
    # The vector declares Content-Length: 17914 but carries 8599 bytes.
    "099.http": 400,
}

# llhttp (http_parser="httptools") answers one of them differently.
REFUSED_VALID_BY_LLHTTP = {
    **REFUSED_VALID,
    # RFC 9112 6.1: Content-Length next to Transfer-Encoding may be treated as an error.
    "009.http": 400,
}


async def replay(folder: str, port: int, tmp_path: Path, *extra: str) -> dict[str, dict]:
    out = tmp_path / f"{folder}.json"
    await anyio.run_process(
        [sys.executable, str(HERE / "replay_http.py"), str(VECTORS / folder),
         f"127.0.0.1:{port}", "--timeout", "1", "--json", str(out), *extra],
    )
    rows = json.loads(out.read_text())
    if isinstance(rows, dict):
        rows = rows.get("rows", rows.get("vectors", []))
    return {row["name"]: row for row in rows}


async def test_invalid_vectors_are_all_rejected(tmp_path: Path) -> None:
    async with serving(mount=("/", apps.echo)) as srv:
        rows = await replay("invalid", srv.port, tmp_path)
    assert len(rows) == 74
    counted = {n: r for n, r in rows.items() if not r.get("config_dependent")}
    failed = {n: r["outcome"] for n, r in counted.items() if r["outcome"] not in ("rejected", "closed")}
    assert failed == {}
    size_limited = [n for n, r in counted.items() if r.get("size_limit")]
    assert len(size_limited) == 5
    assert all(rows[n]["outcome"] == "rejected" for n in size_limited)


async def test_valid_vectors_are_answered(tmp_path: Path, http_parser: str) -> None:
    # Unvalidated echo: wsgiref.validate warns about methods such as "-BLARGH",
    # which the vectors use on purpose.
    async with serving(mount=("/", apps.plain_echo)) as srv:
        rows = await replay("valid", srv.port, tmp_path, "--add-host")
    counted = {n: r for n, r in rows.items() if not r.get("config_dependent")}
    assert len(counted) == 50
    refused = {n: r["statuses"][0] for n, r in counted.items() if not r["ok"]}
    assert refused == (REFUSED_VALID_BY_LLHTTP if http_parser == "httptools" else REFUSED_VALID)
