"""Uploaded files as the seed's objects, and the form they arrive in.

`formdata.read_form()` builds a `Form`: field name to `str`, to an
`Upload`, or to a list of them when a name repeats. An `Upload` lives in a
0600 temp file until the handler calls `save()`; the framework calls
`form.cleanup()` at the end of every request, whatever happened, which
removes every file not saved.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import unicodedata
from typing import Any

_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_filename(name: str) -> str:
    """The last path component of `name`, without control or reserved characters; never empty."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    while len(name.encode("utf-8")) > 255:
        name = name[:-1]
    if name.split(".", 1)[0].upper() in _RESERVED:
        name = "_" + name
    return name or "noname"


class Upload:
    """One uploaded file, spooled to `path` until saved or cleaned up."""

    def __init__(self, path: str, name: str, mimetype: str, field: str) -> None:
        self.path = path
        self.name = safe_filename(name)
        self.mimetype = mimetype
        self.field = field
        self.size = 0
        self.saved = False

    def __repr__(self) -> str:
        return f"<Upload {self.name!r} {self.mimetype} {self.size} bytes>"

    def read(self) -> bytes:
        with open(self.path, "rb") as file:
            return file.read()

    def save(self, into: str, name: str | None = None, mkdir: bool = False, dup: str = "u") -> str:
        """Move the file into directory `into` and return its new path.

        `name` defaults to the client's (sanitised) file name. `dup="u"`
        picks a unique name when the file exists (`a-1.txt`), `dup="o"`
        overwrites it.
        """
        if dup not in ("u", "o"):
            raise ValueError(f"dup is 'u' (unique) or 'o' (overwrite), not {dup!r}")
        if mkdir:
            os.makedirs(into, exist_ok=True)
        target = os.path.join(into, safe_filename(name) if name is not None else self.name)
        if dup == "u":
            target = _claim_unique(target)
        try:
            os.replace(self.path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copyfile(self.path, target)  # another file system
            os.remove(self.path)
        self.path, self.saved = target, True
        return target

    def remove(self) -> None:
        """Delete the temp file; a saved file is the app's and is left alone."""
        if not self.saved:
            with _ignore_missing():
                os.remove(self.path)


def _claim_unique(target: str) -> str:
    stem, ext = os.path.splitext(target)
    for n in range(10_000):
        candidate = target if n == 0 else f"{stem}-{n}{ext}"
        try:
            # Claim the name atomically; the move then replaces this empty file.
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name like {target!r}")


class _ignore_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, FileNotFoundError)


class Form(dict[str, Any]):
    """Field name to `str`, `Upload` (or None for an empty file input), or a list of them when repeated."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[Upload] = []

    def add(self, name: str, value: Any) -> None:
        if name not in self:
            self[name] = value
        elif isinstance(self[name], list):
            self[name].append(value)
        else:
            self[name] = [self[name], value]

    def cleanup(self) -> None:
        """Remove every uploaded file not saved; call it at the end of every request."""
        for upload in self.uploads:
            upload.remove()
