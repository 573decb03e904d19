"""A directory tree to serve in the static file tests, and what is in it."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT, well in the past
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"

INDEX = b"<!DOCTYPE html><h1>home</h1>\n"
HELLO = b"Hello, static world\n"
SMALL_CSS = b"body { color: black }\n"  # below the gzip min_size
BINARY = bytes(range(256)) * 1000  # 256,000 bytes, not compressible by type
BIG_TEXT = b"".join(b"line %06d of a text that spans several read chunks\n" % i
                    for i in range(12000))  # about 660 KB
SCRIPT = b"function greet(name) { return 'hello ' + name; }\n" * 100  # 5,100 bytes
SCRIPT_GZ = gzip.compress(SCRIPT, mtime=0)
DOCS_INDEX = b"<p>docs</p>\n"
ACME = b"token.thumbprint\n"


def build_site(root: Path) -> None:
    """Fill `root` with the files the tests ask for, all with the same mtime."""
    files = {
        "index.html": INDEX,
        "hello.txt": HELLO,
        "style.css": SMALL_CSS,
        "data.bin": BINARY,
        "big.txt": BIG_TEXT,
        "app.js": SCRIPT,
        "app.js.gz": SCRIPT_GZ,
        "page.json": b'{"a": 1}',
        "README": b"no extension\n",
        "archive.tar.gz": SCRIPT_GZ,
        "empty.txt": b"",
        "caf\u00e9.txt": "caf\u00e9\n".encode(),
        "docs/index.htm": DOCS_INDEX,
        "both/index.html": b"html wins\n",
        "both/index.htm": b"htm loses\n",
        "empty/.keep": b"",
        "a b/index.html": b"spaced\n",
        "caf\u00e9/index.html": b"accented\n",
        "evil.example/index.html": b"not a redirect target\n",
        ".secret": b"hidden\n",
        "sub/.git/config": b"[core]\n",
        ".well-known/acme.txt": ACME,
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (MTIME, MTIME))
