"""Request hooks, run around a handler in the seed's nesting order.

For a route of a part mounted on the app, with both having every hook:

    app.before_request(was)
      part.before_request(was)
        handler(was, ...)
      part.finish_request(was)   or part.failed_request(was, exc_info)
      part.teardown_request(was)
    app.finish_request(was)      or app.failed_request(was, exc_info)
    app.teardown_request(was)

At each level (the seed's sequence): a truthy `before_request` result is
the response and skips that level's `finish_request`; `failed_request`
returning something other than None replaces the response, returning None
lets the exception go on outwards; `teardown_request` always runs. Levels
without hooks cost nothing. Hooks may be sync or async on any route.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from skitai.saddle.handlers import call_async, call_handler, call_handler_async, call_sync, is_async

REQUEST_HOOKS = ("before_request", "finish_request", "failed_request", "teardown_request")

Hook = tuple[Callable[..., Any], bool]  # (function, is a coroutine function)


class Hooks:
    """The request hooks of one app or part: one function per kind, the last declared wins."""

    __slots__ = ("any", *REQUEST_HOOKS)

    def __init__(self) -> None:
        self.any = False
        self.before_request: Hook | None = None
        self.finish_request: Hook | None = None
        self.failed_request: Hook | None = None
        self.teardown_request: Hook | None = None

    def set(self, kind: str, func: Callable[..., Any]) -> None:
        setattr(self, kind, (func, is_async(func)))
        self.any = True


def run_sync(route: Any, was: Any, index: int = 0) -> Any:
    """The route's handler inside the hooks of `route.chain[index:]` (worker thread side)."""
    chain = route.chain
    while index < len(chain) and not chain[index].hooks.any:
        index += 1
    if index == len(chain):
        return call_handler(was, route)
    hooks: Hooks = chain[index].hooks
    try:
        try:
            if hooks.before_request is not None:
                content = call_sync(hooks.before_request[0], hooks.before_request[1], was)
                if content:
                    return content
            content = run_sync(route, was, index + 1)
        except Exception:
            was.note_failure(sys.exc_info())
            if hooks.failed_request is None:
                raise
            content = call_sync(hooks.failed_request[0], hooks.failed_request[1], was, sys.exc_info())
            if content is None:
                raise
        else:
            if hooks.finish_request is not None:
                call_sync(hooks.finish_request[0], hooks.finish_request[1], was)
    finally:
        if hooks.teardown_request is not None:
            call_sync(hooks.teardown_request[0], hooks.teardown_request[1], was)
    return content


async def run_async(route: Any, was: Any, index: int = 0) -> Any:
    """`run_sync` for the event loop side: the same order, awaiting each step."""
    chain = route.chain
    while index < len(chain) and not chain[index].hooks.any:
        index += 1
    if index == len(chain):
        return await call_handler_async(was, route)
    hooks: Hooks = chain[index].hooks
    try:
        try:
            if hooks.before_request is not None:
                content = await call_async(hooks.before_request[0], hooks.before_request[1], was)
                if content:
                    return content
            content = await run_async(route, was, index + 1)
        except Exception:
            was.note_failure(sys.exc_info())
            if hooks.failed_request is None:
                raise
            content = await call_async(hooks.failed_request[0], hooks.failed_request[1], was,
                                       sys.exc_info())
            if content is None:
                raise
        else:
            if hooks.finish_request is not None:
                await call_async(hooks.finish_request[0], hooks.finish_request[1], was)
    finally:
        if hooks.teardown_request is not None:
            await call_async(hooks.teardown_request[0], hooks.teardown_request[1], was)
    return content
