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


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-connection and per-request limits, with their defaults.

    The header limits follow gunicorn's defaults, so the same requests are
    refused: a request line over 4094 bytes gets 414, over 100 header fields
    or a field line over 8190 bytes 431.
    """

    max_request_line: int = 4094  # method, target and version; 414 over it
    max_header_line: int = 8190  # one "name: value" line with its CRLF; 431
    max_headers: int = 100  # header fields in one request; 431
    max_header_block: int = 65536  # the whole head as it arrives; 431
    max_body_size: int = 1 << 30  # request body; 413 (0 = no limit)
    header_timeout: float = 10.0  # first byte to complete head; 408
    body_timeout: float = 60.0  # longest wait for the next piece of a body; 408
    keep_alive_timeout: float = 10.0  # idle time between requests before closing
    send_timeout: float = 60.0  # longest a client may stall our writes
    max_requests_per_connection: int = 0  # 0 = unlimited

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{f.name} must be a number >= 0, not {value!r}")


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
    threads: int = 4
    backend: str = "asyncio"
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

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, not {self.threads!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer in 0..65535, not {self.port!r}")
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0, not {self.grace!r}")
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
