"""Exceptions that stand for an HTTP answer rather than a bug."""

from __future__ import annotations

import logging
from typing import Any

from skitai.protocols.headers import reason_phrase

app_log = logging.getLogger("skitai.app")


class HTTPError(Exception):
    """Raise it from a handler or hook to answer with this status and an error page.

    Not logged as an app failure: it is an answer, not a bug.
    """

    def __init__(
        self,
        status: int | str,
        message: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status_line(status)
        self.message = message
        self.headers = headers or []
        super().__init__(f"{self.status}: {message}" if message else self.status)

    @property
    def code(self) -> int:
        return int(self.status[:3])


class BadRequest(HTTPError):
    """400, with the reason in the message (a missing argument, malformed JSON...)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class BodyTooLarge(HTTPError):
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def status_line(status: int | str) -> str:
    """'404 Not Found' from 404 or from a status line given as text."""
    if isinstance(status, int) and not isinstance(status, bool):
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        return f"{status} {reason_phrase(status).decode('ascii')}"
    if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit() \
            or not 100 <= int(status[:3]) <= 599 or (len(status) > 3 and status[3] != " "):
        raise ValueError(f"not an HTTP status line: {status!r}")
    if len(status) == 3:
        return status_line(int(status))
    if any(c in status for c in "\r\n\0"):
        raise ValueError(f"not an HTTP status line: {status!r}")
    return status


def log_answer(environ: dict[str, Any], error: HTTPError) -> None:
    """One line for an error answered on purpose: a warning for refused input, else debug."""
    level = logging.WARNING if error.code in (400, 413, 415) else logging.DEBUG
    app_log.log(level, "[%s/%s] %s %s: %s", environ.get("skitai.gtxnid", "-"),
                environ.get("skitai.ltxnid", "-"), environ.get("REQUEST_URI"), error.status,
                error.message or "")
