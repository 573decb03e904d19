"""HTTPS on the same HTTP/1.1 driver: certificates from trustme, the seed's combined PEM."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import anyio
import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

import skitai
from skitai.errors import ConfigError
from skitai.tls import server_context
from tests.support import apps
from tests.support.servers import serving


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return certfile, keyfile


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_https_serves_with_url_scheme(ca: trustme.CA, cert_files: tuple[Path, Path]) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", apps.show_environ), certfile=str(certfile), keyfile=str(keyfile)) as srv:
        async with httpx.AsyncClient(verify=client_context(ca)) as client:
            response = await client.get(f"https://127.0.0.1:{srv.port}/")
    assert response.status_code == 200
    assert response.json()["wsgi.url_scheme"] == "https"


async def test_combined_pem_with_certfile_alone(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    combined = tmp_path / "server.pem"
    combined.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    async with serving(mount=("/", apps.hello), certfile=str(combined)) as srv:
        async with httpx.AsyncClient(verify=client_context(ca)) as client:
            response = await client.get(f"https://127.0.0.1:{srv.port}/")
    assert response.text == "Hello World"


async def test_bad_handshakes_cost_one_log_line(
    ca: trustme.CA, cert_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", apps.hello), certfile=str(certfile), keyfile=str(keyfile)) as srv:
        garbage = await anyio.connect_tcp(srv.host, srv.port)
        await garbage.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            with anyio.fail_after(5):
                await garbage.receive()
        await garbage.aclose()
        async with httpx.AsyncClient(verify=client_context(ca)) as client:
            assert (await client.get(f"https://127.0.0.1:{srv.port}/")).status_code == 200
    failures = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(failures) == 1


async def test_stalled_handshake_is_dropped(cert_files: tuple[Path, Path]) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", apps.hello), certfile=str(certfile), keyfile=str(keyfile),
                       handshake_timeout=0.2) as srv:
        silent = await anyio.connect_tcp(srv.host, srv.port)
        with anyio.fail_after(5):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await silent.receive()
        await silent.aclose()


def test_tls_minimum_is_1_2_and_alpn_offered(cert_files: tuple[Path, Path]) -> None:
    certfile, keyfile = cert_files
    context = server_context(str(certfile), str(keyfile))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_missing_certificate_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        server_context(str(tmp_path / "nope.pem"))


async def test_plain_and_tls_listeners_in_one_server(
    ca: trustme.CA, cert_files: tuple[Path, Path]
) -> None:
    certfile, keyfile = cert_files
    async with serving(mount=("/", apps.show_environ), certfile=str(certfile),
                       keyfile=str(keyfile), tls_port=0) as srv:
        (_, plain_port), (_, tls_port) = srv.server.addresses
        assert plain_port == srv.port and tls_port != plain_port
        async with httpx.AsyncClient(verify=client_context(ca)) as client:
            plain = await client.get(f"http://127.0.0.1:{plain_port}/")
            secure = await client.get(f"https://127.0.0.1:{tls_port}/")
    assert plain.json()["wsgi.url_scheme"] == "http"
    assert secure.json()["wsgi.url_scheme"] == "https"


def test_tls_port_needs_a_certificate() -> None:
    with pytest.raises(ConfigError, match="tls_port needs a certfile"):
        skitai.Config(tls_port=8443)


def encrypted_key(cert: trustme.LeafCert, passphrase: bytes) -> bytes:
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase))


async def test_encrypted_key_with_its_passphrase_serves(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    keyfile.write_bytes(encrypted_key(cert, b"open sesame"))
    async with serving(mount=("/", apps.show_environ), certfile=str(certfile), keyfile=str(keyfile),
                       passphrase="open sesame") as srv:
        async with httpx.AsyncClient(verify=client_context(ca)) as client:
            response = await client.get(f"https://127.0.0.1:{srv.port}/")
    assert response.status_code == 200
    assert response.json()["wsgi.url_scheme"] == "https"


async def test_wrong_passphrase_is_a_config_error_before_listening(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    keyfile.write_bytes(encrypted_key(cert, b"open sesame"))
    caplog.set_level(logging.INFO, "skitai")
    config = skitai.Config(mount=("/", apps.hello), port=0, certfile=str(certfile),
                           keyfile=str(keyfile), passphrase="wrong")
    with pytest.raises(ConfigError, match="cannot load certificate"):
        with anyio.fail_after(10):
            await skitai.serve(config)
    assert not [r for r in caplog.records if "listening on" in r.getMessage()]
