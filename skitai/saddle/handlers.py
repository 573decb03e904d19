"""What a handler takes, and calling it (or a hook) from either side of the loop.

A handler gets `was` as its first positional parameter when it has one
(`def sum():` takes none, and uses `from skitai import was`). The request
arguments (URL segments, query, form, JSON) go to the parameters named
after them; those it does not name are left out, unless it takes `**form`,
which gets them all. A required parameter no argument fills is a 400.

Sync code called from the event loop goes to a worker thread; async code
called from a worker thread goes to the loop (`anyio.from_thread`), so a
sync route can have async hooks and the other way round.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from skitai.saddle.errors import BadRequest

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


class Signature:
    """The parameters of a handler, read once when it is routed."""

    __slots__ = ("defaults", "is_async", "names", "positional", "required", "takes_was",
                 "var_keyword", "was_name")

    def __init__(self, func: Callable[..., Any]) -> None:
        params = list(inspect.signature(func).parameters.values())
        self.takes_was = bool(params) and params[0].kind in _POSITIONAL
        self.was_name = params[0].name if self.takes_was else None
        rest = params[1:] if self.takes_was else params
        self.names = frozenset(p.name for p in rest if p.kind in _NAMED)
        self.positional = tuple(p.name for p in rest if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.required = tuple(p.name for p in rest if p.kind in _NAMED and p.default is p.empty)
        self.defaults = {p.name: p.default for p in rest if p.kind in _NAMED and p.default is not p.empty}
        self.var_keyword = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in rest)
        self.is_async = is_async(func)

    def bind(self, args: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the handler; BadRequest when a required one is missing."""
        if not args:
            kwargs: dict[str, Any] = {}
        elif self.var_keyword:
            kwargs = dict(args)
            if self.was_name is not None:
                kwargs.pop(self.was_name, None)
        else:
            names = self.names
            kwargs = {k: v for k, v in args.items() if k in names}
        for name in self.required:
            if name not in kwargs:
                raise BadRequest(f"missing argument {name!r}")
        return kwargs

    def map_positional(
        self, values: tuple[Any, ...], keywords: dict[str, Any], more: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Positional values named in parameter order, then after the names in `more`.

        For RPC calls and URL building (`more`: the rule's segments the handler does not name).
        """
        names = self.positional + tuple(name for name in more if name not in self.positional)
        if len(values) > len(names):
            raise TypeError(f"takes {len(names)} positional arguments, {len(values)} given")
        named = dict(zip(names, values, strict=False))
        for name, value in keywords.items():
            if name in named:
                raise TypeError(f"got two values for {name!r}")
            named[name] = value
        return named


def call_handler(was: Any, route: Any) -> Any:
    """A route's handler with `was.args`, from a worker thread."""
    signature: Signature = route.signature
    kwargs = signature.bind(was.args)
    func = route.func
    if signature.is_async:
        return call_sync(func, True, *((was,) if signature.takes_was else ()), **kwargs)
    return func(was, **kwargs) if signature.takes_was else func(**kwargs)


async def call_handler_async(was: Any, route: Any) -> Any:
    """A route's handler with `was.args`, from the event loop."""
    signature: Signature = route.signature
    kwargs = signature.bind(was.args)
    args = (was,) if signature.takes_was else ()
    return await call_async(route.func, signature.is_async, *args, **kwargs)


def call_sync(func: Callable[..., Any], is_coroutine: bool, *args: Any, **kwargs: Any) -> Any:
    """Call from a worker thread; a coroutine function runs on the event loop."""
    if is_coroutine:
        return anyio.from_thread.run(_call_async, func, args, kwargs)
    return func(*args, **kwargs)


async def call_async(func: Callable[..., Any], is_coroutine: bool, *args: Any, **kwargs: Any) -> Any:
    """Call from the event loop; a plain function runs in a worker thread."""
    if is_coroutine:
        return await func(*args, **kwargs)
    return await anyio.to_thread.run_sync(lambda: func(*args, **kwargs))


async def _call_async(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return await func(*args, **kwargs)
