"""WebSocket for apps: the seed's four designs for WSGI apps, and async endpoints.

Modules, one design each:

    specs        the seed's `env["websocket_init"]` protocol and its WSGI calls
    reqdata      WEBSOCKET_REQDATA: each message re-runs the app in the worker pool
    dedicated    WEBSOCKET_DEDICATE(_THREADSAFE): the app in a thread of its own
    multicast    WEBSOCKET_MULTICAST: one thread runs the app for a room
    endpoint     `skitai.websocket`: an async handler on the event loop
    socket       `WebSocket`, the object an async handler gets
    rooms        `Room` and `Rooms` for async handlers
    inbox        bounded queues from a connection's reader to its app
    services     what the sessions of a server share: sweeper, threads, rooms
    upgrade      from a handshake request to a running session

The protocol itself (framing, close codes, pings) is the driver
`skitai.protocols.websocket`; see docs/how-to/websocket.md.
"""

from __future__ import annotations

from skitai.ws.endpoint import Endpoint, websocket
from skitai.ws.rooms import Room, Rooms
from skitai.ws.socket import WebSocket
from skitai.ws.specs import (
    WEBSOCKET_DEDICATE,
    WEBSOCKET_DEDICATE_THREADSAFE,
    WEBSOCKET_MULTICAST,
    WEBSOCKET_REQDATA,
)

__all__ = [
    "WEBSOCKET_DEDICATE",
    "WEBSOCKET_DEDICATE_THREADSAFE",
    "WEBSOCKET_MULTICAST",
    "WEBSOCKET_REQDATA",
    "Endpoint",
    "Room",
    "Rooms",
    "WebSocket",
    "websocket",
]
