"""Protocol drivers: sans-IO state machines driven over anyio byte streams."""

from __future__ import annotations

from skitai.errors import ConfigError


def http11_driver(parser: str) -> type:
    """The HTTP/1.1 driver class for Config.http_parser."""
    if parser in ("auto", "httptools"):
        try:
            from skitai.protocols.http11_fast import FastHTTP11Connection
        except ImportError:
            if parser == "httptools":
                raise ConfigError("http_parser='httptools' needs: pip install httptools") from None
        else:
            return FastHTTP11Connection
    from skitai.protocols.http11 import HTTP11Connection

    return HTTP11Connection
