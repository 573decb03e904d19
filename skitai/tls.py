"""TLS server contexts: TLS 1.2 or newer, ALPN, a combined or separate key file.

The seed's certificate is made with `openssl req ... -keyout server.pem -out
server.pem`: certificate and key in one file, so `certfile` alone is enough.
The handshake itself runs per connection, in the connection's task, under
`Limits.handshake_timeout`, never in the accept loop.
"""

from __future__ import annotations

import os
import ssl

from skitai.errors import ConfigError

ALPN_PROTOCOLS = ("h2", "http/1.1")


def server_context(
    certfile: str, keyfile: str | None = None, passphrase: str | None = None
) -> ssl.SSLContext:
    """An SSLContext for serving, or ConfigError naming what is wrong."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(certfile, keyfile, passphrase)
    except FileNotFoundError as exc:
        missing = exc.filename or (keyfile if keyfile and not os.path.exists(keyfile) else certfile)
        raise ConfigError(f"certificate or key file not found: {missing}") from exc
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot load certificate {certfile!r}: {exc.reason or exc}") from exc
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context
