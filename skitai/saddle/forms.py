"""Request arguments from the query string and the body.

Query strings and urlencoded forms give str values; a key repeated gives a
list. A key may carry a type prefix (the original's): `int:n=3` gives
`n=3`, likewise `float:`, `bit:` (1/0, true/false, yes/no, on/off),
`list:` (comma-separated) and `json:`; a value that does not fit is a 400.
A JSON body that is an object gives its members; any JSON body is also
`was.request.json`.

Other media types plug in through `skitai.saddle.plugins.BODY_PARSERS`
(multipart forms do).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from skitai.saddle.errors import BadRequest, BodyTooLarge

MAX_FIELDS = 1000  # per query string or form; more is a 400
URLENCODED = "application/x-www-form-urlencoded"
JSON_TYPES = frozenset({"application/json", "application/json-rpc"})

_BITS = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False, "": False}


def parse_query(text: str) -> dict[str, Any]:
    """Arguments of a query string or urlencoded body (str of latin-1 or UTF-8 text)."""
    if not text.isascii():
        text = text.encode("latin-1", "replace").decode("utf-8", "replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          encoding="utf-8", errors="replace")
    except ValueError:
        raise BadRequest(f"more than {MAX_FIELDS} fields") from None
    args: dict[str, Any] = {}
    for key, value in pairs:
        if ":" in key:
            key, value = _typed(key, value)
        if key in args:
            previous = args[key]
            if isinstance(previous, list) and not isinstance(value, list):
                previous.append(value)
            else:
                args[key] = [previous, value]
        else:
            args[key] = value
    return args


def _typed(key: str, value: str) -> tuple[str, Any]:
    kind, _, name = key.partition(":")
    try:
        if kind == "int":
            return name, int(value)
        if kind == "float":
            return name, float(value)
        if kind == "bit":
            return name, _BITS[value.lower()]
        if kind == "list":
            return name, value.split(",") if value else []
        if kind == "json":
            return name, json.loads(value)
    except (ValueError, KeyError):
        raise BadRequest(f"{key}={value[:40]!r}: not a valid {kind}") from None
    return key, value  # a colon that is no known prefix belongs to the name


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None


def read_limited(stream: BinaryIO, declared: int | None, limit: int) -> bytes:
    """The whole body from `stream`, refusing (413) more than `limit` bytes."""
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes, more than {limit}")
    if declared is not None:
        data = stream.read(declared)
        if len(data) < declared:
            raise BadRequest("request body shorter than its Content-Length")
        return data
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    return data


def body_args(request: Any, media: str, body: bytes) -> dict[str, Any]:
    """Arguments from a urlencoded or JSON body, which `request` (was.request) keeps."""
    if media == URLENCODED:
        request.set_body(body)
        return parse_query(body.decode("latin-1"))
    parsed = parse_json(body) if body else None
    request.set_body(body, parsed)
    return parsed if isinstance(parsed, dict) else {}
