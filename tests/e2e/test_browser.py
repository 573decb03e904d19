"""A real browser: headless Chromium loads a page over TLS and reports HTTP/2,
and opens WebSockets on that HTTP/2 connection (RFC 8441).

`browser_probe.py` and `ws.html` are vendored from the acceptance kit. Chromium is installed
by `scripts/test` (so by CI); elsewhere the test is skipped when it is absent.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import anyio
import pytest
import trustme

import skitai
from tests.support.servers import serving

PROBE = Path(__file__).with_name("browser_probe.py")
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>h2 probe</title></head>
<body><div id="proto">pending</div><script>
var nav = performance.getEntriesByType("navigation")[0];
document.getElementById("proto").textContent = "proto=" + (nav ? nav.nextHopProtocol : "?");
</script></body></html>
"""

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (scripts/test installs it)", allow_module_level=True)


async def test_chromium_loads_a_page_over_http2(tmp_path: Path) -> None:
    cert = trustme.CA().issue_cert("127.0.0.1")
    combined = tmp_path / "server.pem"
    combined.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    async with serving(mount=("/", str(site)), certfile=str(combined)) as srv:
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [sys.executable, str(PROBE), f"https://127.0.0.1:{srv.port}/", "--ids", "proto",
                 "--wait", "20", *(["--chromium", CHROMIUM] if CHROMIUM else [])],
                check=False,
            )
    assert b"proto: proto=h2" in result.stdout, result.stdout


@skitai.websocket
async def echo(ws: skitai.WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@skitai.websocket
async def wsinfo(ws: skitai.WebSocket) -> None:
    """Which HTTP version carried the handshake: 2 is RFC 8441, a stream of the page's connection."""
    await ws.send("ws-http=" + ws.environ["SERVER_PROTOCOL"].removeprefix("HTTP/"))
    async for message in ws:
        await ws.send(message)


async def test_chromium_opens_its_websocket_on_the_http2_connection(tmp_path: Path) -> None:
    """ws.html (from the acceptance kit) echoes through /ws, then asks /wsinfo."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    combined = tmp_path / "server.pem"
    combined.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    site = tmp_path / "site"
    site.mkdir()
    (site / "ws.html").write_bytes((Path(__file__).parent / "ws.html").read_bytes())
    mounts = [("/", str(site)), ("/ws", echo), ("/wsinfo", wsinfo)]
    async with serving(mount=mounts, certfile=str(combined)) as srv:
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [sys.executable, str(PROBE), f"https://127.0.0.1:{srv.port}/ws.html",
                 "--ids", "proto,result,wsinfo", "--wait", "20",
                 *(["--chromium", CHROMIUM] if CHROMIUM else [])],
                check=False,
            )
    assert result.returncode == 0, result.stdout
    assert b"proto: proto=h2" in result.stdout, result.stdout
    assert b"result: ws-echo=ping-from-browser" in result.stdout, result.stdout
    assert b"wsinfo: ws-http=2" in result.stdout, result.stdout
