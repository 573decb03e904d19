"""HTTP/2 end to end with independent clients: httpx, curl and nghttp.

One server per test serves a static site at `/` and a WSGI app at `/app`,
plainly (h2c by prior knowledge or by Upgrade) and over TLS (ALPN h2), so
every HTTP/1.1 feature is checked again over HTTP/2: static files with
ranges and 304s, compression, streaming both ways, limits, the access log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import anyio
import httpx
import pytest
import trustme
from h2.settings import SettingCodes

from tests.static.site import BIG_TEXT, BINARY, HELLO, build_site
from tests.support.h2peer import H2Peer
from tests.support.servers import serving

CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")
IN_CI = bool(os.environ.get("CI"))
needs_curl = pytest.mark.skipif(CURL is None and not IN_CI, reason="curl is not installed")
needs_nghttp = pytest.mark.skipif(NGHTTP is None and not IN_CI,
                                  reason="nghttp (Debian nghttp2-client) is not installed")

StartResponse = Callable[..., Any]
DOWNLOAD = 16 << 20


def _app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/push":
        environ["skitai.hint_promise"]("/hello.txt")
        environ["skitai.hint_promise"]("/app/pushed")
        body = b'<p>page</p><img src="/hello.txt">'
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/pushed":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"pushed"]
    if path == "/upload":  # length and digest of the body, read in pieces
        digest, size = hashlib.sha256(), 0
        while chunk := environ["wsgi.input"].read(65536):
            digest.update(chunk)
            size += len(chunk)
        body = f"{size} {digest.hexdigest()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(DOWNLOAD))])
        return _pieces()
    if path == "/text":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"compress me " * 1000]
    body = f"{environ['wsgi.url_scheme']} {environ['SERVER_PROTOCOL']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _pieces() -> Iterator[bytes]:
    piece = bytes(range(256)) * 256
    for _ in range(DOWNLOAD // len(piece)):
        yield piece


app = validator(_app)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    build_site(root)
    return root


@pytest.fixture
def certs(ca: trustme.CA, tmp_path: Path) -> tuple[str, str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    ca.cert_pem.write_to_path(str(cafile))
    return str(certfile), str(keyfile), str(cafile)


@asynccontextmanager
async def both(site: Path, certs: tuple[str, str, str], **options: Any) -> AsyncIterator[tuple[str, str]]:
    """A server with a plain port and a TLS port: (http URL, https URL)."""
    certfile, keyfile, _ = certs
    async with serving(mount=[("/", str(site)), ("/app", app)], certfile=certfile, keyfile=keyfile,
                       tls_port=0, **options) as srv:
        port, tls_port = (address[1] for address in srv.server.addresses)
        yield f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}"


def tls_client(ca: trustme.CA, **options: Any) -> httpx.AsyncClient:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return httpx.AsyncClient(verify=context, http2=True, **options)


def h2c_client(**options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(http1=False, http2=True, **options)  # prior knowledge


async def run(*command: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(list(command), check=False)
    return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


# ------------------------------------------------------------------ httpx


async def test_httpx_over_tls_and_h2c(site: Path, certs: tuple[str, str, str], ca: trustme.CA) -> None:
    async with both(site, certs) as (http, https):
        async with tls_client(ca) as client:
            secure = await client.get(f"{https}/app/")
        async with h2c_client() as client:
            plain = await client.get(f"{http}/app/")
    assert (secure.http_version, secure.text) == ("HTTP/2", "https HTTP/2")
    assert (plain.http_version, plain.text) == ("HTTP/2", "http HTTP/2")


async def test_static_files_over_http2(site: Path, certs: tuple[str, str, str], ca: trustme.CA) -> None:
    async with both(site, certs) as (_, https):
        async with tls_client(ca, base_url=https) as client:
            whole = await client.get("/hello.txt")
            etag = whole.headers["etag"]
            not_modified = await client.get("/hello.txt", headers={"If-None-Match": etag})
            modified = whole.headers["last-modified"]
            since = await client.get("/hello.txt", headers={"If-Modified-Since": modified})
            ranged = await client.get("/data.bin", headers={"Range": "bytes=10-19"})
            multi = await client.get("/data.bin", headers={"Range": "bytes=0-1,-2"})
            unsatisfiable = await client.get("/data.bin", headers={"Range": "bytes=999999-"})
            stale_if_range = await client.get("/data.bin", headers={"Range": "bytes=0-1", "If-Range": '"x"'})
            zipped = await client.get("/big.txt", headers={"Accept-Encoding": "gzip"})
            head = await client.head("/big.txt", headers={"Accept-Encoding": "identity"})
    assert (whole.status_code, whole.content, whole.http_version) == (200, HELLO, "HTTP/2")
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert since.status_code == 304
    assert (ranged.status_code, ranged.content) == (206, BINARY[10:20])
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(BINARY)}"
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges")
    assert unsatisfiable.status_code == 416
    assert (stale_if_range.status_code, len(stale_if_range.content)) == (200, len(BINARY))
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == BIG_TEXT  # httpx decodes
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(BIG_TEXT))


async def test_wsgi_streams_both_ways_over_http2(
    site: Path, certs: tuple[str, str, str], ca: trustme.CA
) -> None:
    upload = os.urandom(3 << 20)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(upload), 100_000):
            yield upload[start:start + 100_000]

    async with both(site, certs) as (_, https):
        async with tls_client(ca, base_url=https, timeout=60) as client:
            uploaded = await client.post("/app/upload", content=pieces())
            received = hashlib.sha256()
            size = 0
            async with client.stream("GET", "/app/download") as response:
                async for chunk in response.aiter_raw():
                    received.update(chunk)
                    size += len(chunk)
            text = await client.get("/app/text", headers={"Accept-Encoding": "gzip"})
    assert uploaded.text == f"{len(upload)} {hashlib.sha256(upload).hexdigest()}"
    assert (response.status_code, size) == (200, DOWNLOAD)
    assert received.hexdigest() == hashlib.sha256(b"".join(_pieces())).hexdigest()
    assert text.headers["content-encoding"] == "gzip" and text.content == b"compress me " * 1000


async def test_body_limit_and_access_log_over_http2(
    site: Path, certs: tuple[str, str, str], ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "skitai.access")
    async with both(site, certs, max_body_size=1000) as (_, https):
        async with tls_client(ca, base_url=https) as client:
            too_big = await client.post("/app/upload", content=b"x" * 5000)
            fine = await client.post("/app/upload", content=b"x" * 10)
    assert too_big.status_code == 413
    assert fine.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "skitai.access"]
    assert any('"POST /app/upload HTTP/2 #' in line and " 200 " in line for line in lines), lines
    # refused from its Content-Length before any app saw it: one warning, as on HTTP/1.1
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("413 body of 5000 bytes over 1000" in line for line in refused), refused


# ------------------------------------------------------------------ curl


@needs_curl
async def test_curl_upgrade_prior_knowledge_and_tls(site: Path, certs: tuple[str, str, str]) -> None:
    assert CURL is not None
    _, _, cafile = certs
    written = "%{http_version} %{http_code}"
    async with both(site, certs) as (http, https):
        upgraded = await run(CURL, "-sS", "--http2", "-o", "/dev/null", "-w", written, f"{http}/app/")
        prior = await run(CURL, "-sS", "--http2-prior-knowledge", "--data-binary", "abc", "-w", written,
                          f"{http}/app/upload")
        secure = await run(CURL, "-sS", "--http2", "--cacert", cafile, "-w", written, f"{https}/hello.txt")
    assert upgraded[:2] == (0, "2 200"), upgraded
    assert prior[0] == 0 and prior[1].endswith("2 200"), prior
    assert prior[1].startswith("3 " + hashlib.sha256(b"abc").hexdigest())
    assert secure[0] == 0 and secure[1] == HELLO.decode() + "2 200", secure


# ------------------------------------------------------------------ server push


@needs_nghttp
async def test_nghttp_receives_pushes(
    site: Path, certs: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert NGHTTP is not None
    caplog.set_level(logging.INFO, "skitai.access")
    async with both(site, certs) as (http, _):
        code, out, err = await run(NGHTTP, "-nv", f"{http}/app/push")
    assert code == 0, err
    assert out.count("recv PUSH_PROMISE") == 2, out
    assert ":path: /hello.txt" in out and ":path: /app/pushed" in out
    pushed = [r.getMessage() for r in caplog.records if '"PUSH GET' in r.getMessage()]
    assert len(pushed) == 2 and all(" 200 " in line for line in pushed), pushed


async def test_push_is_skipped_when_the_client_disables_it(
    site: Path, certs: tuple[str, str, str]
) -> None:
    async with both(site, certs) as (http, _):
        host, port = http.removeprefix("http://").split(":")
        peer = await H2Peer.connect(host, int(port), settings={SettingCodes.ENABLE_PUSH: 0})
        await peer.start()
        page = await peer.response(await peer.request(b"GET", b"/app/push"))
        await peer.aclose()
        async with httpx.AsyncClient() as client:  # HTTP/1.1: the hint is ignored
            over_http11 = await client.get(f"{http}/app/push")
    assert page.status == 200 and b"page" in bytes(page.data)
    assert sorted(peer.streams) == [1]  # no promised stream
    assert (over_http11.status_code, over_http11.http_version) == (200, "HTTP/1.1")
