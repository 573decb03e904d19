"""`use_reloader`: a package's apps are reloaded when any of its files change."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import anyio
import httpx
import pytest

from skitai import reloader
from skitai.mounts import AppMount
from tests.support import apps
from tests.support.servers import Served, serving

INTERVAL = 0.05
WAIT = 10.0

VIEWS = '''\
import importlib
import os
import time
import uuid
from wsgiref.validate import validator

{import_helper}

BORN = uuid.uuid4().hex  # one value per execution of this module
RELEASE = os.path.join(os.path.dirname(__file__), "release")


def _slow():
    yield f"{{helper.VERSION}} started\\n".encode()
    deadline = time.monotonic() + 10
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"{{helper.VERSION}} finished\\n".encode()


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/slow":
        return _slow()
    if environ["PATH_INFO"] == "/born":
        return [BORN.encode()]
    if environ["PATH_INFO"] == "/late-import":
        return [importlib.import_module(helper.__name__).VERSION.encode()]
    return [helper.VERSION.encode()]


checked = validator(_app)


# Functions of this module, so the server can tell where an app object comes from.
def app(environ, start_response):
    return checked(environ, start_response)


def app2(environ, start_response):
    return checked(environ, start_response)


app.use_reloader = app2.use_reloader = True
'''


@dataclass
class Project:
    """A package (or a script directory) of user code in a temporary directory."""

    directory: Path
    import_prefix: str  # how views.py names modules of its own tree
    target: Any = None

    @property
    def views(self) -> Path:
        return self.directory / "views.py"

    def write(self, name: str, text: str) -> None:
        write(self.directory / name, text)

    def write_views(self, import_helper: str | None = None) -> None:
        line = import_helper or f"{self.import_prefix}helper as helper"
        write(self.views, VIEWS.format(import_helper=line))

    def write_helper(self, version: str) -> None:
        self.write("helper.py", f"VERSION = {version!r}\n")


class TrackedReloader(reloader.Reloader):
    running = False

    async def run(self) -> None:
        self.running = True
        try:
            await super().run()
        finally:
            self.running = False


@dataclass
class Reloaders:
    started: list[TrackedReloader] = field(default_factory=list)


def write(path: Path, text: str) -> None:
    """Write `text` and move the mtime a second past the previous one."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    bumped = max(previous + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(bumped, bumped))


@pytest.fixture(autouse=True)
def reloaders(monkeypatch: pytest.MonkeyPatch) -> Reloaders:
    """The server's reloaders, polling fast and remembering whether they run."""
    seen = Reloaders()

    def tracked(mounts: list[AppMount], interval: float) -> TrackedReloader:
        started = TrackedReloader(mounts, interval=interval)
        seen.started.append(started)
        return started

    monkeypatch.setattr(reloader, "Reloader", tracked)
    return seen


Serve = Callable[[Any], AbstractAsyncContextManager[Served]]


@pytest.fixture
def serve() -> Serve:
    """`serving(mount=...)` with the reloader polling fast."""

    @asynccontextmanager
    async def serve(mount: Any) -> AsyncIterator[Served]:
        async with serving(mount=mount, reload_interval=INTERVAL) as served:
            yield served

    return serve


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="skitai")
    return caplog


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`tmp_path` on sys.path; its modules leave sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    roots = (os.path.join(str(tmp_path), ""), os.path.join(os.path.realpath(tmp_path), ""))
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name != "__main__" and isinstance(file, str) and file.startswith(roots):
            del sys.modules[name]


def make_package(root: Path) -> tuple[Project, str]:
    name = f"reloadpkg_{uuid.uuid4().hex[:8]}"
    directory = root / name
    directory.mkdir()
    write(directory / "__init__.py", "")
    project = Project(directory, f"import {name}.")
    project.write_views()
    project.write_helper("v1")
    return project, name


def make_script_dir(root: Path) -> Project:
    directory = root / f"site_{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    project = Project(directory, "import ")
    project.write_views()
    project.write_helper("v1")
    return project


def run_as_main(project: Project, monkeypatch: pytest.MonkeyPatch) -> Any:
    """views.py as the running script (`python views.py`); its `app` object."""
    monkeypatch.syspath_prepend(str(project.directory))
    spec = importlib.util.spec_from_file_location("__main__", project.views)
    assert spec is not None and spec.loader is not None
    main = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "__main__", main)
    spec.loader.exec_module(main)
    return main.app


@pytest.fixture(
    params=["module-name", "package-file", "script-file", "app-object", "running-script"]
)
def project(
    request: pytest.FixtureRequest, importable: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """One project per way of mounting it."""
    if request.param == "script-file":
        project = make_script_dir(importable)
        project.target = (str(project.views), "app")
        return project
    if request.param == "running-script":
        project = make_script_dir(importable)
        project.target = run_as_main(project, monkeypatch)
        return project
    project, name = make_package(importable)
    if request.param == "module-name":
        project.target = f"{name}.views:app"
    elif request.param == "package-file":
        project.target = (str(project.views), "app")
    else:
        project.target = importlib.import_module(f"{name}.views").app
    return project


@pytest.fixture
def package(importable: Path) -> Project:
    project, name = make_package(importable)
    project.target = f"{name}.views:app"
    return project


async def wait_for_body(client: httpx.AsyncClient, expected: str, path: str = "/") -> None:
    with anyio.fail_after(WAIT):
        while True:
            if (await client.get(path)).text == expected:
                return
            await anyio.sleep(0.02)


async def wait_for_log(
    caplog: pytest.LogCaptureFixture, logger: str, text: str
) -> logging.LogRecord:
    with anyio.fail_after(WAIT):
        while True:
            for record in list(caplog.records):
                if record.name == logger and text in record.getMessage():
                    return record
            await anyio.sleep(0.02)


async def watching(caplog: pytest.LogCaptureFixture) -> None:
    """Return once the reloader has taken its first look at the files."""
    await wait_for_log(caplog, "skitai.server", "reloader watching")


def app_mount(served: Served, point: str = "/") -> AppMount:
    return next(m for m in served.server.mounts.apps() if m.point == point)


async def test_changing_a_helper_module_reloads_the_app(
    serve: Serve, project: Project, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", project.target)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/")).text == "v1"
            project.write_helper("v2")
            await wait_for_body(client, "v2")
        assert app_mount(srv).generation == 1
    reloaded = await wait_for_log(logs, "skitai.server", "reloaded")
    assert str(project.directory / "helper.py") in reloaded.getMessage()


async def test_the_running_script_stays_main(
    serve: Serve, importable: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    script = make_script_dir(importable)
    app = run_as_main(script, monkeypatch)
    main = sys.modules["__main__"]
    async with serve(("/", app)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            for version in ("v2", "v3"):
                script.write_helper(version)
                await wait_for_body(client, version)
        assert app_mount(srv).app.__module__ != "__main__"
    assert sys.modules["__main__"] is main


async def test_a_burst_of_saves_reloads_once(
    serve: Serve, package: Project, reloaders: Reloaders, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", package.target)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            for version in range(2, 12):
                package.write_helper(f"v{version}")
                await anyio.sleep(reloader.QUIET_PERIOD / 8)
            await wait_for_body(client, "v11")
        assert app_mount(srv).generation == 1


async def test_a_syntax_error_keeps_the_old_app(
    serve: Serve, package: Project, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", package.target)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            package.write("helper.py", "VERSION = (\n")
            failure = await wait_for_log(logs, "skitai.app", "reloading")
            assert failure.levelno == logging.ERROR
            assert failure.exc_info is not None and failure.exc_info[0] is SyntaxError
            assert (await client.get("/")).text == "v1"
            assert (await client.get("/late-import")).text == "v1"
            assert app_mount(srv).generation == 0
            package.write_helper("v3")
            await wait_for_body(client, "v3")
        assert app_mount(srv).generation == 1


async def test_fixing_a_module_that_never_imported_reloads(
    serve: Serve, package: Project, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", package.target)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            package.write("extra.py", "VERSION = (\n")
            package.write_views(import_helper=f"{package.import_prefix}extra as helper")
            await wait_for_log(logs, "skitai.app", "reloading")
            assert (await client.get("/")).text == "v1"
            package.write("extra.py", "VERSION = 'extra'\n")
            await wait_for_body(client, "extra")


async def test_a_request_in_flight_finishes_on_the_old_app(
    serve: Serve, package: Project, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", package.target)) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url, timeout=WAIT) as slow_client, \
                httpx.AsyncClient(base_url=srv.url) as client:
            identity = {"Accept-Encoding": "identity"}  # so each line arrives as it is written
            async with slow_client.stream("GET", "/slow", headers=identity) as slow:
                lines = slow.aiter_lines()
                assert await anext(lines) == "v1 started"
                package.write_helper("v2")
                await wait_for_body(client, "v2")
                (package.directory / "release").touch()
                assert [line async for line in lines] == ["v1 finished"]


async def test_apps_of_one_module_share_its_reloaded_copy(
    serve: Serve, importable: Path, logs: pytest.LogCaptureFixture
) -> None:
    package, _ = make_package(importable)
    views = str(package.views)
    async with serve([("/", (views, "app")), ("/two", (views, "app2"))]) as srv:
        await watching(logs)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            born = (await client.get("/born")).text
            assert (await client.get("/two/born")).text == born
            package.write_helper("v2")
            await wait_for_body(client, "v2")
            await wait_for_body(client, "v2", "/two/")
            reborn = (await client.get("/born")).text
            assert reborn != born
            assert (await client.get("/two/born")).text == reborn
        assert [m.generation for m in srv.server.mounts.apps()] == [1, 1]


async def test_the_reloader_stops_with_the_server(
    serve: Serve, package: Project, reloaders: Reloaders, logs: pytest.LogCaptureFixture
) -> None:
    async with serve(("/", package.target)):
        await watching(logs)
        (watcher,) = reloaders.started
        assert watcher.running
    assert not watcher.running


async def test_an_app_without_source_is_reported_once(
    reloaders: Reloaders, logs: pytest.LogCaptureFixture
) -> None:
    anonymous = validator(apps.hello)
    anonymous.use_reloader = True  # type: ignore[attr-defined]
    async with serving(mount=("/", anonymous)) as srv:
        await wait_for_log(logs, "skitai.server", "not reloadable")
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/")).text == "Hello World"
    notes = [r for r in logs.records if "not reloadable" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.WARNING
    assert not reloaders.started[0].running
