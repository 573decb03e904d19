"""Saddlery: routes and hooks declared in one module, mounted on an app or another part.

    part = Saddlery()

    @part.route("/<name>")
    def hello(was, name): ...

    app.mount("/admin", admin_module, "part")     # or app.mount("/admin", part)

A part's rules are below its mount point, and so are the mount points of
the parts it mounts itself. Its request hooks nest inside its parent's
(see skitai.saddle.hooks); its app hooks (`startup`, `onreload`,
`shutdown`) run with the app's.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, TypeVar

from skitai.saddle.handlers import Signature
from skitai.saddle.hooks import Hooks
from skitai.saddle.routing import Route, Rule

F = TypeVar("F", bound=Callable[..., Any])

# Bumped by every route or mount anywhere, so apps know to rebuild their routers.
_changes = itertools.count(1)
generation = 0


def _changed() -> None:
    global generation
    generation = next(_changes)


class Saddlery:
    """A set of routes and hooks; `Saddle` is the one mounted on the server."""

    def __init__(self, import_name: str | None = None) -> None:
        self.import_name = import_name
        self.routes: list[Route] = []
        self.parts: list[tuple[str, Saddlery]] = []
        self.hooks = Hooks()
        self.app_hooks: dict[str, Callable[..., Any]] = {}
        self.template_hooks: dict[str, Callable[..., Any]] = {}

    # routes -------------------------------------------------------------------

    def route(
        self,
        rule: str,
        methods: list[str] | tuple[str, ...] | None = None,
        content_types: list[str] | tuple[str, ...] | None = None,
        authenticate: bool = False,
    ) -> Callable[[F], F]:
        """Route `rule` to the decorated function.

        `methods`: allowed methods (others get 405); `content_types`: allowed
        request media types, parameters ignored (others get 415);
        `authenticate`: the request must be authenticated first.
        """
        parsed = Rule(rule)

        def decorate(func: F) -> F:
            self.routes.append(Route(
                rule=parsed,
                func=func,
                methods=frozenset(m.upper() for m in methods) if methods else None,
                content_types=frozenset(media_type(c) for c in content_types) if content_types else None,
                authenticate=authenticate,
                owner=self,
                signature=Signature(func),
            ))
            _changed()
            return func

        return decorate

    def mount(self, point: str, module: ModuleType | Saddlery, partname: str = "part") -> None:
        """Mount a part (or the part named `partname` in `module`) at `point` below this one."""
        part = module if isinstance(module, Saddlery) else getattr(module, partname, None)
        if not isinstance(part, Saddlery):
            raise TypeError(f"{getattr(module, '__name__', module)!r}.{partname} is not a Saddlery")
        if part is self:
            raise ValueError("a part cannot be mounted on itself")
        if not point.startswith("/"):
            raise ValueError(f"a mount point must start with '/': {point!r}")
        self.parts.append((point.rstrip("/"), part))
        _changed()

    def walk(self, prefix: str = "", chain: tuple[Saddlery, ...] = ()) -> Iterator[Route]:
        """Every route here and below, with its full rule and the chain of owners' hooks."""
        chain = (*chain, self)
        for route in self.routes:
            yield Route(
                rule=Rule(prefix + route.rule.text) if prefix else route.rule,
                func=route.func,
                methods=route.methods,
                content_types=route.content_types,
                authenticate=route.authenticate,
                owner=self,
                chain=chain,
                signature=route.signature,
            )
        for point, part in self.parts:
            yield from part.walk(prefix + point, chain)

    def all_parts(self) -> Iterator[Saddlery]:
        yield self
        for _, part in self.parts:
            yield from part.all_parts()

    # hooks ----------------------------------------------------------------------

    def before_request(self, func: F) -> F:
        self.hooks.set("before_request", func)
        return func

    def finish_request(self, func: F) -> F:
        self.hooks.set("finish_request", func)
        return func

    def failed_request(self, func: F) -> F:
        self.hooks.set("failed_request", func)
        return func

    def teardown_request(self, func: F) -> F:
        self.hooks.set("teardown_request", func)
        return func

    def startup(self, func: F) -> F:
        """`func(wasc)` when the server starts serving the app."""
        self.app_hooks["startup"] = func
        return func

    def onreload(self, func: F) -> F:
        """`func(wasc)` on the new app after the reloader loaded it."""
        self.app_hooks["onreload"] = func
        return func

    def shutdown(self, func: F) -> F:
        """`func(wasc)` when the server stops."""
        self.app_hooks["shutdown"] = func
        return func

    def got_template(self, func: F) -> F:
        """`func(was, template)` after a template is loaded for `was.render`."""
        self.template_hooks["got_template"] = func
        return func

    def template_rendered(self, func: F) -> F:
        """`func(was, template, context)` after `was.render` rendered it."""
        self.template_hooks["template_rendered"] = func
        return func

    @property
    def root_path(self) -> str | None:
        """The directory of the module that made this app or part, for its templates."""
        module = sys.modules.get(self.import_name or "")
        file: str | None = getattr(module, "__file__", None)
        if not file:
            return None
        return os.path.dirname(file if os.path.isabs(file) else os.path.abspath(file))


def media_type(value: str) -> str:
    """'text/html' from 'Text/HTML; charset=utf-8'."""
    return value.split(";", 1)[0].strip().lower()
