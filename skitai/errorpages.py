"""The HTML pages sent for errors the server itself answers."""

from __future__ import annotations

from html import escape

from skitai.protocols.headers import reason_phrase

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{status} {reason}</title></head>
<body><h1>{status} {reason}</h1>{message}{traceback}</body></html>
"""


def error_page(
    status: int, message: str | None = None, traceback_text: str | None = None
) -> tuple[int, bytes]:
    """(status, body) for an HTML error page; the traceback only when given."""
    reason = reason_phrase(status).decode("ascii")
    page = _PAGE.format(
        status=status,
        reason=escape(reason),
        message=f"<p>{escape(message)}</p>" if message else "",
        traceback=f"<pre>{escape(traceback_text)}</pre>" if traceback_text else "",
    )
    return status, page.encode("utf-8")


HTML = (b"Content-Type", b"text/html; charset=utf-8")
