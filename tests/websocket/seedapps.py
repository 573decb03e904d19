"""The seed's Saddle-style WebSocket examples as raw WSGI apps (Saddle stands in later).

Each is the seed's example with `was.env` spelled `environ`, route
arguments read from the query string, and bodies as bytes. `echo` is
wrapped in `wsgiref.validate` like every raw app under test; the others
cannot be: the seed names the socket `environ["websocket"]`, and the
validator wants every key without a dot to hold a string.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

import skitai

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

# The seed's calucate.py: prints a line per step, flushing as it goes.
CALCULATE = "import sys\nfor i in range(int(sys.argv[1])):\n    print(i * i, flush=True)\n"


def _arg(environ: Environ, name: str, default: str = "") -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def _init(environ: Environ, start_response: StartResponse, design: int, varname: str | None) -> list[bytes]:
    environ["websocket_init"] = (design, 60, varname)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def _echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if "websocket_init" in environ:
        return _init(environ, start_response, skitai.WEBSOCKET_REQDATA, "message")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("ECHO:" + _arg(environ, "message")).encode()]


def _talk(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if "websocket_init" in environ:
        return _init(environ, start_response, skitai.WEBSOCKET_DEDICATE, None)
    name = _arg(environ, "name")
    ws = environ["websocket"]
    while True:
        messages = ws.getswait(10)
        if messages is None:
            break
        for m in messages:
            if m.lower() == "bye":
                ws.send("Bye, have a nice day." + m)
                ws.close()
                break
            elif m.lower() == "hello":
                ws.send("Hello, " + name)
            else:
                ws.send("You Said:" + m)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def calculate_in_thread(ws: Any, count: str) -> None:
    p = subprocess.Popen([sys.executable, "-c", CALCULATE, count], universal_newlines=True,
                         stdout=subprocess.PIPE, shell=False)
    assert p.stdout is not None
    for line in iter(p.stdout.readline, ""):
        ws.send(line)
    p.stdout.close()
    p.wait()


def _calculate(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if "websocket_init" in environ:
        return _init(environ, start_response, skitai.WEBSOCKET_DEDICATE_THREADSAFE, None)
    workers = []
    ws = environ["websocket"]
    while True:
        messages = ws.getswait(10)
        if messages is None:
            break
        for m in messages:
            if m.lower() == "bye":
                ws.send("Bye, have a nice day." + m)
                ws.close()
                break
            elif m.lower().startswith("run"):
                worker = threading.Thread(target=calculate_in_thread, args=(ws, m[3:].strip()))
                worker.start()
                workers.append(worker)
            else:
                ws.send("You said %s but I can't understatnd" % m)  # noqa: UP031 - the seed's spelling
    for worker in workers:
        worker.join()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def _chat(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if "websocket_init" in environ:
        return _init(environ, start_response, skitai.WEBSOCKET_MULTICAST, "roomid")
    ws = environ["websocket"]
    while True:
        messages = ws.getswait(10)
        if messages is None:
            break
        for client_id, m in messages:
            ws.sendall("Client %d Said: %s" % (client_id, m))  # noqa: UP031 - the seed's spelling
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


echo = validator(_echo)
talk = _talk
calculate = _calculate
chat = _chat
