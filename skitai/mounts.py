"""The mount table: which app or static directory answers a path.

Mount points are matched on whole path segments, longest first: `/flask`
serves `/flask` and `/flask/...`, never `/flasky`. At equal length a static
directory is tried before an app, and a static mount that has no such file
lets the next (shorter) mount answer, as the seed's `('/', app)` next to
`('/', '/var/www/static')` needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from skitai.config import mount_list
from skitai.errors import ConfigError
from skitai.loader import AppSource, StaticDir, resolve


@dataclass(eq=False)
class AppMount:
    """A WSGI app at a mount point; `app` is swapped by the reloader."""

    point: str
    app: Any
    source: AppSource | None = None
    generation: int = field(default=0)

    @property
    def script_name(self) -> str:
        return "" if self.point == "/" else self.point

    @property
    def debug(self) -> bool:
        return bool(getattr(self.app, "debug", False))


@dataclass(eq=False)
class StaticMount:
    point: str
    root: str

    @property
    def script_name(self) -> str:
        return "" if self.point == "/" else self.point


Mount = AppMount | StaticMount


def normalize_point(point: str) -> str:
    if not isinstance(point, str) or not point.startswith("/"):
        raise ConfigError(f"a mount point must start with '/', not {point!r}")
    if "//" in point or "/../" in point + "/" or "/./" in point + "/":
        raise ConfigError(f"mount point {point!r} is not a clean path")
    return point.rstrip("/") or "/"


class MountTable:
    def __init__(self, mounts: list[Mount]) -> None:
        self.mounts = sorted(
            mounts, key=lambda m: (-len(m.point), 0 if isinstance(m, StaticMount) else 1)
        )

    @classmethod
    def from_config(cls, mount: Any) -> MountTable:
        mounts: list[Mount] = []
        for point, target in mount_list(mount):
            point = normalize_point(point)
            resolved = resolve(target)
            if isinstance(resolved, StaticDir):
                mounts.append(StaticMount(point, resolved.root))
            else:
                app, source = resolved
                mounts.append(AppMount(point, app, source))
        return cls(mounts)

    def apps(self) -> list[AppMount]:
        return [m for m in self.mounts if isinstance(m, AppMount)]

    def apps_objects(self) -> list[Any]:
        return [m.app for m in self.apps()]

    def match(self, path: str) -> Iterator[tuple[Mount, str]]:
        """(mount, path below it) for every mount whose point covers `path`, best first."""
        for mount in self.mounts:
            point = mount.point
            if point == "/":
                yield mount, path
            elif path.startswith(point) and (len(path) == len(point) or path[len(point)] == "/"):
                yield mount, path[len(point):]
