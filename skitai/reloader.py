"""Reloading apps when their source files change, without dropping requests.

An app with `use_reloader = True` is watched together with its whole
package: every module in `sys.modules` whose file lies under the package
root, which is the top package's directory, or the file's own directory
for a module outside any package. The standard library, installed
distributions (anything in `site-packages`, the virtual environment) and
Skitai itself are never watched nor reloaded.

Every `interval` seconds one worker thread compares the files' mtimes and
sizes with the previous look. A change starts a burst: the reload waits
until a look `QUIET_PERIOD` later finds nothing new, so an editor's or a
checkout's flurry of writes reloads once. Then, in a worker thread (the
import runs user code), the package's modules leave `sys.modules`, each
mounted app is loaded afresh, and back on the event loop `mount.app` is
swapped. A request reads `mount.app` once when it starts, so requests in
flight finish on the old app and its old modules; the next one gets the
new app. When the new code fails to load, the old modules go back into
`sys.modules` and the old app keeps serving; the files named in the
traceback are watched too, so fixing a module that never imported
reloads as well.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import site
import sys
import sysconfig
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anyio

from skitai.errors import ConfigError
from skitai.loader import AppSource
from skitai.mounts import AppMount

log = logging.getLogger("skitai.server")
app_log = logging.getLogger("skitai.app")

QUIET_PERIOD = 0.25  # seconds without further writes that end a burst of saves
_INSTALLED = frozenset({"site-packages", "dist-packages"})

FileState = tuple[int, int] | None  # (mtime_ns, size); None while the file is missing


@dataclass(eq=False)
class Package:
    """A source tree and the mounts whose apps come from it; reloaded as one."""

    root: str
    mounts: list[AppMount]
    failed_files: set[str] = field(default_factory=set)  # from the last failed load

    def contains(self, file: str) -> bool:
        return file.startswith(os.path.join(self.root, ""))

    def describe(self) -> str:
        return ", ".join(_describe(mount) for mount in self.mounts)


class SourceTree:
    """The watched files of every package. Blocking: used from worker threads only."""

    def __init__(self, mounts: list[AppMount]) -> None:
        self.packages: list[Package] = []
        self.unreloadable: list[tuple[AppMount, str]] = []
        self._excluded = _excluded_dirs()
        self._real_files: dict[str, str | None] = {}  # a module's __file__ -> watched path
        self._states: dict[str, FileState] = {}
        for mount in mounts:
            self._add(mount)
        self.poll()

    def poll(self) -> set[str]:
        """Files changed since the last poll; files seen for the first time are only noted."""
        states = {file: _state(file) for file in self._watched_files()}
        changed = {
            file for file, state in states.items()
            if file in self._states and self._states[file] != state
        }
        self._states = states
        return changed

    def load_fresh(self, package: Package, changed: set[str]) -> list[Any]:
        """New apps for the package's mounts, from its modules imported afresh.

        On failure the package's previous modules are back in `sys.modules`.
        """
        _forget_bytecode(changed)
        importlib.invalidate_caches()  # so modules created since the last import are found
        saved = self._modules_of(package)
        for name in saved:
            sys.modules.pop(name, None)
        try:
            apps = self._load_apps(package)
        except BaseException as exc:
            for name in self._modules_of(package):
                sys.modules.pop(name, None)
            sys.modules.update(saved)
            self._watch_failed(package, exc)
            raise
        package.failed_files.clear()
        return apps

    def _add(self, mount: AppMount) -> None:
        file = _mounted_file(mount.source) if mount.source is not None else None
        if file is None:
            self.unreloadable.append((mount, "its source file is unknown"))
            return
        root = _package_root(file)
        if self._is_excluded(os.path.join(root, "")):
            self.unreloadable.append((mount, f"{root} holds installed code"))
            return
        for package in self.packages:
            if package.root == root:
                package.mounts.append(mount)
                return
        self.packages.append(Package(root, [mount]))

    def _watched_files(self) -> set[str]:
        files = {file for _, _, file in self._loaded_sources()}
        for package in self.packages:
            files |= package.failed_files
        return files

    def _loaded_sources(self) -> list[tuple[str, ModuleType, str]]:
        """(name, module, real file) of every loaded module that belongs to a package."""
        found = []
        for name, module in list(sys.modules.items()):
            file = self._source_file(module)
            if file is not None:
                found.append((name, module, file))
        return found

    def _modules_of(self, package: Package) -> dict[str, ModuleType]:
        # The running script stays: it is the program, reloads load a copy of it.
        return {
            name: module
            for name, module, file in self._loaded_sources()
            if name != "__main__" and package.contains(file)
        }

    def _source_file(self, module: ModuleType) -> str | None:
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            return None
        if file not in self._real_files:
            real = os.path.realpath(file)
            watched = not self._is_excluded(real) and any(p.contains(real) for p in self.packages)
            self._real_files[file] = real if watched else None
        return self._real_files[file]

    def _is_excluded(self, path: str) -> bool:
        return path.startswith(self._excluded) or not _INSTALLED.isdisjoint(path.split(os.sep))

    def _load_apps(self, package: Package) -> list[Any]:
        fresh: dict[str, str] = {}  # where a module came from -> its fresh module's name
        apps = []
        for mount in package.mounts:
            source = mount.source
            assert source is not None  # only mounts with a source join a package
            where = source.module_name or source.path or ""
            if where in fresh:
                # Apps of one module share one fresh execution of it, as they did at start.
                app = AppSource(attr=source.attr, module_name=fresh[where]).load()
            else:
                app = source.load(fresh=True)
                fresh[where] = source.module_name or self._fresh_module_name(source.path or "")
            if not callable(app):
                raise ConfigError(f"{source.describe()} is not callable")
            apps.append(app)
        return apps

    def _fresh_module_name(self, path: str) -> str:
        for name, _, file in self._loaded_sources():
            if file == path and name != "__main__":
                return name
        raise ConfigError(f"{path} did not stay in sys.modules")

    def _watch_failed(self, package: Package, exc: BaseException) -> None:
        """Watch the files a failed load went through, even those that never imported."""
        files = {frame.f_code.co_filename for frame, _ in traceback.walk_tb(exc.__traceback__)}
        if isinstance(exc, SyntaxError) and exc.filename:
            files.add(exc.filename)
        for file in files:
            if not os.path.isabs(file):
                continue  # "<frozen importlib._bootstrap>" and the like
            real = os.path.realpath(file)
            if package.contains(real) and not self._is_excluded(real):
                package.failed_files.add(real)
                self._states.setdefault(real, _state(real))


class Reloader:
    """Watches the packages of the given mounts and swaps in their reloaded apps."""

    def __init__(self, mounts: list[AppMount], interval: float = 1.0) -> None:
        self.mounts = mounts
        self.interval = interval
        # Awaited with a package's new apps once they are swapped in.
        self.on_reload: Callable[[list[Any]], Awaitable[None]] | None = None

    async def run(self) -> None:
        """Watch until cancelled; returns at once when no mount can be reloaded."""
        tree = await anyio.to_thread.run_sync(SourceTree, self.mounts)
        for mount, reason in tree.unreloadable:
            log.warning("%s is not reloadable: %s", _describe(mount), reason)
        for package in tree.packages:
            log.info("reloader watching %s for %s", package.root, package.describe())
        if not tree.packages:
            return
        while True:
            await anyio.sleep(self.interval)
            changed = await self._wait_changes(tree)
            for package in tree.packages:
                files = {file for file in changed if package.contains(file)}
                if files:
                    await self._reload(tree, package, files)

    async def _wait_changes(self, tree: SourceTree) -> set[str]:
        changed = await anyio.to_thread.run_sync(tree.poll)
        while changed:
            await anyio.sleep(QUIET_PERIOD)
            more = await anyio.to_thread.run_sync(tree.poll)
            if not more:
                break
            changed |= more
        return changed

    async def _reload(self, tree: SourceTree, package: Package, files: set[str]) -> None:
        names = ", ".join(sorted(files))
        try:
            apps = await anyio.to_thread.run_sync(tree.load_fresh, package, files)
        except Exception:
            app_log.exception(
                "reloading %s failed after changes to %s; still serving the old app",
                package.describe(), names,
            )
            return
        for mount, app in zip(package.mounts, apps, strict=True):
            mount.app = app
            mount.generation += 1
        log.info("reloaded %s: %s changed", package.describe(), names)
        if self.on_reload is not None:
            await self.on_reload(apps)


def _describe(mount: AppMount) -> str:
    if mount.source is None:
        return f"the app at {mount.point}"
    return f"{mount.source.describe()} at {mount.point}"


def _mounted_file(source: AppSource) -> str | None:
    if source.path is not None:
        return source.path
    file = getattr(source.module, "__file__", None)
    return os.path.realpath(file) if isinstance(file, str) else None


def _package_root(file: str) -> str:
    """The top package's directory holding `file`, or the file's directory outside packages."""
    root = os.path.dirname(file)
    while os.path.isfile(os.path.join(root, "__init__.py")):
        parent = os.path.dirname(root)
        if parent == root or not os.path.isfile(os.path.join(parent, "__init__.py")):
            break
        root = parent
    return root


def _excluded_dirs() -> tuple[str, ...]:
    """Python's own directories, installed packages' and Skitai's, each ending in a separator."""
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(site.getusersitepackages())
    dirs.add(os.path.dirname(__file__))
    # A virtual environment holds no project code; a base prefix such as /usr may.
    if sys.prefix != sys.base_prefix:
        dirs.add(sys.prefix)
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


def _state(file: str) -> FileState:
    try:
        stat = os.stat(file)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _forget_bytecode(files: set[str]) -> None:
    # A .pyc is trusted while its source keeps the same size and mtime in whole
    # seconds, so a quick second edit of the same length would load stale code.
    for file in files:
        if not file.endswith(".py"):
            continue
        with contextlib.suppress(NotImplementedError, ValueError, OSError):
            os.remove(importlib.util.cache_from_source(file))
