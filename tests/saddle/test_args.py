"""Handler arguments from URL segments, the query, urlencoded forms and JSON bodies."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from skitai.saddle import Saddle
from tests.saddle.conftest import client_for


def make_app() -> Saddle:
    app = Saddle(__name__)

    @app.route("/hello")
    def hello_world(was, num=8):
        return num

    @app.route("/hello/<int:num>")
    def hello_num(was, num=8):
        return str(num)

    @app.route("/form")
    def form(was, **form):
        return "Post {} {}".format(form.get("userid", ""), form.get("comment", ""))

    @app.route("/mixed")
    def mixed(was, userid, **form):
        return "Post {} {}".format(userid, form.get("comment", ""))

    @app.route("/strict")
    def strict(was, a, b="B"):
        return f"{a} {b}"

    @app.route("/args/<name>")
    def args(was, name, **rest):
        return {"name": name, "rest": rest, "request_args": dict(was.request.args),
                "num": was.request.args.get("num", 0)}

    @app.route("/json")
    def json_body(was, **form):
        return {"form": form, "json": was.request.json}

    @app.route("/typed")
    def typed(was, **form):
        return {k: [type(v).__name__, v] for k, v in form.items()}

    @app.route("/was-named")
    def was_named(was, **form):
        return {"names": sorted(form)}

    return app


async def test_query_and_defaults() -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/hello")).text == "8"
        assert (await client.get("/hello?num=100")).text == "100"
        assert (await client.get("/hello/100")).text == "100"


async def test_forms_and_kwargs() -> None:
    async with client_for(("/", make_app())) as client:
        data = {"userid": "hansroh", "comment": "hi there"}
        assert (await client.post("/form", data=data)).text == "Post hansroh hi there"
        assert (await client.post("/mixed", data=data)).text == "Post hansroh hi there"
        assert (await client.get("/mixed", params=data)).text == "Post hansroh hi there"


async def test_extra_arguments_are_ignored_and_missing_ones_are_400(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/strict?a=1&b=2&utm_source=x")).text == "1 2"
        assert (await client.post("/strict", data={"a": "1", "zzz": "9"})).text == "1 B"
        with caplog.at_level(logging.WARNING, "skitai.app"):
            response = await client.get("/strict?b=2")
        assert response.status_code == 400
        assert "missing argument" in response.text
    assert any("missing argument 'a'" in r.getMessage() for r in caplog.records)


async def test_sources_merge_and_repeat() -> None:
    async with client_for(("/", make_app())) as client:
        response = await client.post("/args/seg?num=1&tag=a&tag=b&name=ignored", data={"num": "2", "x": "y"})
        body = response.json()
        assert body["name"] == "seg"  # URL segments win over query and form
        assert body["rest"] == {"num": "2", "tag": ["a", "b"], "x": "y"}  # the form over the query
        assert body["request_args"] == {"name": "seg", **body["rest"]}
        assert body["num"] == "2"


async def test_json_bodies() -> None:
    async with client_for(("/", make_app())) as client:
        response = await client.post("/json", json={"a": 1, "b": [1, 2]})
        assert response.json() == {"form": {"a": 1, "b": [1, 2]}, "json": {"a": 1, "b": [1, 2]}}
        response = await client.post("/json", json=[1, 2])
        assert response.json() == {"form": {}, "json": [1, 2]}
        response = await client.put("/json", content=b"", headers={"content-type": "application/json"})
        assert response.json() == {"form": {}, "json": None}


async def test_malformed_json_is_400(caplog: pytest.LogCaptureFixture) -> None:
    async with client_for(("/", make_app())) as client:
        with caplog.at_level(logging.WARNING, "skitai.app"):
            for body in [b"{", b"[" * 100_000, b"\xff\xfe"]:
                response = await client.post("/json", content=body,
                                             headers={"content-type": "application/json"})
                assert response.status_code == 400
                assert "malformed JSON" in response.text
    assert sum("malformed JSON" in r.getMessage() for r in caplog.records) == 3


async def test_typed_keys() -> None:
    async with client_for(("/", make_app())) as client:
        query = "int:c=3&float:f=1.5&bit:b=yes&list:l=a,b&json:j=%7B%22k%22%3A1%7D&plain=x"
        assert (await client.get(f"/typed?{query}")).json() == {
            "c": ["int", 3], "f": ["float", 1.5], "b": ["bool", True], "l": ["list", ["a", "b"]],
            "j": ["dict", {"k": 1}], "plain": ["str", "x"],
        }
        response = await client.get("/typed?int:c=three")
        assert response.status_code == 400 and "not a valid int" in response.text


async def test_argument_named_like_was_does_not_clash() -> None:
    async with client_for(("/", make_app())) as client:
        assert (await client.get("/was-named?was=1&x=2")).json() == {"names": ["x"]}


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_oversized_bodies_are_413_before_reading(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    app.config.max_post_body_size = 1000
    async with client_for(("/", app)) as client:
        assert (await client.post("/form", data={"userid": "x" * 900})).status_code == 200
        with caplog.at_level(logging.WARNING, "skitai.app"):
            response = await client.post("/form", data={"userid": "x" * 1000})
            assert response.status_code == 413
            # A chunked body has no Content-Length: refused once it passes the limit.
            response = await client.post("/form", content=chunks(b"userid=", b"x" * 2000),
                                         headers={"content-type": "application/x-www-form-urlencoded"})
            assert response.status_code == 413
            response = await client.post("/json", content=json.dumps(["x" * 2000]),
                                         headers={"content-type": "application/json"})
            assert response.status_code == 413
    assert sum("413" in r.getMessage() for r in caplog.records) == 3


async def test_too_many_fields_is_400() -> None:
    async with client_for(("/", make_app())) as client:
        form = "&".join(f"k{i}=1" for i in range(1001))
        response = await client.post("/typed", content=form,
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400 and "more than 1000 fields" in response.text
