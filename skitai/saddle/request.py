"""`was.request`: the request as the seed describes it, read from the WSGI environ.

Everything is computed on first use. `args` holds the handler's arguments
(URL segments, query, form or JSON members) as an attribute dict.
`user`, `token` and `claim` are set by authentication once it admits the
request; `body` is read on demand (`get_body()`), within the app's limits.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlsplit

_NO_BODY = b""


class AttrDict(dict[str, Any]):
    """A dict whose keys also read as attributes (`was.request.args.num`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Request:
    def __init__(self, environ: dict[str, Any], body: bytes | None, read_body: Callable[[], bytes]) -> None:
        self.env = environ
        self.args: AttrDict = AttrDict()
        self.user: Any = None
        self.token: Any = None
        self.claim: Any = None
        self._read_body = read_body
        self._body = body
        self._json: Any = _NO_BODY

    # the seed's attributes ------------------------------------------------------

    @property
    def command(self) -> str:
        """The method in lower case: "get", "post"..."""
        return str(self.env["REQUEST_METHOD"]).lower()

    @property
    def method(self) -> str:
        return str(self.env["REQUEST_METHOD"])

    @property
    def version(self) -> str:
        """'1.0', '1.1' or '2.0'."""
        protocol = str(self.env.get("SERVER_PROTOCOL", "HTTP/1.1"))
        version = protocol.partition("/")[2] or "1.1"
        return "2.0" if version == "2" else version

    @property
    def uri(self) -> str:
        """The request target as sent: path and query."""
        uri = self.env.get("REQUEST_URI") or self.env.get("RAW_URI")
        if uri:
            return str(uri)
        query = self.env.get("QUERY_STRING")
        path = self.env.get("SCRIPT_NAME", "") + self.env.get("PATH_INFO", "")
        return f"{path}?{query}" if query else path

    @property
    def scheme(self) -> str:
        return str(self.env.get("wsgi.url_scheme", "http"))

    @property
    def gtxid(self) -> str | None:
        return self.env.get("skitai.gtxnid")

    @property
    def ltxid(self) -> int | None:
        return self.env.get("skitai.ltxnid")

    @property
    def header(self) -> list[str]:
        """Every request header as a `Name: value` line."""
        lines = []
        for key, value in self.env.items():
            if key.startswith("HTTP_"):
                name = key[5:]
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = key
            else:
                continue
            lines.append(f"{name.replace('_', '-').title()}: {value}")
        return lines

    @property
    def json(self) -> Any:
        """The body parsed as JSON, None when it is not JSON (see forms for errors)."""
        return None if self._json is _NO_BODY else self._json

    # the seed's methods -----------------------------------------------------------

    def split_uri(self) -> tuple[str, str | None, str | None, str | None]:
        """(path, params, query, fragment), None for parts not present."""
        parts = urlsplit(self.uri)
        path, _, params = parts.path.partition(";")
        return (path, params or None, parts.query or None, parts.fragment or None)

    def get_header(self, name: str, default: Any = None) -> Any:
        """A request header by case-insensitive name."""
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        return self.env.get(key, default)

    def get_headers(self) -> list[str]:
        return self.header

    def get_header_with_attr(self, name: str, default: Any = None) -> tuple[Any, dict[str, str]]:
        """A header's main value and its `;`-separated attributes."""
        value = self.get_header(name)
        if value is None:
            return default, {}
        main, *params = value.split(";")
        attrs = {}
        for param in params:
            key, _, val = param.partition("=")
            attrs[key.strip().lower()] = val.strip().strip('"')
        return main.strip(), attrs

    def get_body(self) -> bytes:
        """The whole request body (413 past the app's limit)."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    @property
    def stream(self) -> BinaryIO:
        """The body as a file: the body read so far, or `wsgi.input` when nothing was read."""
        if self._body is not None:
            return io.BytesIO(self._body)
        return self.env["wsgi.input"]  # type: ignore[no-any-return]

    def get_scheme(self) -> str:
        return self.scheme

    def get_remote_addr(self) -> str | None:
        return self.env.get("REMOTE_ADDR")

    def get_user_agent(self) -> str | None:
        return self.env.get("HTTP_USER_AGENT")

    def get_content_type(self) -> str | None:
        """The media type, lower case, without parameters."""
        value = self.env.get("CONTENT_TYPE")
        return value.split(";", 1)[0].strip().lower() if value else None

    def get_main_type(self) -> str | None:
        content_type = self.get_content_type()
        return content_type.partition("/")[0] if content_type else None

    def get_sub_type(self) -> str | None:
        content_type = self.get_content_type()
        return content_type.partition("/")[2] if content_type else None

    def get_content_length(self) -> int | None:
        value = self.env.get("CONTENT_LENGTH")
        return int(value) if value and value.isdigit() else None

    # filled by the app ----------------------------------------------------------------

    def set_body(self, body: bytes, parsed_json: Any = _NO_BODY) -> None:
        self._body = body
        self._json = parsed_json

    def read_body_from(self, read_body: Callable[[], bytes]) -> None:
        """Where `get_body()` reads once the body went to a parser: the copy kept of it."""
        self._body = None
        self._read_body = read_body

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"
