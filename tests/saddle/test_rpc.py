"""Routes as XML-RPC (real xmlrpc.client) and JSON-RPC 2.0 methods; hostile XML refused."""

from __future__ import annotations

import logging
import xmlrpc.client
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from skitai.saddle import HTTPError, Saddle
from tests.saddle.conftest import client_for
from tests.support.servers import serving


def make_app(calls: list[str] | None = None) -> Saddle:
    app = Saddle(__name__)

    @app.before_request
    def before(was):
        if calls is not None:
            calls.append(f"before {was.route.rule.text}")

    @app.route("/add")
    def index(was, num1, num2):
        return num1 + num2

    @app.route("/math/mul")
    def mul(was, a, b=2):
        return a * b

    @app.route("/hello/<name>")
    def hello(was, name):
        return f"Hello, {name}"

    @app.route("/struct")
    def struct(was, **kw):
        return {"kw": kw, "none": None, "list": [1, "two", 3.0], "bytes": b"\x00\x01"}

    @app.route("/crash")
    def crash(was):
        raise ZeroDivisionError("secret detail")

    @app.route("/missing")
    def missing(was):
        return was.response("404 Not Found")

    @app.route("/teapot")
    def teapot(was):
        raise HTTPError(418)

    @app.route("/guarded", authenticate=True)
    def guarded(was):
        return "in"

    @app.route("/unsendable")
    def unsendable(was):
        return object()

    @app.route("/aio/add")
    async def async_add(was, a, b):
        await anyio.lowlevel.checkpoint()
        return a + b

    @app.route("/get-only", methods=["GET"])
    def get_only(was):
        return "rpc ignores methods"

    return app


async def call(url: str, method: str, *params: Any) -> Any:
    """One call with the standard library's client, in a worker thread."""
    def run() -> Any:
        with xmlrpc.client.ServerProxy(url, allow_none=True) as proxy:
            return getattr(proxy, method)(*params)

    return await anyio.to_thread.run_sync(run)


async def test_seed_xmlrpc_service() -> None:
    calls: list[str] = []
    async with serving(mount=("/rpc", make_app(calls))) as served:
        url = f"{served.url}/rpc"
        assert await call(url, "add", 10000, 5000) == 15000
        assert await call(url, "math.mul", 3) == 6
        assert await call(url, "math.mul", "ab", 2) == "abab"
        assert await call(url, "hello.Hans") == "Hello, Hans"
        assert await call(url, "struct") == {"kw": {}, "none": None, "list": [1, "two", 3.0],
                                             "bytes": xmlrpc.client.Binary(b"\x00\x01")}
        assert await call(url, "aio.add", 1, 2) == 3
        assert await call(url, "get-only") == "rpc ignores methods"
        assert "add" in await call(url, "system.listMethods")
        assert {"math.mul", "system.multicall"} <= set(await call(url, "system.listMethods"))
    assert calls[:2] == ["before /add", "before /math/mul"]


async def test_faults(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    async with serving(mount=("/rpc", app)) as served:
        url = f"{served.url}/rpc"

        async def fault(method: str, *params: Any) -> xmlrpc.client.Fault:
            with pytest.raises(xmlrpc.client.Fault) as info:
                await call(url, method, *params)
            return info.value

        assert (await fault("nothing")).faultCode == -32601
        assert (await fault("add", 1)).faultCode == -32602
        assert (await fault("add", 1, 2, 3)).faultCode == -32602
        with caplog.at_level(logging.ERROR, "skitai.app"):
            crashed = await fault("crash")
        assert crashed.faultCode == -32603 and "secret detail" not in crashed.faultString
        assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)
        assert (await fault("missing")).faultCode == 404
        assert (await fault("teapot")).faultCode == 418
        assert (await fault("guarded")).faultCode == 403
        assert (await fault("unsendable")).faultCode == -32603
        assert (await fault("system.multicall", "x")).faultCode == -32602
        app.debug = True
        assert "ZeroDivisionError: secret detail" in (await fault("crash")).faultString


async def test_a_digest_challenge_reaches_rpc_callers() -> None:
    """Regression: a refused call was a Fault without the challenge, so a Digest client never got a nonce."""
    app = make_app()
    app.realm = "rpc"
    app.users = {"hans": "secret"}
    xml_call = xmlrpc.client.dumps((), "guarded").encode()
    json_call = b'{"jsonrpc": "2.0", "method": "guarded", "id": 1}'
    async with serving(mount=("/rpc", app)) as served:
        url = f"{served.url}/rpc"
        async with httpx.AsyncClient() as client:
            bare = await client.post(url, content=xml_call, headers={"content-type": "text/xml"})
            assert bare.status_code == 401
            assert bare.headers["www-authenticate"].startswith('Digest realm="rpc"')
            auth = httpx.DigestAuth("hans", "secret")
            answered = await client.post(url, content=xml_call, headers={"content-type": "text/xml"},
                                         auth=auth)
            assert xmlrpc.client.loads(answered.content)[0] == ("in",)
            answered = await client.post(url, content=json_call,
                                         headers={"content-type": "application/json-rpc"}, auth=auth)
            assert answered.json() == {"jsonrpc": "2.0", "result": "in", "id": 1}
            wrong = httpx.DigestAuth("hans", "wrong")
            refused = await client.post(url, content=xml_call, headers={"content-type": "text/xml"},
                                        auth=wrong)
            assert refused.status_code == 401


async def test_multicall_gives_one_answer_per_call() -> None:
    async with serving(mount=("/", make_app())) as served:
        def run() -> list[Any]:
            with xmlrpc.client.ServerProxy(served.url) as proxy:
                multi = xmlrpc.client.MultiCall(proxy)
                multi.add(1, 2)
                multi.nothing()
                multi.crash()
                multi.hello.x()
                multi.unsendable()
                results = []
                for index in range(5):
                    try:
                        results.append(multi().results[index])
                    except xmlrpc.client.Fault as fault:
                        results.append(fault.faultCode)
                return results

        raw = await anyio.to_thread.run_sync(run)
    assert raw == [[3], {"faultCode": -32601, "faultString": "no method 'nothing'"},
                   {"faultCode": -32603, "faultString": "crash failed"}, ["Hello, x"],
                   raw[4]]
    assert raw[4]["faultCode"] == -32603


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<methodCall><methodName>hello.x</methodName><params><param><value>&lol3;</value></param></params></methodCall>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>add</methodName><params><param><value>&e;</value></param></params></methodCall>
"""
DEEP = (b"<methodCall><methodName>struct</methodName><params><param>"
        + b"<value><array><data>" * 200 + b"</data></array></value>" * 200
        + b"</param></params></methodCall>")
NOT_XML = b"<methodCall><methodName>add</methodName"
NOT_A_CALL = xmlrpc.client.dumps((1,), methodresponse=True).encode()
UNDECLARED = b"<methodCall><methodName>&x;</methodName></methodCall>"


async def test_hostile_xml_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with client_for(("/", make_app())) as client:
        with caplog.at_level(logging.WARNING, "skitai.app"):
            for body, code, words in [
                (BILLION_LAUGHS, -32700, "DTD"), (EXTERNAL, -32700, "DTD"),
                (DEEP, -32700, "nested deeper"), (NOT_XML, -32700, "well-formed"),
                (NOT_A_CALL, -32600, "not an XML-RPC call"), (UNDECLARED, -32700, "well-formed"),
            ]:
                response = await client.post("/", content=body, headers={"content-type": "text/xml"})
                assert response.status_code == 200
                with pytest.raises(xmlrpc.client.Fault) as info:
                    xmlrpc.client.loads(response.content)
                assert info.value.faultCode == code
                assert words in info.value.faultString
    assert sum("XML-RPC fault" in r.getMessage() for r in caplog.records) == 6


async def jsonrpc(
    client: httpx.AsyncClient, payload: Any, content_type: str = "application/json-rpc"
) -> Any:
    body = payload if isinstance(payload, bytes) else httpx.Request("POST", "/", json=payload).content
    response = await client.post("/", content=body, headers={"content-type": content_type})
    if response.status_code == 204:
        return None
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_jsonrpc_calls() -> None:
    async with client_for(("/", make_app())) as client:
        assert await jsonrpc(client, {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}) \
            == {"jsonrpc": "2.0", "result": 3, "id": 1}
        assert await jsonrpc(client, {"jsonrpc": "2.0", "method": "math.mul", "params": {"a": 4},
                                      "id": "x"}) == {"jsonrpc": "2.0", "result": 8, "id": "x"}
        # a JSON-RPC body posted as plain JSON is a call too
        assert (await jsonrpc(client, {"jsonrpc": "2.0", "method": "hello.y", "id": 2},
                              "application/json"))["result"] == "Hello, y"
        assert await jsonrpc(client, {"jsonrpc": "2.0", "method": "add", "params": [1, 2]}) is None


async def test_jsonrpc_errors(caplog: pytest.LogCaptureFixture) -> None:
    async with client_for(("/", make_app())) as client:
        def error(answer: Any) -> tuple[int, Any]:
            return answer["error"]["code"], answer["id"]

        with caplog.at_level(logging.WARNING, "skitai.app"):
            assert error(await jsonrpc(client, b'{"jsonrpc": "2.0", "method"')) == (-32700, None)
            assert error(await jsonrpc(client, {"jsonrpc": "1.0", "method": "add", "id": 1})) == (-32600, 1)
            assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": 1, "id": 1})) == (-32600, 1)
            assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": "add", "params": 1,
                                                "id": 1})) == (-32600, 1)
            assert error(await jsonrpc(client, [])) == (-32600, None)
        assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": "none", "id": 3})) == (-32601, 3)
        assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": "add", "params": [1],
                                            "id": 4})) == (-32602, 4)
        answer = await jsonrpc(client, {"jsonrpc": "2.0", "method": "crash", "id": 5})
        assert error(answer) == (-32603, 5) and "secret" not in answer["error"]["message"]
        assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": "teapot", "id": 6})) == (418, 6)
        assert error(await jsonrpc(client, {"jsonrpc": "2.0", "method": "unsendable",
                                            "id": 7})) == (-32603, 7)
    assert any("JSON-RPC error -32700" in r.getMessage() for r in caplog.records)


async def test_jsonrpc_batches() -> None:
    async with client_for(("/", make_app())) as client:
        answers = await jsonrpc(client, [
            {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
            {"jsonrpc": "2.0", "method": "add", "params": [5, 5]},  # a notification: no answer
            {"jsonrpc": "2.0", "method": "nothing", "id": 2},
            1,
            {"jsonrpc": "2.0", "method": "aio.add", "params": [2, 2], "id": 3},
        ])
        assert answers == [
            {"jsonrpc": "2.0", "result": 3, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "no method 'nothing'"}, "id": 2},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "result": 4, "id": 3},
        ]
        assert await jsonrpc(client, [{"jsonrpc": "2.0", "method": "add", "params": [1, 1]}]) is None


async def test_plain_json_is_not_rpc() -> None:
    app = make_app()

    @app.route("/plain", methods=["POST"])
    def plain(was, a):
        return {"a": a}

    async with client_for(("/", app)) as client:
        assert (await client.post("/plain", json={"a": 1})).json() == {"a": 1}
