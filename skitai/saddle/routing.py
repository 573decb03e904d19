"""Rules such as `/hello/<int:num>`: matching request paths and building URLs.

Segment types (the seed's): `<name>` one segment, `<int:name>` digits,
`<float:name>` digits with an optional fraction, `<path:name>` the rest of
the path (last only; a bare `<path>` means `<path:path>`).

Paths are matched segment by segment on the raw, still percent-encoded
path, each segment decoded (UTF-8) on its own, so `%2F` inside an argument
stays inside it and cannot add a segment. In a `<name>` segment `_` reads
as a space (the seed's convention); building writes a space as `_` and a
real underscore as `%5F`, so any string round-trips. Building refuses what
would change the path's shape: empty, `.` and `..` segments.

Rules without segments are found with one dict lookup. The others are
tried by descending length of their literal prefix, as the original did,
then with more segments first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

_SEGMENT = re.compile(r"<(?:(int|float|path|string):)?([A-Za-z_][A-Za-z0-9_]*)>")
_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SAFE_IN_PATH = "/:@!$&'()*+,;=-._~"


class BadPath(ValueError):
    """A request path that cannot be decoded (not UTF-8)."""


class BuildError(LookupError):
    """No route by that name, or arguments that do not fit its rule."""


def decode_segment(raw: str) -> str:
    """A raw path piece (latin-1 str of bytes) as text: percent-decoded UTF-8."""
    data = unquote_to_bytes(raw) if "%" in raw else raw.encode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath(f"path segment {raw[:80]!r} is not UTF-8") from None


def request_path(environ: dict[str, Any]) -> str:
    """The raw (percent-encoded) path of a request below the app's mount point.

    Taken from the request target Skitai (REQUEST_URI) or gunicorn (RAW_URI)
    passes on, so that `%2F` and `%5F` survive; when the server gives none,
    or it does not agree with SCRIPT_NAME and PATH_INFO, PATH_INFO quoted back.
    """
    path_info: str = environ.get("PATH_INFO", "")
    script_name: str = environ.get("SCRIPT_NAME", "")
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if target:
        if "%" not in target and target == script_name + path_info:
            return path_info  # the common case: nothing encoded, no query
        raw = target.partition("?")[0].partition("#")[0]
        if not raw.startswith("/"):  # absolute-form: scheme://authority/path
            authority_end = raw.find("/", raw.find("//") + 2) if "//" in raw else -1
            raw = raw[authority_end:] if authority_end > 0 else "/"
        if "%" not in raw:
            if raw == script_name + path_info:
                return path_info
        else:
            depth = script_name.count("/")
            pieces = raw.split("/", depth + 1)
            below = "/" + pieces[depth + 1] if len(pieces) > depth + 1 else ""
            mount = "/".join(pieces[: depth + 1])
            if _unquote_latin1(mount) == script_name and _unquote_latin1(below) == path_info:
                return below
    return quote(path_info.encode("latin-1"), safe=_SAFE_IN_PATH)


def _unquote_latin1(raw: str) -> str:
    return unquote_to_bytes(raw).decode("latin-1")


@dataclass(frozen=True, slots=True)
class _Part:
    literal: str | None  # decoded text, or None for an argument
    name: str = ""
    kind: str = ""  # "", "int", "float", "path"


class Rule:
    """One rule string, parsed."""

    __slots__ = ("args", "parts", "prefix_length", "text", "variadic")

    def __init__(self, text: str) -> None:
        if not text.startswith("/"):
            raise ValueError(f"a route rule must start with '/': {text!r}")
        self.text = text
        self.parts: list[_Part] = []
        pieces = text.split("/")[1:]
        for index, piece in enumerate(pieces):
            found = _SEGMENT.fullmatch(piece)
            if found is None:
                if "<" in piece or ">" in piece:
                    raise ValueError(f"bad segment {piece!r} in rule {text!r}")
                self.parts.append(_Part(piece))
                continue
            kind, name = found.group(1) or "", found.group(2)
            if kind == "string":
                kind = ""
            if not kind and name == "path" and index == len(pieces) - 1:
                kind = "path"
            if kind == "path" and index != len(pieces) - 1:
                raise ValueError(f"<path:...> must be the last segment of {text!r}")
            self.parts.append(_Part(None, name, kind))
        names = [p.name for p in self.parts if p.literal is None]
        if len(set(names)) != len(names):
            raise ValueError(f"an argument appears twice in {text!r}")
        self.args = tuple(names)
        self.variadic = bool(self.parts) and self.parts[-1].kind == "path"
        self.prefix_length = text.find("<") if self.args else len(text)

    @property
    def is_static(self) -> bool:
        return not self.args

    def match(self, raw: list[str]) -> dict[str, Any] | None:
        """Arguments from the raw segments of a path, or None when it does not fit."""
        parts = self.parts
        count = len(parts)
        if len(raw) != count and not (self.variadic and len(raw) > count):
            return None
        args: dict[str, Any] = {}
        for index, part in enumerate(parts):
            piece = raw[index]
            if part.literal is not None:
                if piece != part.literal and decode_segment(piece) != part.literal:
                    return None
                continue
            if part.kind == "path":
                rest = "/".join(raw[index:])
                if not rest:
                    return None
                args[part.name] = decode_segment(rest)
                break
            value = _convert(part.kind, piece)
            if value is None:
                return None
            args[part.name] = value
        return args

    def build(self, values: dict[str, Any]) -> str:
        """The path for these argument values (each quoted); BuildError when one does not fit."""
        out = []
        for part in self.parts:
            if part.literal is not None:
                out.append(quote(part.literal, safe=_SAFE_IN_PATH.replace("/", "")))
                continue
            value = values[part.name]
            try:
                out.append(_unconvert(part.kind, value))
            except ValueError as exc:
                raise BuildError(f"{part.name}={value!r} does not fit {self.text!r}: {exc}") from None
        return "/" + "/".join(out)


def _convert(kind: str, raw: str) -> Any:
    if not raw:
        return None
    if kind == "":
        return decode_segment(raw.replace("_", " ") if "_" in raw else raw)
    text = decode_segment(raw)
    if kind == "int":
        return int(text) if text.isascii() and text.isdigit() else None
    if kind == "float":
        return float(text) if _FLOAT.fullmatch(text) else None
    return None


def _unconvert(kind: str, value: Any) -> str:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ValueError("not a non-negative integer")
        return str(int(value))
    if kind == "float":
        text = repr(float(value)) if isinstance(value, int | float) else str(value)
        if not _FLOAT.fullmatch(text):
            raise ValueError("not a non-negative decimal number")
        return text
    text = str(value)
    if kind == "path":
        pieces = text.split("/")
        for piece in pieces:
            _check_piece(piece)
        return "/".join(quote(piece, safe="") for piece in pieces)
    _check_piece(text)
    return quote(text, safe="").replace("_", "%5F").replace("%20", "_")


def _check_piece(piece: str) -> None:
    if piece in ("", ".", ".."):
        raise ValueError(f"{piece!r} cannot be a path segment")


@dataclass(eq=False)
class Route:
    """A handler at a rule, with its restrictions and what its signature takes."""

    rule: Rule
    func: Callable[..., Any]
    methods: frozenset[str] | None
    content_types: frozenset[str] | None
    authenticate: bool
    owner: Any  # the Saddle or Saddlery that declared it
    chain: tuple[Any, ...] = ()  # the root app down to the owner: whose hooks run around it
    signature: Any = None  # a skitai.saddle.handlers.Signature

    @property
    def name(self) -> str:
        return getattr(self.func, "__name__", "")

    def allows(self, method: str | None) -> bool:
        """Whether `method` may call this route; None (RPC calls) may call any."""
        methods = self.methods
        return methods is None or method is None or method in methods \
            or (method == "HEAD" and "GET" in methods)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NotAllowed:
    allowed: tuple[str, ...]


class Router:
    """Every route of an app and its parts, under their full rules."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.static: dict[str, list[Route]] = {}
        dynamic: dict[str, list[Route]] = {}
        self.rules: dict[str, Rule] = {}
        self.by_name: dict[str, Route] = {}
        for route in routes:
            rule = route.rule
            self.rules.setdefault(rule.text, rule)
            target = self.static if rule.is_static else dynamic
            target.setdefault(rule.text, []).append(route)
            self.by_name.setdefault(route.name, route)
        self.dynamic = sorted(
            ((self.rules[text], routes) for text, routes in dynamic.items()),
            key=lambda item: (-item[0].prefix_length, item[0].variadic, -len(item[0].parts)),
        )
        self.has_async = any(
            route.signature is not None and route.signature.is_async
            for routes in (*self.static.values(), *dynamic.values()) for route in routes
        )

    def find(self, raw_path: str, method: str | None) -> Match | NotAllowed | None:
        """The route for a raw path (below the mount point) and method.

        None when no rule fits; NotAllowed when rules fit but not the method.
        Raises BadPath for paths that are not UTF-8.
        """
        routes = self.static.get(raw_path) if "%" not in raw_path else None
        args: dict[str, Any] = {}
        if routes is None:
            raw = raw_path.split("/")[1:]
            if "%" in raw_path or not raw_path.isascii():
                decoded = [decode_segment(piece) for piece in raw]
                if not any("/" in piece for piece in decoded):
                    routes = self.static.get("/" + "/".join(decoded))
            if routes is None:
                for rule, candidates in self.dynamic:
                    found = rule.match(raw)
                    if found is not None:
                        routes, args = candidates, found
                        break
        if routes is None:
            return None
        for route in routes:
            if route.allows(method):
                return Match(route, args)
        allowed: list[str] = []
        for route in routes:
            for name in sorted(route.methods or ()):
                if name not in allowed:
                    allowed.append(name)
        if "GET" in allowed and "HEAD" not in allowed:
            allowed.append("HEAD")
        return NotAllowed(tuple(allowed))
