"""`was.response`: the status and headers of the response being made.

    return was.response("404 Not Found")                     # the app's error page
    return was.response("200 OK", body, [("Cache-Control", "max-age=60")])
    was.response.set_header("Cache-Control", "max-age=60")   # then return the body

Calling it sets the status and headers and returns the body, or, without
a body, the app's error page for that status (with the traceback of
`exc_info` when one is given, even with `debug` off). `set_header`
replaces a header of the same name; `append_header` adds one more (as
Set-Cookie needs). Item access reads and writes headers too.
"""

from __future__ import annotations

import re
from typing import Any

from skitai.saddle.errors import status_line

_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Response:
    # The app and environ, not the `was`: no reference cycle to collect per request.
    __slots__ = ("_app", "_env", "headers", "status")

    def __init__(self, app: Any, environ: dict[str, Any]) -> None:
        self._app = app
        self._env = environ
        self.status = "200 OK"
        self.headers: list[tuple[str, str]] = []

    def __call__(
        self,
        status: int | str = "200 OK",
        body: Any = None,
        headers: list[tuple[str, str]] | None = None,
        exc_info: Any = None,
    ) -> Any:
        self.set_status(status)
        if headers:
            self.set_headers(headers)
        if body is None and (exc_info is not None or self.code >= 400):
            return self._app.error_page(self.status, exc_info=exc_info, was=self._env.get("skitai.was"))
        return body

    @property
    def code(self) -> int:
        return int(self.status[:3])

    def set_status(self, status: int | str) -> None:
        """`"404 Not Found"`, or 404 (the reason phrase is added)."""
        self.status = status_line(status)

    def get_status(self) -> str:
        return self.status

    def set_header(self, name: str, value: Any) -> None:
        self.del_header(name)
        self.append_header(name, value)

    def append_header(self, name: str, value: Any) -> None:
        text = str(value)
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(text):
            raise ValueError(f"invalid response header {name!r}: {text!r}")
        self.headers.append((name, text))

    def get_header(self, name: str, default: Any = None) -> Any:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return default

    def del_header(self, name: str) -> None:
        lower = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lower]

    def set_headers(self, headers: list[tuple[str, Any]]) -> None:
        """Replace the headers named in `headers` by the values given (a name may repeat)."""
        for name in {name.lower() for name, _ in headers}:
            self.del_header(name)
        for name, value in headers:
            self.append_header(name, value)

    def get_headers(self) -> list[tuple[str, str]]:
        return list(self.headers)

    get_hedaers = get_headers  # the seed's spelling

    def hint_promise(self, uri: str) -> None:
        """Ask for an HTTP/2 push of `uri` (a path); ignored where push is not possible."""
        promise = self._env.get("skitai.hint_promise")
        if promise is not None:
            promise(uri)

    def __getitem__(self, name: str) -> Any:
        value = self.get_header(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self.set_header(name, value)

    def __delitem__(self, name: str) -> None:
        self.del_header(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get_header(name) is not None

    def __repr__(self) -> str:
        return f"<Response {self.status}>"
