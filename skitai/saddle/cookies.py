"""`was.cookie`: the request's cookies as a dict, and the Set-Cookie headers of changes.

    was.cookie["theme"]                       # read (KeyError when absent), or .get()
    was.cookie.set("theme", "dark", expires=3600, http_only=True)
    was.cookie.remove("theme")
    was.cookie.clear()                        # remove every cookie the request sent

`expires` is None (a session cookie), a number of seconds, "now" (delete)
or "never" (far in the future). The default path is the app's mount point
(`/` at the root). Values are sent percent-encoded where they hold bytes a
cookie cannot carry, and read back decoded. The headers go out only when
the request succeeds (skitai.saddle.was commits them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, MutableMapping
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote

_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SAFE_VALUE = "!#$%&'()*+-./:<=>?@[]^_`{|}~"  # cookie-octets other than alphanumerics
_NEVER = "Fri, 31 Dec 9999 23:59:59 GMT"
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def parse_cookie_header(header: str) -> dict[str, str]:
    """Name -> value of a Cookie header; malformed pairs are skipped, the first of a name wins."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name) or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = unquote(value) if "%" in value else value
    return cookies


class Cookies(MutableMapping[str, str]):
    def __init__(self, header: str, default_path: str) -> None:
        self._values = parse_cookie_header(header) if header else {}
        self._default_path = default_path or "/"
        self._changes: dict[tuple[str, str, str | None], str] = {}  # (name, path, domain) -> header

    def set(
        self,
        key: str,
        val: Any,
        expires: int | float | str | None = None,
        path: str | None = None,
        domain: str | None = None,
        secure: bool = False,
        http_only: bool = False,
        samesite: str | None = None,
    ) -> None:
        if not _NAME.fullmatch(key):
            raise ValueError(f"{key!r} cannot be a cookie name")
        value = "" if val is None else str(val)
        path = path or self._default_path
        parts = [f"{key}={quote(value, safe=_SAFE_VALUE.replace('%', ''))}", f"Path={_attribute(path)}"]
        if domain:
            parts.append(f"Domain={_attribute(domain)}")
        if expires == "now":
            parts += ["Max-Age=0", f"Expires={_EPOCH}"]
        elif expires == "never":
            parts.append(f"Expires={_NEVER}")
        elif expires is not None:
            if isinstance(expires, str | bool):
                raise ValueError(f"expires must be seconds, 'now', 'never' or None, not {expires!r}")
            seconds = int(expires)
            parts += [f"Max-Age={seconds}", f"Expires={formatdate(time.time() + seconds, usegmt=True)}"]
        if secure:
            parts.append("Secure")
        if http_only:
            parts.append("HttpOnly")
        if samesite:
            if samesite.capitalize() not in ("Strict", "Lax", "None"):
                raise ValueError(f"samesite must be Strict, Lax or None, not {samesite!r}")
            parts.append(f"SameSite={samesite.capitalize()}")
        self._changes[(key, path, domain)] = "; ".join(parts)
        if expires == "now":
            self._values.pop(key, None)
        else:
            self._values[key] = value

    def remove(self, key: str, path: str | None = None, domain: str | None = None) -> None:
        self.set(key, "", expires="now", path=path, domain=domain)

    def clear(self) -> None:
        for key in list(self._values):
            self.remove(key)

    def set_cookie_headers(self) -> list[tuple[str, str]]:
        return [("Set-Cookie", header) for header in self._changes.values()]

    @property
    def changed(self) -> bool:
        return bool(self._changes)

    # the dict side
    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(key)
        self.remove(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> str | None:
        """`was.cookie.username` in templates: the value, or None."""
        if name.startswith("_"):
            raise AttributeError(name)
        value: str | None = self.__dict__["_values"].get(name)
        return value

    def __repr__(self) -> str:
        return f"<Cookies {sorted(self._values)}>"


def _attribute(value: str) -> str:
    if any(c in value for c in ";\r\n\0") or not value.isprintable():
        raise ValueError(f"{value!r} cannot be a cookie attribute")
    return value
