"""Named loggers, the access line, and the handlers `run()` installs.

Loggers: `skitai.server` (connections, protocol errors, lifecycle),
`skitai.app` (app exceptions, `wsgi.errors`), `skitai.access` (one line per
request). `serve()` only logs to them; configuring handlers is the embedding
program's business. `run()` calls `configure()`, which sends them to stderr
or to files in `log_dir` (`server.log`, `app.log`, `request.log`) through a
queue, so the event loop never waits on a disk or a terminal.

Access line, in the seed's field order:

    client_ip:port host "request line" status request_bytes response_bytes
    gtxnid ltxnid "user"|- "user agent"|- handling_ms transfer_ms

A WebSocket session gets one line when it ends: status 101 (200 over
HTTP/2), the message bytes received and sent, the handshake's time, the
session's length as transfer time, and three more fields:

    ... handling_ms open_ms ws messages_in/messages_out close_code

Client-controlled text (host, request line, user agent) is escaped so it
can neither break a line nor forge one.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import time
from collections.abc import Callable

from skitai.protocols.events import Exchange

server_log = logging.getLogger("skitai.server")
app_log = logging.getLogger("skitai.app")
access_log = logging.getLogger("skitai.access")

LINE_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y.%m.%d %H:%M:%S"
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(32), 127]}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"
MAX_FIELD = 512


def safe(text: bytes | str | None) -> str:
    """Client text fit for a log line: escaped, bounded, never empty."""
    if text is None:
        return "-"
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if len(text) > MAX_FIELD:
        text = text[:MAX_FIELD] + "..."
    return text.translate(_ESCAPES) or "-"


def access_line(exchange: Exchange, gtxnid: str, ltxnid: int) -> str:
    request = exchange.request
    stats = exchange.stats
    client = f"{request.client[0]}:{request.client[1]}" if request.client else "-"
    host = request.header(b"host")
    agent = request.header(b"user-agent")
    now = time.monotonic()
    responded = stats.responded or stats.finished or now  # never answered: until now
    finished = stats.finished or now
    handling = (responded - stats.started) * 1000
    transfer = (finished - responded) * 1000
    line = request.request_line
    if request.stream_id is not None:
        line = f"{line} #{request.stream_id}"
    text = (
        f'{client} {safe(host)} "{safe(line)}" {stats.status or "-"} {stats.bytes_in} '
        f'{stats.bytes_out} {gtxnid} {ltxnid} '
        f'{"-" if stats.user is None else chr(34) + safe(stats.user) + chr(34)} '
        f'{"-" if agent is None else chr(34) + safe(agent) + chr(34)} '
        f"{handling:.0f}ms {transfer:.0f}ms"
    )
    session = stats.websocket
    if session is not None:
        text += f" ws {session.messages_in}/{session.messages_out} {session.close_code or '-'}"
    return text


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        saved = record.levelname
        record.levelname = saved.lower()
        try:
            return super().format(record)
        finally:
            record.levelname = saved


def configure(log_dir: str | None = None, level: str = "info") -> Callable[[], None]:
    """Attach handlers to the `skitai` loggers; returns a function that removes them."""
    formatter = _LowerLevelFormatter(LINE_FORMAT, DATE_FORMAT)
    root = logging.getLogger("skitai")
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    targets: dict[str, logging.Handler] = {}
    if log_dir is None:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter)
        handlers: list[logging.Handler] = [console]
    else:
        for name, file in (("server", "server.log"), ("app", "app.log"), ("access", "request.log")):
            handler = logging.handlers.WatchedFileHandler(os.path.join(log_dir, file))
            handler.setFormatter(formatter)
            targets[name] = handler
        handlers = [_Router(targets)]
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=False)
    queue_handler = logging.handlers.QueueHandler(records)
    root.addHandler(queue_handler)
    root.setLevel(level.upper())
    root.propagate = False
    listener.start()

    def stop() -> None:
        root.removeHandler(queue_handler)
        root.propagate = True
        listener.stop()
        for handler in [*handlers, *targets.values()]:
            handler.close()

    return stop


class _Router(logging.Handler):
    """Sends each record to the file of its logger: request.log, app.log or server.log."""

    def __init__(self, targets: dict[str, logging.Handler]) -> None:
        super().__init__()
        self._targets = targets

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "skitai.access":
            target = self._targets["access"]
        elif record.name == "skitai.app" or record.name.startswith("skitai.app."):
            target = self._targets["app"]
        else:
            target = self._targets["server"]
        target.handle(record)
