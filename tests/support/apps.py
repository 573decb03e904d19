"""WSGI apps for tests, wrapped in wsgiref.validate so PEP 3333 is checked on both sides."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.validate import validator

WsgiApp = Callable[..., Iterable[bytes]]


def _hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello World"]


def _echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    body = b""
    while chunk := stream.read(65536):
        body += chunk
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def _environ(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    shown = {k: v for k, v in environ.items() if isinstance(v, str)}
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


plain_echo = _echo  # for method names wsgiref.validate warns about (parser tests)
hello = validator(_hello)
echo = validator(_echo)
show_environ = validator(_environ)
