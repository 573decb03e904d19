"""Server configuration: what `skitai.run()`, `skitai.serve()` and the CLI accept.

`Config` is frozen; build it with keyword arguments named as in the seed's
`skitai.run()` (`mount`, `address`, `port`, `threads`, ...). Limits may be
given flat (`keep_alive_timeout=30`) or as `limits=Limits(...)`. Units:
sizes in bytes, times in seconds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skitai.errors import ConfigError

BACKENDS = ("asyncio", "trio")
HTTP_PARSERS = ("auto", "h11", "httptools")


def _limit(default: Any, unit: str, text: str) -> Any:
    """A Limits field with its unit and meaning, which --help and the docs show."""
    return field(default=default, metadata={"unit": unit, "help": text})


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-connection and per-request limits, with their defaults.

    The header limits follow gunicorn's defaults, so the same requests are
    refused: a request line over 4094 bytes gets 414, over 100 header fields
    or a field line over 8190 bytes 431.
    """

    max_request_line: int = _limit(4094, "BYTES", "longest request line; longer gets 414")
    max_header_line: int = _limit(8190, "BYTES", "longest header line with its CRLF; longer gets 431")
    max_headers: int = _limit(100, "N", "header fields in one request; more get 431")
    max_header_block: int = _limit(65536, "BYTES", "largest request head; larger gets 431")
    max_body_size: int = _limit(1 << 30, "BYTES", "largest request body, 0 for no limit; larger gets 413")
    header_timeout: float = _limit(
        10.0, "SECONDS", "from the first byte to the end of the request head; then 408"
    )
    body_timeout: float = _limit(
        60.0, "SECONDS", "longest wait for the next piece of a request body; then 408"
    )
    keep_alive_timeout: float = _limit(
        10.0, "SECONDS", "how long an idle connection stays open between requests"
    )
    send_timeout: float = _limit(
        60.0, "SECONDS", "how long a client may stall the response before it is dropped"
    )
    handshake_timeout: float = _limit(10.0, "SECONDS", "longest TLS handshake; a stalled client is dropped")
    max_requests_per_connection: int = _limit(
        0, "N", "requests on one connection before it is closed, 0 for no limit"
    )
    websocket_max_message: int = _limit(
        16 << 20, "BYTES", "largest WebSocket message, in bytes once inflated; larger closes 1009"
    )
    websocket_max_frame: int = _limit(
        16 << 20, "BYTES", "largest WebSocket frame payload; larger closes 1009"
    )
    websocket_queue: int = _limit(
        1 << 20, "BYTES",
        "WebSocket messages held each way (received, not yet taken by the app; sent, not yet "
        "written) before reading pauses or senders wait",
    )
    websocket_ping_interval: float = _limit(
        20.0, "SECONDS", "silence from a WebSocket client after which it is pinged, 0 for never"
    )
    websocket_ping_timeout: float = _limit(
        20.0, "SECONDS", "how long a ping may go unanswered; then the WebSocket closes 1011"
    )
    websocket_close_timeout: float = _limit(
        5.0, "SECONDS",
        "how long a WebSocket close waits for the client's answer, and an app for its end",
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = int if f.type in (int, "int") else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                what = "an integer" if kind is int else "a number"
                raise ConfigError(f"{f.name} must be {what} >= 0, not {value!r}")


LIMIT_NAMES = frozenset(f.name for f in dataclasses.fields(Limits))


@dataclass(frozen=True, kw_only=True)
class Compression:
    """On-the-fly gzip of responses (WSGI bodies and static files)."""

    enabled: bool = True
    min_size: int = 2048  # bodies of known length below this stay plain
    level: int = 6  # zlib level 1..9
    types: tuple[str, ...] = (
        "text/",
        "application/json",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/json-rpc",
        "image/svg+xml",
    )

    def compressible(self, content_type: str) -> bool:
        ctype = content_type.split(";", 1)[0].strip().lower()
        return any(ctype.startswith(t) if t.endswith("/") else ctype == t for t in self.types)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything a server needs to run. Raise `ConfigError` on bad values."""

    mount: Any = ()  # (point, target) or a list of them; see skitai.mounts
    address: str = "127.0.0.1"
    port: int = 5000
    tls_port: int | None = None  # with a certificate: HTTPS here, plain HTTP on `port`
    threads: int = 4
    backend: str = "asyncio"
    http_parser: str = "auto"  # HTTP/1.1: "h11", "httptools" (faster), or "auto": httptools if installed
    certfile: str | None = None
    keyfile: str | None = None
    passphrase: str | None = None
    static_max_age: int = 300
    follow_symlinks: bool = False  # static files may be symlinks leaving their root
    grace: float = 30.0  # seconds in-flight requests get to finish on shutdown
    reload_interval: float = 1.0  # how often apps with use_reloader look for changed files
    access_log: bool = True
    log_dir: str | None = None  # None: log to stderr; a directory: server/app/request.log
    log_level: str = "info"
    server_name: str = "Skitai"
    backlog: int = 1024
    limits: Limits = field(default_factory=Limits)
    compression: Compression = field(default_factory=Compression)
    # WebSocket: browser pages of these origins (scheme://host[:port]) may connect
    # besides the server's own; "*" allows any. Clients without Origin are not browsers.
    websocket_origins: tuple[str, ...] = ()
    websocket_compression: bool = True  # accept permessage-deflate (RFC 7692) when offered
    websocket_threads: int = 64  # threads for the DEDICATE and MULTICAST designs, one each

    def __post_init__(self) -> None:
        if isinstance(self.compression, bool):  # compression=False is the short way
            object.__setattr__(self, "compression", Compression(enabled=self.compression))
        if not isinstance(self.compression, Compression):
            raise ConfigError(f"compression must be a bool or skitai.Compression, not {self.compression!r}")
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"limits must be a skitai.Limits, not {self.limits!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.http_parser not in HTTP_PARSERS:
            raise ConfigError(f"http_parser must be one of {HTTP_PARSERS}, not {self.http_parser!r}")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, not {self.threads!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer in 0..65535, not {self.port!r}")
        if self.tls_port is not None:
            if not self.certfile:
                raise ConfigError("tls_port needs a certfile")
            if not isinstance(self.tls_port, int) or not 0 <= self.tls_port <= 65535:
                raise ConfigError(f"tls_port must be an integer in 0..65535, not {self.tls_port!r}")
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0, not {self.grace!r}")
        if isinstance(self.websocket_origins, str):
            raise ConfigError("websocket_origins must be a list of origins, not one string")
        object.__setattr__(self, "websocket_origins",
                           tuple(_origin(origin) for origin in self.websocket_origins))
        if not isinstance(self.websocket_threads, int) or isinstance(self.websocket_threads, bool) \
                or self.websocket_threads < 1:
            raise ConfigError(f"websocket_threads must be an integer >= 1, not {self.websocket_threads!r}")
        if self.log_dir is not None and not os.path.isdir(self.log_dir):
            raise ConfigError(f"log_dir {self.log_dir!r} is not a directory")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Config:
        """Build a Config from run()-style keyword arguments, limits given flat."""
        known = {f.name for f in dataclasses.fields(cls)}
        main: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for name, value in options.items():
            if name in known:
                main[name] = value
            elif name in LIMIT_NAMES:
                limits[name] = value
            else:
                raise ConfigError(f"unknown option {name!r}; see help(skitai.Config)")
        if limits:
            base = main.get("limits", Limits())
            main["limits"] = dataclasses.replace(base, **limits)
        return cls(**main)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _origin(origin: Any) -> str:
    """An allowed WebSocket origin, in the form browsers send it: scheme://host[:port], lower case."""
    if not isinstance(origin, str):
        raise ConfigError(f"a WebSocket origin must be a string, not {origin!r}")
    if origin in ("*", "null"):
        return origin
    scheme, sep, host = origin.lower().partition("://")
    if not sep or scheme not in ("http", "https") or not host or "/" in host:
        raise ConfigError(f"a WebSocket origin looks like https://example.com[:port], not {origin!r}")
    default_port = ":443" if scheme == "https" else ":80"
    return f"{scheme}://{host.removesuffix(default_port)}"


def mount_list(mount: Any) -> list[tuple[str, Any]]:
    """The seed's `mount` argument as a list of (point, target) pairs."""
    if mount is None or mount == ():
        return []
    if isinstance(mount, tuple) and len(mount) == 2 and isinstance(mount[0], str):
        return [mount]
    if isinstance(mount, Iterable) and not isinstance(mount, str | bytes):
        pairs = []
        for item in mount:
            if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
                raise ConfigError(f"a mount must be a (point, target) pair, not {item!r}")
            pairs.append((item[0], item[1]))
        return pairs
    raise ConfigError(f"mount must be a (point, target) pair or a list of them, not {mount!r}")
