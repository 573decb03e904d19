"""A cookie-keeping client and a clock, to run request cycles without a server."""

from __future__ import annotations

import os
import socket

import pytest

KEY = "ds8fdsflksdjf9879dsf;?<>Asda-session-key"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Browser:
    """Keeps cookies from Set-Cookie lines (name=value, Max-Age=0 deletes) and sends them back."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self.lines: list[str] = []

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def receive(self, lines: list[str]) -> None:
        self.lines = lines
        for line in lines:
            name, _, value = line.split(";")[0].partition("=")
            if "Max-Age=0" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


def require_redis() -> None:
    """Skip without a Redis at 127.0.0.1:6379, except under CI where it must be there."""
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} under CI: {exc}")
        pytest.skip(f"no Redis at {REDIS_HOST}:{REDIS_PORT} ({exc}); CI=true makes this a failure")
