"""`was.cookie`: the request's cookies, and the Set-Cookie lines a handler asks for.

Reading follows RFC 6265 §5.4: `name=value` pairs split on `;`, the first
of two same-named cookies wins (browsers send the most specific path
first). Values are percent-decoded on read and percent-encoded on write
when they hold anything outside the cookie-octets, so any `str` round-trips
and no value can inject an attribute or a header. Names must be tokens.

Nothing is sent until the framework calls `set_cookie_headers()`, which
returns one Set-Cookie value per cookie changed in this request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote

# RFC 6265bis caps a cookie's lifetime at 400 days; "never" asks for that much.
NEVER = 400 * 86400
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Cookie-octets (RFC 6265 §4.1.1) less `%`, which is the escape character here.
_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"
# Path and Domain attribute values: no `;` and no control characters.
_ATTRIBUTE = re.compile(r"[^;\x00-\x1f\x7f]*")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}

Expires = int | float | str | None


def parse_cookie_header(header: str) -> dict[str, str]:
    """Return the cookies of one Cookie header, the first of each name kept."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _TOKEN.fullmatch(name) or name in cookies:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = unquote(value)
    return cookies


class CookieJar:
    """Dict-like view of the request's cookies that records what to set.

    `header` is the Cookie header (or several, or None); `default_path` is
    the app's mount point, used when `set()` names no path; `https` makes
    `Secure` the default.
    """

    def __init__(self, header: str | Iterable[str] | None = None, *,
                 default_path: str = "/", https: bool = False) -> None:
        headers = [header] if isinstance(header, str) else list(header or ())
        self._values: dict[str, str] = {}
        for line in headers:
            for name, value in parse_cookie_header(line).items():
                self._values.setdefault(name, value)
        self.default_path = _check_path(default_path or "/")
        self.https = https
        self._pending: dict[tuple[str, str, str | None], str] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], default_path: str | None = None) -> CookieJar:
        """Build the jar of a WSGI request; the default path is SCRIPT_NAME, or `/`."""
        path = default_path or environ.get("SCRIPT_NAME") or "/"
        return cls(environ.get("HTTP_COOKIE"), default_path=path,
                   https=environ.get("wsgi.url_scheme") == "https")

    # Reading, dict style.
    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def has_key(self, key: str) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._values)

    def values(self) -> list[str]:
        return list(self._values.values())

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def iterkeys(self) -> Iterator[str]:
        return iter(self.keys())

    def itervalues(self) -> Iterator[str]:
        return iter(self.values())

    def iteritems(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(key)
        self.remove(key)

    def __repr__(self) -> str:
        return f"<CookieJar {sorted(self._values)}>"

    def __getattr__(self, key: str) -> str | None:
        """`was.cookie.username`, as the seed's templates write it: None when absent."""
        if key.startswith("_"):
            raise AttributeError(key)
        return self._values.get(key)

    # Writing.
    def set(self, key: str, val: str | int | float, expires: Expires = None, path: str | None = None,
            domain: str | None = None, secure: bool | None = None, http_only: bool | None = None,
            same_site: str | None = None, samesite: str | None = None) -> None:
        """Set a cookie for the response.

        `expires` is None (until the browser closes), seconds from now,
        "now" (delete) or "never" (400 days, the most browsers keep).
        `secure` defaults to whether the request came over HTTPS,
        `http_only` to False, `same_site` (or `samesite`) to "Lax". Numbers
        are written as their str().
        """
        if isinstance(val, int | float) and not isinstance(val, bool):
            val = str(val)
        if not isinstance(val, str):
            raise TypeError(f"cookie values are str, not {type(val).__name__}")
        same_site = same_site or samesite
        _check_name(key)
        path = _check_path(path or self.default_path)
        if domain is not None:
            _check_attribute("domain", domain)
        site = _SAME_SITE.get((same_site or "Lax").lower())
        if site is None:
            raise ValueError(f"same_site must be Strict, Lax or None, not {same_site!r}")
        if secure is None:
            secure = self.https or site == "None"
        if site == "None" and not secure:
            raise ValueError("SameSite=None cookies must be Secure")

        parts = [f"{key}={quote(val, safe=_SAFE)}", f"Path={path}"]
        if domain:
            parts.append(f"Domain={domain}")
        parts.extend(_expiry_attributes(expires))
        if secure:
            parts.append("Secure")
        if http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={site}")
        self._pending[(key, path, domain)] = "; ".join(parts)
        if expires == "now":
            self._values.pop(key, None)
        else:
            self._values[key] = val

    def remove(self, key: str, path: str | None = None, domain: str | None = None) -> None:
        """Delete a cookie in the browser; `path` and `domain` must be those it was set with."""
        self.set(key, "", expires="now", path=path, domain=domain)

    def clear(self) -> None:
        """Delete every cookie the request carried, at the default path."""
        for key in list(self._values):
            self.remove(key)

    def set_cookie_headers(self) -> list[str]:
        """The Set-Cookie header values for the cookies changed so far."""
        return list(self._pending.values())


def _expiry_attributes(expires: Expires) -> list[str]:
    if expires is None:
        return []
    if expires == "now":
        seconds = 0
    elif expires == "never":
        seconds = NEVER
    elif isinstance(expires, int | float) and not isinstance(expires, bool):
        seconds = max(0, int(expires))
    else:
        raise ValueError(f"expires must be None, seconds, 'now' or 'never', not {expires!r}")
    # Expires for old clients; Max-Age wins where both are understood.
    when = time.time() + seconds if seconds else 0
    return [f"Max-Age={seconds}", f"Expires={formatdate(when, usegmt=True)}"]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise ValueError(f"not a valid cookie name: {name!r}")


def _check_path(path: str) -> str:
    _check_attribute("path", path)
    if not path.startswith("/"):
        raise ValueError(f"cookie path must start with '/': {path!r}")
    return path


def _check_attribute(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ATTRIBUTE.fullmatch(value):
        raise ValueError(f"not a valid cookie {what}: {value!r}")
