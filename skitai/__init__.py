"""Skitai: a multiplexing WSGI application server on anyio, h11, h2 and wsproto.

    import skitai
    skitai.run(mount=("/", app))                       # for people: blocks, handles signals

    async with anyio.create_task_group() as tg:        # for programs
        addresses = await tg.start(skitai.serve, skitai.Config(mount=("/", app), port=0))
"""

from __future__ import annotations

__version__ = "0.30.0"

from skitai.config import Compression, Config, Limits
from skitai.context import was
from skitai.errors import ConfigError, WebSocketClosed
from skitai.runner import run, serve
from skitai.ws import (
    WEBSOCKET_DEDICATE,
    WEBSOCKET_DEDICATE_THREADSAFE,
    WEBSOCKET_MULTICAST,
    WEBSOCKET_REQDATA,
    Room,
    Rooms,
    WebSocket,
    websocket,
)

__all__ = [
    "WEBSOCKET_DEDICATE",
    "WEBSOCKET_DEDICATE_THREADSAFE",
    "WEBSOCKET_MULTICAST",
    "WEBSOCKET_REQDATA",
    "Compression",
    "Config",
    "ConfigError",
    "Limits",
    "Room",
    "Rooms",
    "WebSocket",
    "WebSocketClosed",
    "__version__",
    "run",
    "serve",
    "was",
    "websocket",
]
