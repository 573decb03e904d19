"""Request hooks in the seed's nesting order, Saddlery parts, app hooks and wasc."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from skitai.saddle import Saddle, Saddlery
from tests.saddle.conftest import client_for
from tests.support.servers import serving


def traced(name: str, calls: list[str], target: Saddle | Saddlery, fail_replaces: bool = False) -> None:
    @target.before_request
    def before(was):
        calls.append(f"{name}.before_request")
        if was.request.args.get("stop") == name:
            return f"stopped by {name}"
        return None

    @target.finish_request
    def finish(was):
        calls.append(f"{name}.finish_request")

    @target.failed_request
    def failed(was, exc_info):
        calls.append(f"{name}.failed_request {exc_info[0].__name__}")
        return f"replaced by {name}" if fail_replaces else None

    @target.teardown_request
    def teardown(was):
        calls.append(f"{name}.teardown_request")


def make_app(calls: list[str], *, part_replaces: bool = False, app_replaces: bool = False) -> Saddle:
    app = Saddle(__name__)
    part = Saddlery()
    sub = Saddlery()
    traced("app", calls, app, fail_replaces=app_replaces)
    traced("sub-app", calls, part, fail_replaces=part_replaces)

    @app.route("/")
    def index(was, num1, num2):
        return was.ab("hello", "Hans Roh")

    @part.route("/<name>")
    def hello(was, **form):
        calls.append("hello")
        if form.get("fail"):
            raise ValueError("failed on purpose")
        return was.ab("index", 1, 2)

    @sub.route("/deep")
    def deep(was):
        calls.append("deep")
        return "deep"

    part.mount("/sub", sub)
    app.mount("/admin", part)
    return app


async def test_nesting_order_on_success() -> None:
    calls: list[str] = []
    async with client_for(("/math", make_app(calls))) as client:
        assert (await client.get("/math/admin/Hans_Roh")).text == "/math/?num1=1&num2=2"
        assert (await client.get("/math/?num1=1&num2=2")).text == "/math/admin/Hans_Roh"
    assert calls == [
        "app.before_request", "sub-app.before_request", "hello", "sub-app.finish_request",
        "sub-app.teardown_request", "app.finish_request", "app.teardown_request",
        "app.before_request", "app.finish_request", "app.teardown_request",
    ]


async def test_before_request_short_circuits() -> None:
    calls: list[str] = []
    async with client_for(("/", make_app(calls))) as client:
        assert (await client.get("/admin/x?stop=sub-app")).text == "stopped by sub-app"
    # that level's finish_request is skipped; the levels around it finish normally
    assert calls == ["app.before_request", "sub-app.before_request", "sub-app.teardown_request",
                     "app.finish_request", "app.teardown_request"]
    calls.clear()
    async with client_for(("/", make_app(calls))) as client:
        assert (await client.get("/admin/x?stop=app")).text == "stopped by app"
    assert calls == ["app.before_request", "app.teardown_request"]


async def test_failures_go_outwards_until_replaced(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    async with client_for(("/", make_app(calls, part_replaces=True))) as client:
        with caplog.at_level(logging.ERROR, "skitai.app"):
            assert (await client.get("/admin/x?fail=1")).text == "replaced by sub-app"
    assert calls == ["app.before_request", "sub-app.before_request", "hello",
                     "sub-app.failed_request ValueError", "sub-app.teardown_request",
                     "app.finish_request", "app.teardown_request"]
    # logged once, even though a hook handled it
    assert sum("failed" in r.getMessage() and r.exc_info is not None for r in caplog.records) == 1
    calls.clear()
    async with client_for(("/", make_app(calls, app_replaces=True))) as client:
        assert (await client.get("/admin/x?fail=1")).text == "replaced by app"
    assert calls == ["app.before_request", "sub-app.before_request", "hello",
                     "sub-app.failed_request ValueError", "sub-app.teardown_request",
                     "app.failed_request ValueError", "app.teardown_request"]
    calls.clear()
    async with client_for(("/", make_app(calls))) as client:
        response = await client.get("/admin/x?fail=1")
    assert response.status_code == 500
    assert calls[-2:] == ["app.failed_request ValueError", "app.teardown_request"]


async def test_nested_parts() -> None:
    calls: list[str] = []
    async with client_for(("/", make_app(calls))) as client:
        assert (await client.get("/admin/sub/deep")).text == "deep"
    assert calls[:3] == ["app.before_request", "sub-app.before_request", "deep"]


def three_levels(calls: list[str], replaces: str | None = None) -> Saddle:
    """app -> part at /part -> sub at /part/sub, each with all four hooks; `replaces` names the
    level whose failed_request answers instead of letting the exception go on."""
    app, part, sub = Saddle(__name__), Saddlery(), Saddlery()
    for name, level in (("app", app), ("part", part), ("sub", sub)):
        traced(name, calls, level, fail_replaces=name == replaces)

    @sub.route("/deep")
    def deep(was, **form):
        calls.append("deep")
        if form.get("fail"):
            raise ValueError("failed on purpose")
        return "deep"

    @sub.route("/deep-async")
    async def deep_async(was, **form):
        calls.append("deep")
        if form.get("fail"):
            raise ValueError("failed on purpose")
        return "deep"

    part.mount("/sub", sub)
    app.mount("/part", part)
    return app


@pytest.mark.parametrize("path", ["/part/sub/deep", "/part/sub/deep-async"], ids=["sync", "async"])
async def test_hooks_of_nested_parts_in_full(path: str) -> None:
    """Each level's hooks wrap the next level's, down to the handler, for success, a
    short-circuit, a failure going all the way out and a failure one level replaces."""
    calls: list[str] = []
    async with client_for(("/", three_levels(calls))) as client:
        assert (await client.get(path)).text == "deep"
        assert calls == [
            "app.before_request", "part.before_request", "sub.before_request", "deep",
            "sub.finish_request", "sub.teardown_request",
            "part.finish_request", "part.teardown_request",
            "app.finish_request", "app.teardown_request",
        ]
        calls.clear()
        assert (await client.get(path, params={"stop": "part"})).text == "stopped by part"
        assert calls == ["app.before_request", "part.before_request", "part.teardown_request",
                         "app.finish_request", "app.teardown_request"]
        calls.clear()
        assert (await client.get(path, params={"fail": "1"})).status_code == 500
        assert calls == [
            "app.before_request", "part.before_request", "sub.before_request", "deep",
            "sub.failed_request ValueError", "sub.teardown_request",
            "part.failed_request ValueError", "part.teardown_request",
            "app.failed_request ValueError", "app.teardown_request",
        ]
    calls.clear()
    async with client_for(("/", three_levels(calls, replaces="part"))) as client:
        assert (await client.get(path, params={"fail": "1"})).text == "replaced by part"
    assert calls == [
        "app.before_request", "part.before_request", "sub.before_request", "deep",
        "sub.failed_request ValueError", "sub.teardown_request",
        "part.failed_request ValueError", "part.teardown_request",
        "app.finish_request", "app.teardown_request",
    ]


async def test_failed_request_returning_a_response() -> None:
    app = Saddle(__name__)

    @app.failed_request
    def failed_request(was, exc_info):
        return was.response("501 Server Error", "We're sorry but something's going wrong")

    @app.route("/")
    def index(was):
        raise KeyError("x")

    async with client_for(("/", app)) as client:
        response = await client.get("/")
    assert response.status_code == 501
    assert response.text == "We're sorry but something's going wrong"


async def test_g_is_per_request() -> None:
    app = Saddle(__name__)

    @app.before_request
    def before(was):
        assert not hasattr(was.g, "user_id")
        was.g.user_id = "jerry"

    @app.route("/view-account")
    def view_account(was):
        was.g.user_status = "active"
        return f"{was.g.user_id} {was.g.user_status}"

    async with client_for(("/", app)) as client:
        for _ in range(3):
            assert (await client.get("/view-account")).text == "jerry active"


class Engine:
    def __init__(self) -> None:
        self.resets = 0
        self.closed = False

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True


async def test_startup_register_shutdown_across_apps() -> None:
    events: list[str] = []
    engine = Engine()
    members = Saddle(__name__)
    other = Saddle(__name__)
    part = Saddlery()

    @members.startup
    def startup(wasc):
        events.append(f"startup {wasc.numthreads} {wasc.config.threads} {wasc.logger.get('app').name}")
        wasc.register("loginengine", engine)

    @part.startup
    def part_startup(wasc):
        wasc.register("searcher", "the searcher")

    @members.shutdown
    def shutdown(wasc):
        wasc.loginengine.close()
        wasc.unregister("loginengine")
        events.append("shutdown")

    @members.route("/")
    def index(was):
        return f"{type(was.loginengine).__name__} {was.searcher}"

    @other.route("/")
    def other_index(was):
        return f"{type(was.loginengine).__name__} {was.searcher}"

    members.mount("/part", part)
    async with client_for([("/members", members), ("/register", other)], threads=3) as client:
        assert (await client.get("/members/")).text == "Engine the searcher"
        assert (await client.get("/register/")).text == "Engine the searcher"
    assert events == ["startup 3 3 skitai.app", "shutdown"]
    assert engine.closed


async def test_registering_a_taken_name_is_refused() -> None:
    app = Saddle(__name__)
    errors: list[str] = []

    @app.startup
    def startup(wasc):
        for name in ["status", "_x", "not a name"]:
            try:
                wasc.register(name, 1)
            except ValueError as exc:
                errors.append(str(exc))

    async with serving(mount=("/", app)):
        pass
    assert len(errors) == 3


async def test_failing_app_hook_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    app = Saddle(__name__)

    @app.startup
    def startup(wasc: Any) -> None:
        raise RuntimeError("startup broke")

    @app.route("/")
    def index(was):
        return "still serving"

    with caplog.at_level(logging.ERROR, "skitai.app"):
        async with client_for(("/", app)) as client:
            assert (await client.get("/")).text == "still serving"
    assert any("startup hook" in r.getMessage() for r in caplog.records)


def test_mount_refuses_what_is_not_a_part() -> None:
    app = Saddle(__name__)
    with pytest.raises(TypeError):
        app.mount("/x", object(), "part")
    with pytest.raises(ValueError):
        app.mount("x", Saddlery())
