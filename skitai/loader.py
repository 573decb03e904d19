"""Turning the seed's mount targets into apps, and loading them again for the reloader.

A target is one of:

* a WSGI callable (an app object);
* `(file_or_module, attrname)`: a `.py` file path or a dotted module name;
* `"module:attr"`;
* a path to a `.py` file (the attribute `app` is used);
* a directory path: a static mount.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from skitai.errors import ConfigError


@dataclass(frozen=True)
class AppSource:
    """Where an app object comes from, so it can be loaded afresh."""

    attr: str
    module_name: str | None = None  # importable by name
    path: str | None = None  # or loaded from this file

    @property
    def module(self) -> ModuleType | None:
        if self.module_name is not None:
            return sys.modules.get(self.module_name)
        assert self.path is not None
        return _module_for_file(self.path)

    def load(self, *, fresh: bool = False) -> Any:
        """The app object; with `fresh`, the module is executed again."""
        if self.module_name is not None:
            if fresh:
                sys.modules.pop(self.module_name, None)
            module = importlib.import_module(self.module_name)
        else:
            assert self.path is not None
            module = _load_file(self.path, fresh=fresh)
        try:
            obj: Any = module
            for part in self.attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{module.__name__} has no attribute {self.attr!r}") from None
        return obj

    def describe(self) -> str:
        return f"{self.module_name or self.path}:{self.attr}"


@dataclass(frozen=True)
class StaticDir:
    root: str  # absolute, symlinks resolved


def resolve(target: Any) -> tuple[Any, AppSource | None] | StaticDir:
    """A mount target as (app, source) or a StaticDir. Raises ConfigError."""
    if isinstance(target, str):
        if os.path.isdir(target):
            return StaticDir(os.path.realpath(target))
        if target.startswith("@"):
            raise ConfigError(f"cluster mounts ({target}) are not available yet")
        if target.endswith(".py"):
            source = AppSource(attr="app", path=_existing_file(target))
        elif ":" in target:
            module_name, _, attr = target.partition(":")
            source = AppSource(attr=attr or "app", module_name=module_name)
        else:
            raise ConfigError(f"mount target {target!r} is not a directory, a .py file or module:attr")
        return _loaded(source), source
    if isinstance(target, tuple | list) and len(target) == 2 and all(isinstance(t, str) for t in target):
        where, attr = target
        if where.endswith(".py") or os.path.isfile(where):
            source = AppSource(attr=attr, path=_existing_file(where))
        elif os.path.isfile(where + ".py"):  # the seed's ("/service/app", "app"): the file without .py
            source = AppSource(attr=attr, path=_existing_file(where + ".py"))
        elif os.sep in where or where.startswith("."):
            raise ConfigError(f"no such file: {where!r} (nor {where + '.py'!r})")
        else:
            source = AppSource(attr=attr, module_name=where)
        return _loaded(source), source
    if callable(target):
        return target, find_source(target)
    raise ConfigError(f"cannot mount {target!r}: not a WSGI app, (file, attr), 'module:attr' or directory")


def _loaded(source: AppSource) -> Any:
    try:
        app = source.load()
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import {source.describe()}: {exc}") from exc
    if not callable(app):
        raise ConfigError(f"{source.describe()} is not callable")
    return app


def find_source(app: Any) -> AppSource | None:
    """Where an app object passed directly lives, by looking for a global bound to it.

    Tried in order: the module the object's class or function names, the
    module a Flask-style app names as `import_name`, and the running script.
    """
    names = [getattr(app, "__module__", None), getattr(app, "import_name", None), "__main__"]
    for name in names:
        module = sys.modules.get(name) if isinstance(name, str) else None
        if module is None:
            continue
        for attr, value in vars(module).items():
            if value is app:
                path = getattr(module, "__file__", None)
                if name == "__main__":
                    return AppSource(attr=attr, path=os.path.realpath(path)) if path else None
                return AppSource(attr=attr, module_name=name)
    return None


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ConfigError(f"no such file: {path!r}")
    return os.path.realpath(path)


def _module_for_file(path: str) -> ModuleType | None:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == path:
            return module
    return None


def _load_file(path: str, *, fresh: bool) -> ModuleType:
    if not fresh:
        existing = _module_for_file(path)
        if existing is not None:
            return existing
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    # A fresh copy of the running script must not believe it is __main__,
    # or it would start another server.
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__file__", None) and \
            os.path.realpath(main.__file__) == path:  # type: ignore[type-var]
        name = f"__skitai_main__.{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
