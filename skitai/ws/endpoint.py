"""`skitai.websocket`: an async function as a WebSocket endpoint, for any app or framework.

    @skitai.websocket
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    skitai.run(mount=[("/", app), ("/ws/echo", echo)])

An `Endpoint` is mounted like an app (plain HTTP requests to it get 426
Upgrade Required), or handed over by a WSGI app during the seed's
handshake: `environ["websocket_init"] = endpoint`. Either way the handler
runs on the event loop with a `WebSocket`, and no thread.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, overload

from skitai.ws.socket import WebSocket

Handler = Callable[[WebSocket], Awaitable[None]]


class Endpoint:
    """An async WebSocket handler and its options; calling it calls the handler."""

    def __init__(self, handler: Handler, *, subprotocols: Iterable[str] = (), keep_alive: float = 0) -> None:
        if not callable(handler):
            raise TypeError(f"a WebSocket handler is an async function, not {handler!r}")
        if isinstance(subprotocols, str):
            raise TypeError("subprotocols is a list of names, not one string")
        if keep_alive < 0:
            raise ValueError(f"keep_alive must be >= 0, not {keep_alive!r}")
        self.handler = handler
        self.subprotocols = tuple(subprotocols)  # in order of preference
        self.keep_alive = float(keep_alive)  # idle seconds before closing 1001; 0: no limit
        functools.update_wrapper(self, handler)

    def __call__(self, ws: WebSocket) -> Awaitable[None]:
        return self.handler(ws)

    def __repr__(self) -> str:
        return f"<skitai.websocket {getattr(self.handler, '__qualname__', self.handler)!r}>"


@overload
def websocket(handler: Handler, /) -> Endpoint: ...


@overload
def websocket(
    handler: None = None, /, *, subprotocols: Iterable[str] = (), keep_alive: float = 0
) -> Callable[[Handler], Endpoint]: ...


def websocket(
    handler: Handler | None = None, /, *, subprotocols: Iterable[str] = (), keep_alive: float = 0
) -> Any:
    """Make `async def handler(ws)` a WebSocket endpoint: `@skitai.websocket` or `@skitai.websocket(...)`.

    `subprotocols`: the subprotocols the handler speaks, in order of
    preference; the first one the client offers is agreed on
    (`ws.subprotocol`). `keep_alive`: seconds without a message either way
    after which the session is closed with 1001; 0 (the default) for none.
    """
    if handler is not None:
        return Endpoint(handler)
    return lambda function: Endpoint(function, subprotocols=subprotocols, keep_alive=keep_alive)
