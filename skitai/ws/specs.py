"""The seed's WebSocket API for WSGI apps: `env["websocket_init"]` and the four designs.

On a handshake request the app is called once with `env["websocket_init"]`
present (an empty string). It accepts by setting it to
`(design, keep_alive_timeout, varname)` and returning an empty body, or to
a `skitai.websocket` endpoint; it declines by answering as usual (a 404, a
403), and that answer is sent. Optionally it sets
`env["websocket_subprotocol"]` to one of the subprotocols the client
offered (`HTTP_SEC_WEBSOCKET_PROTOCOL`).

The calls below run in worker threads.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WEBSOCKET_REQDATA = 1  # each message re-runs the app with it bound to varname; AJAX style
WEBSOCKET_DEDICATE = 2  # the app runs once per connection, in its own thread
WEBSOCKET_MULTICAST = 3  # one thread runs the app for a room of connections
WEBSOCKET_DEDICATE_THREADSAFE = 4  # DEDICATE, and threads it starts may send too

JOINED, LEFT = 1, -1  # MULTICAST notices, as (client_id, JOINED) and (client_id, LEFT)

_DESIGNS = (WEBSOCKET_REQDATA, WEBSOCKET_DEDICATE, WEBSOCKET_MULTICAST, WEBSOCKET_DEDICATE_THREADSAFE)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Writer = Callable[[bytes], None]  # what start_response returns


@dataclass(frozen=True, slots=True)
class SeedDesign:
    """An app's `(design, keep_alive_timeout, varname)`."""

    design: int
    keep_alive: float
    varname: str | None

    @classmethod
    def parse(cls, value: object) -> SeedDesign:
        """The design an app asked for; ValueError saying what is wrong with it."""
        if not isinstance(value, tuple | list) or len(value) != 3:
            raise ValueError(f"websocket_init must be (design, keep_alive_timeout, varname), not {value!r}")
        design, keep_alive, varname = value
        if design not in _DESIGNS:
            raise ValueError(f"unknown WebSocket design {design!r}; use skitai.WEBSOCKET_*")
        if isinstance(keep_alive, bool) or not isinstance(keep_alive, int | float) or keep_alive < 0:
            raise ValueError(f"keep_alive_timeout must be seconds >= 0, not {keep_alive!r}")
        if varname is not None and (not isinstance(varname, str) or not varname):
            raise ValueError(f"varname must be a name or None, not {varname!r}")
        if design == WEBSOCKET_REQDATA and varname is None:
            raise ValueError("WEBSOCKET_REQDATA needs a varname to bind messages to")
        return cls(design, float(keep_alive), varname)

    @property
    def dedicated(self) -> bool:
        return self.design in (WEBSOCKET_DEDICATE, WEBSOCKET_DEDICATE_THREADSAFE)


@dataclass(frozen=True, slots=True)
class Declined:
    """The app's answer to a handshake it did not accept."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"})


def ask_app(app: WsgiApp, environ: dict[str, Any]) -> object:
    """Call the app with `websocket_init`: what it set it to, or how it declined."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Writer:
        answer[:] = [status, headers]
        return lambda data: None

    body = b"".join(call_app(app, environ, start_response))
    value = environ.get("websocket_init")
    if value:
        return value
    if not answer:
        raise ValueError("the app neither accepted the WebSocket nor answered")
    status, headers = answer
    code, _, reason = status.partition(" ")
    return Declined(
        int(code), reason.encode("latin-1"),
        [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers if n.lower() not in _HOP_BY_HOP],
        body,
    )


def call_app(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The app's whole body, its iterable closed (PEP 3333)."""
    result = app(environ, start_response)
    try:
        return [bytes(item) for item in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def run_once(app: WsgiApp, environ: dict[str, Any]) -> None:
    """DEDICATE and MULTICAST: the app's one long call, its body discarded."""
    call_app(app, environ, lambda status, headers, exc_info=None: lambda data: None)


def first_item(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, bytes]:
    """REQDATA: the status and the first item of the app's body."""
    status = [500]

    def start_response(text: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Writer:
        status[0] = int(text[:3])
        return lambda data: None

    result = app(environ, start_response)
    try:
        first = next(iter(result), b"")
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0], bytes(first)


def session_environ(environ: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A copy of the handshake environ without `websocket_init`, for the design's calls of the app."""
    copy = {key: value for key, value in environ.items() if key != "websocket_init"}
    copy["wsgi.input"] = io.BytesIO()
    copy.update(extra)
    return copy
