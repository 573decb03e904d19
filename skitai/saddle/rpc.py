"""Routes called as XML-RPC and JSON-RPC 2.0 methods.

Any route is a method: a call to `a.b` posted to a path runs the route at
that path plus `/a/b`, so with the app mounted at `/rpc`,

    xmlrpc.client.ServerProxy("http://host/rpc").add(1, 2)

runs `@app.route("/add") def add(was, num1, num2)` with num1=1, num2=2.
Positional parameters fill the handler's parameters in order; JSON-RPC
named parameters go by name; the route's own segments (`/hello/<name>`
called as `hello.Hans`) are arguments too. The call goes through the
app's and parts' hooks and authentication like any request; the route's
`methods` and `content_types` restrictions are for HTTP callers and do
not apply. The handler's return value is the result. A call that needs
credentials the request lacks answers the whole request with HTTP 401 and
the authenticator's challenge (so a client can retry with them); one
refused for good is a Fault with code 403.

A call posted to `/RPC2` (where `xmlrpc.client` posts when its URL has no
path) goes to the mount point itself, unless the app has routes there.
XML-RPC (POST `text/xml` or `application/xml`) also answers
`system.multicall` and `system.listMethods`. Faults use the codes of the
XML-RPC interoperability spec: -32700 not well-formed (or refused: DTDs,
entities, deep nesting), -32600 not an XML-RPC call, -32601 unknown method,
-32602 bad parameters, -32603 the handler failed (the traceback in the
message when `app.debug`); a route that answered an HTTP error status
gives that status as the code.

JSON-RPC 2.0 (POST `application/json-rpc`, or `application/json` with a
`jsonrpc` member) follows the spec: batches, notifications (no `id`, no
answer; 204 when nothing is left to answer), error codes -32700, -32600,
-32601, -32602, -32603, and HTTP statuses as application error codes.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from skitai import safexml
from skitai.saddle import hooks
from skitai.saddle.errors import BadRequest, HTTPError
from skitai.saddle.routing import Match
from skitai.saddle.was import RequestWas

app_log = logging.getLogger("skitai.app")

XML_TYPES = frozenset({"text/xml", "application/xml"})
JSONRPC_TYPE = "application/json-rpc"
MEDIA_TYPES = XML_TYPES | {JSONRPC_TYPE, "application/json"}

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
MAX_BATCH = 1000  # calls in one multicall or batch
DEFAULT_PATH = "/RPC2"

_METHOD = re.compile(r"[A-Za-z0-9_:-]+(?:\.[A-Za-z0-9_:-]+)*")
_SYSTEM = ("system.listMethods", "system.multicall")

WsgiResult = tuple[str, list[tuple[str, str]], list[bytes]]


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_jsonrpc(payload: Any) -> bool:
    """Whether a parsed JSON body is a JSON-RPC request or batch."""
    if isinstance(payload, dict):
        return "jsonrpc" in payload
    return isinstance(payload, list) and bool(payload) and isinstance(payload[0], dict) \
        and "jsonrpc" in payload[0]


def serve(app: Any, environ: dict[str, Any], base: str, media: str, body: bytes,
          parsed: Any = None) -> WsgiResult:
    calls = _Calls(app, environ, base, body)
    if media in XML_TYPES:
        return calls.serve_xml(body)
    return calls.serve_json(body, parsed)


class _Calls:
    """The calls of one RPC request, and the cookies they set."""

    def __init__(self, app: Any, environ: dict[str, Any], base: str, body: bytes) -> None:
        self.app = app
        self.environ = environ
        self.body = body
        self.base = base.rstrip("/")
        if self.base == DEFAULT_PATH and not any(
                text.startswith(DEFAULT_PATH) for text in app.router.rules):
            self.base = ""  # where xmlrpc.client posts when the URL has no path
        self.cookies: list[tuple[str, str]] = []

    def call(self, method: str, params: list[Any] | tuple[Any, ...], named: dict[str, Any]) -> Any:
        if not _METHOD.fullmatch(method):
            raise RpcError(METHOD_NOT_FOUND, f"no method {method[:80]!r}")
        found = self.app.router.find(f"{self.base}/{method.replace('.', '/')}", None)
        if not isinstance(found, Match):
            raise RpcError(METHOD_NOT_FOUND, f"no method {method!r}")
        route = found.route
        was = RequestWas(self.app, self.environ, route, self.body)
        self.environ["skitai.was"] = was
        refusal = self.app.check_access(was, route)
        if refusal is not None:
            if refusal.code == 401:
                # A challenge answers the whole request, as HTTP 401 with its
                # WWW-Authenticate: a Fault would hide the nonce the client needs.
                raise refusal
            raise RpcError(refusal.code, refusal.status)
        try:
            args = route.signature.map_positional(tuple(params), named)
        except TypeError as exc:
            raise RpcError(INVALID_PARAMS, f"{method}: {exc}") from None
        args.update(found.args)
        was.args = args
        try:
            value = hooks.run_sync(route, was)
            was.commit()
        except BadRequest as exc:
            raise RpcError(INVALID_PARAMS, f"{method}: {exc.message}") from None
        except HTTPError as exc:
            raise RpcError(exc.code, exc.status) from None
        except Exception as exc:
            was.note_failure((type(exc), exc, exc.__traceback__))
            detail = "".join(traceback.format_exception(exc)) if self.app.debug else ""
            raise RpcError(INTERNAL_ERROR, f"{method} failed" + (f"\n{detail}" if detail else "")) \
                from None
        finally:
            was.close()
        response = was._response
        if response is not None:
            self.cookies += [h for h in response.headers if h[0].lower() == "set-cookie"]
            if response.code >= 400:
                raise RpcError(response.code, response.status)
        return value

    def list_methods(self) -> list[str]:
        prefix = self.base + "/"
        names = [
            text[len(prefix):].replace("/", ".")
            for text in self.app.router.static
            if text.startswith(prefix) and len(text) > len(prefix) and not text.endswith("/")
        ]
        return sorted({*names, *_SYSTEM})

    # XML-RPC -------------------------------------------------------------------------

    def serve_xml(self, body: bytes) -> WsgiResult:
        try:
            params, method = safexml.loads(body)
        except safexml.UnsafeXML as exc:
            return self._xml_fault(RpcError(PARSE_ERROR, f"refused: {exc}"), log=logging.WARNING)
        except (ExpatError, ValueError, xmlrpc.client.ResponseError, xmlrpc.client.Fault) as exc:
            return self._xml_fault(RpcError(PARSE_ERROR, f"not a well-formed call: {exc}"),
                                   log=logging.WARNING)
        if method is None:
            return self._xml_fault(RpcError(INVALID_REQUEST, "not an XML-RPC call"), log=logging.WARNING)
        try:
            if method == "system.multicall":
                value: Any = self._multicall(params)
            elif method == "system.listMethods":
                value = self.list_methods()
            else:
                value = self.call(method, params, {})
            text = safexml.dumps_response(value)
        except RpcError as exc:
            return self._xml_fault(exc, log=logging.INFO)
        except (TypeError, OverflowError) as exc:
            return self._xml_fault(RpcError(INTERNAL_ERROR, f"{method}: cannot send the result: {exc}"),
                                   log=logging.ERROR)
        return self._xml(text)

    def _multicall(self, params: tuple[Any, ...]) -> list[Any]:
        if len(params) != 1 or not isinstance(params[0], list):
            raise RpcError(INVALID_PARAMS, "system.multicall takes one array of calls")
        if len(params[0]) > MAX_BATCH:
            raise RpcError(INVALID_PARAMS, f"more than {MAX_BATCH} calls")
        results: list[Any] = []
        for item in params[0]:
            try:
                if not isinstance(item, dict) or not isinstance(item.get("methodName"), str) \
                        or not isinstance(item.get("params", []), list):
                    raise RpcError(INVALID_PARAMS, "a call is a struct with methodName and params")
                if item["methodName"] in _SYSTEM:
                    raise RpcError(INVALID_REQUEST, f"{item['methodName']} cannot be multicalled")
                value = self.call(item["methodName"], item.get("params", []), {})
                xmlrpc.client.dumps((value,), allow_none=True)  # fails here, not for every call
                results.append([value])
            except RpcError as exc:
                results.append({"faultCode": exc.code, "faultString": exc.message})
            except (TypeError, OverflowError) as exc:
                results.append({"faultCode": INTERNAL_ERROR, "faultString": f"cannot send the result: {exc}"})
        return results

    def _xml_fault(self, error: RpcError, log: int) -> WsgiResult:
        app_log.log(log, "[%s/%s] XML-RPC fault %d at %s: %s", self.environ.get("skitai.gtxnid", "-"),
                    self.environ.get("skitai.ltxnid", "-"), error.code, self.environ.get("REQUEST_URI"),
                    error.message.partition("\n")[0])
        return self._xml(safexml.dumps_response(xmlrpc.client.Fault(error.code, error.message)))

    def _xml(self, text: str) -> WsgiResult:
        headers = [("Content-Type", "text/xml; charset=utf-8"), *self.cookies]
        return "200 OK", headers, [text.encode("utf-8")]

    # JSON-RPC ------------------------------------------------------------------------

    def serve_json(self, body: bytes, parsed: Any) -> WsgiResult:
        if parsed is None:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError) as exc:
                self._log_json(PARSE_ERROR, f"malformed JSON: {exc}")
                return self._json(_error(PARSE_ERROR, "Parse error", None))
        if isinstance(parsed, list):
            if not parsed or len(parsed) > MAX_BATCH:
                self._log_json(INVALID_REQUEST, "empty or oversized batch")
                return self._json(_error(INVALID_REQUEST, "Invalid Request", None))
            answers = [answer for answer in map(self._json_call, parsed) if answer is not None]
            return self._json(answers) if answers else ("204 No Content", self.cookies, [])
        answer = self._json_call(parsed)
        return self._json(answer) if answer is not None else ("204 No Content", self.cookies, [])

    def _json_call(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(INVALID_REQUEST, "Invalid Request", None)
        request_id = request.get("id")
        if not (request_id is None or isinstance(request_id, str | int | float)) \
                or isinstance(request_id, bool):
            return _error(INVALID_REQUEST, "Invalid Request", None)
        method, params = request.get("method"), request.get("params", [])
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str) \
                or not isinstance(params, list | dict):
            self._log_json(INVALID_REQUEST, "not a JSON-RPC 2.0 request")
            return _error(INVALID_REQUEST, "Invalid Request", request_id)
        notification = "id" not in request
        try:
            if method == "system.listMethods":
                result: Any = self.list_methods()
            elif isinstance(params, dict):
                result = self.call(method, (), params)
            else:
                result = self.call(method, params, {})
            json.dumps(result)  # an unserialisable result is this call's error, not the batch's
        except RpcError as exc:
            self._log_json(exc.code, exc.message.partition("\n")[0])
            return None if notification else _error(exc.code, exc.message, request_id)
        except (TypeError, ValueError) as exc:
            return None if notification else _error(INTERNAL_ERROR, f"cannot send the result: {exc}",
                                                     request_id)
        return None if notification else {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _log_json(self, code: int, message: str) -> None:
        level = logging.WARNING if code in (PARSE_ERROR, INVALID_REQUEST) else logging.INFO
        app_log.log(level, "[%s/%s] JSON-RPC error %d at %s: %s", self.environ.get("skitai.gtxnid", "-"),
                    self.environ.get("skitai.ltxnid", "-"), code, self.environ.get("REQUEST_URI"), message)

    def _json(self, payload: Any) -> WsgiResult:
        headers = [("Content-Type", "application/json"), *self.cookies]
        return "200 OK", headers, [json.dumps(payload, ensure_ascii=False).encode("utf-8")]


def _error(code: int, message: str, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}
