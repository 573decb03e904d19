"""The `skitai` command: parsing, the INI file, errors, and a real server in a subprocess."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import skitai
from skitai import cli, runner
from skitai.config import Compression, Config, Limits
from skitai.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0

APP_MODULE = '''\
def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app at " + environ["PATH_INFO"].encode()]
'''


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Apps main() imports from tmp_path, and what it puts on sys.path, stay in their test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory with an app module `apps` and a static directory `public`."""
    (tmp_path / "apps.py").write_text(APP_MODULE)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "hello.txt").write_text("hello from disk\n")
    return tmp_path


def errors_of(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# ---------------------------------------------------------------- targets


def test_a_target_mounts_at_root_and_nothing_else_is_set() -> None:
    assert cli.parse_options(["apps:app"]) == {"mount": [("/", "apps:app")]}


def test_the_serve_word_is_optional() -> None:
    assert cli.parse_options(["serve", "apps:app", "--port", "8000"]) == \
        cli.parse_options(["apps:app", "--port", "8000"])


def test_targets_with_points_files_and_absolute_paths() -> None:
    options = cli.parse_options(["/api/=api:app", "site.py", "/srv/www/app.py", "/x=/srv/x.py"])
    assert options["mount"] == [
        ("/api", "api:app"), ("/", "site.py"), ("/", "/srv/www/app.py"), ("/x", "/srv/x.py"),
    ]


def test_mount_and_static_are_repeatable(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    options = cli.parse_options([
        "apps:app", "--mount", "/admin=admin:app", "--mount", "/blog=blog.py",
        "--static", f"/a={tmp_path / 'a'}", "--static", f"/={tmp_path / 'b'}",
    ])
    assert options["mount"] == [
        ("/", "apps:app"), ("/admin", "admin:app"), ("/blog", "blog.py"),
        ("/a", str(tmp_path / "a")), ("/", str(tmp_path / "b")),
    ]


def test_options_and_targets_may_be_intermixed() -> None:
    expected = {"mount": [("/", "a:app"), ("/b", "b:app")], "address": "127.0.0.1", "port": 18555}
    assert cli.parse_options(["--host", "127.0.0.1", "--port", "18555", "a:app", "/b=b:app"]) \
        == expected
    assert cli.parse_options(["a:app", "--host", "127.0.0.1", "/b=b:app", "--port", "18555"]) \
        == expected


# ---------------------------------------------------------------- options


def test_every_server_option(tmp_path: Path) -> None:
    cert, key, logs = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "logs"
    cert.write_text("")
    key.write_text("")
    logs.mkdir()
    options = cli.parse_options([
        "serve", "apps:app", "--address", "::1", "--port", "0", "--threads", "8",
        "--backend", "trio", "--grace", "2.5", "--reload-interval", "0.5", "--backlog", "64",
        "--server-name", "Edge",
        "--static-max-age", "60", "--follow-symlinks", "--no-compression",
        "--certfile", str(cert), "--keyfile", str(key), "--passphrase", "secret",
        "--log-dir", str(logs), "--log-level", "debug", "--no-access-log",
    ])
    assert options == {
        "mount": [("/", "apps:app")], "address": "::1", "port": 0, "threads": 8,
        "backend": "trio", "grace": 2.5, "reload_interval": 0.5, "backlog": 64,
        "server_name": "Edge",
        "static_max_age": 60, "follow_symlinks": True,
        "compression": Compression(enabled=False), "certfile": str(cert),
        "keyfile": str(key), "passphrase": "secret", "log_dir": str(logs),
        "log_level": "debug", "access_log": False,
    }
    config = Config.from_options(options)
    assert (config.address, config.threads, config.compression.enabled) == ("::1", 8, False)


def test_host_is_an_alias_of_address() -> None:
    assert cli.parse_options(["a:app", "--host", "0.0.0.0"])["address"] == "0.0.0.0"


@pytest.mark.parametrize("field", dataclasses.fields(Limits), ids=lambda f: f.name)
def test_every_limit_has_an_option(field: dataclasses.Field[Any]) -> None:
    flag = "--" + field.name.replace("_", "-")
    options = cli.parse_options(["a:app", flag, "7"])
    assert options[field.name] == 7
    assert getattr(Config.from_options(options).limits, field.name) == 7


def test_keep_alive_is_short_for_keep_alive_timeout() -> None:
    assert cli.parse_options(["a:app", "--keep-alive", "2.5"])["keep_alive_timeout"] == 2.5


@pytest.mark.parametrize(("text", "size"), [("512", 512), ("64k", 64 << 10), ("10M", 10 << 20),
                                            ("1G", 1 << 30), ("0", 0)])
def test_sizes_take_binary_suffixes(text: str, size: int) -> None:
    assert cli.parse_options(["a:app", "--max-body-size", text])["max_body_size"] == size


def test_every_config_field_is_reachable() -> None:
    """Each Config field has a flag and an INI key, or is built from mounts and limits."""
    reachable = {option.name for option in cli.SERVER_OPTIONS} | {"mount", "limits"}
    assert reachable == {field.name for field in dataclasses.fields(Config)}


# ---------------------------------------------------------------- help and version


def test_help_groups_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for title in ("what to serve:", "server:", "static files and compression:", "TLS:",
                  "logging:", "limits:", "examples:"):
        assert f"\n{title}\n" in text
    for action in cli.build_parser()._actions:
        for flag in action.option_strings:
            assert flag in text
    for default in ("(default: 127.0.0.1)", "(default: 5000)", "(default: 4)",
                    "(default: asyncio)", "(default: 30)", "(default: 300)",
                    "(default: 1073741824 = 1G)", "(default: 10)", "(default: info)"):
        assert default in " ".join(text.split())


def test_help_after_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: skitai [serve] [TARGET ...] [options]")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"skitai {skitai.__version__} ")


def test_the_reference_documents_every_option() -> None:
    text = DOCS.read_text()
    for action in cli.build_parser()._actions:
        for flag in action.option_strings:
            assert f"`{flag}" in text, flag
    for field in dataclasses.fields(Config):
        if field.name not in ("mount", "limits"):
            assert f"`{field.name}`" in text, field.name


# ---------------------------------------------------------------- config file


def write_ini(directory: Path, text: str, name: str = "skitai.ini") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_config_file(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (site / "logs").mkdir()
    ini = write_ini(site, """\
# comments and blank lines are fine

[server]
address = 0.0.0.0
port = 8080
threads = 16
backend = trio
grace = 5
access_log = no
compression = off
follow_symlinks = yes
log_dir = logs
log_level = warning
static_max_age = 0

[limits]
max_body_size = 10M
keep_alive_timeout = 2.5
max_headers = 50

[mount]
/ = apps:wsgi_app
/Blog = blog/app.py
/files = public

[static]
/ = public
""")
    monkeypatch.chdir(tmp_path.parent)
    assert cli.parse_options(["--config", str(ini)]) == {
        "address": "0.0.0.0", "port": 8080, "threads": 16, "backend": "trio", "grace": 5.0,
        "access_log": False, "compression": Compression(enabled=False),
        "follow_symlinks": True, "log_dir": str(site / "logs"), "log_level": "warning",
        "static_max_age": 0, "max_body_size": 10 << 20, "keep_alive_timeout": 2.5,
        "max_headers": 50,
        "mount": [("/", "apps:wsgi_app"), ("/Blog", str(site / "blog" / "app.py")),
                  ("/files", str(site / "public")), ("/", str(site / "public"))],
    }


def test_command_line_overrides_the_file(site: Path) -> None:
    ini = write_ini(site, """\
[server]
port = 8080
threads = 16
[limits]
keep_alive_timeout = 2.5
[mount]
/ = apps:wsgi_app
[static]
/ = public
/media = public
""")
    options = cli.parse_options(["--config", str(ini), "--port", "9000", "--keep-alive", "7",
                                 "/=other:app"])
    assert options == {
        "port": 9000, "threads": 16, "keep_alive_timeout": 7.0,
        "mount": [("/media", str(site / "public")), ("/", "other:app")],
    }


def test_a_file_may_hold_only_settings(site: Path) -> None:
    ini = write_ini(site, "[server]\nport = 8080\n")
    assert cli.parse_options(["--config", str(ini), "apps:wsgi_app"]) == {
        "port": 8080, "mount": [("/", "apps:wsgi_app")],
    }


@pytest.mark.parametrize(("text", "message"), [
    ("[server]\nprot = 1\n", "[server] unknown key 'prot'; did you mean 'port'?"),
    ("[limits]\nmax_body = 1\n", "[limits] unknown key 'max_body'; did you mean 'max_body_size'?"),
    ("[server]\nport = http\n", "[server] port = http: expected an integer, not 'http'"),
    ("[server]\nthreads = 0\n", "[server] threads = 0: must be at least 1, not 0"),
    ("[server]\nbackend = curio\n", "[server] backend = curio: must be one of asyncio, trio"),
    ("[server]\naccess_log = maybe\n", "[server] access_log = maybe: expected yes or no"),
    ("[server]\nlog_dir = nowhere\n", "[server] log_dir = nowhere: "),
    ("[limits]\nheader_timeout = -1\n", "[limits] header_timeout = -1: must be a finite number"),
    ("[limits]\nmax_body_size = lots\n", "[limits] max_body_size = lots: expected bytes"),
    ("[servers]\nport = 1\n", "unknown section [servers]"),
    ("[DEFAULT]\nport = 1\n", "unknown section [DEFAULT]"),
    ("port = 1\n", "File contains no section headers"),
    ("[mount]\n/ = a:app\n/ = b:app\n", "option '/' in section 'mount' already exists"),
    ("[mount]\napi = a:app\n", "[mount] api: a mount point must start with '/'"),
    ("[mount]\n/api =\n", "[mount] /api: no target given"),
    ("[static]\n/ = missing\n", "[static] /: "),
])
def test_config_file_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    ini = write_ini(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        cli.parse_options(["--config", str(ini), "a:app"])
    assert str(raised.value).startswith(f"{ini}: ")
    assert message in str(raised.value)


def test_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ini"
    with pytest.raises(ConfigError) as raised:
        cli.parse_options(["--config", str(missing), "a:app"])
    assert str(raised.value) == f"cannot read config file {missing}: No such file or directory"


# ---------------------------------------------------------------- errors from main()


@pytest.mark.parametrize(("argv", "message"), [
    (["a:app", "--port", "http"], "argument --port: expected an integer, not 'http'"),
    (["a:app", "--port", "70000"], "argument --port: must be in 0..65535, not 70000"),
    (["a:app", "--threads", "0"], "argument --threads: must be at least 1, not 0"),
    (["a:app", "--backend", "curio"], "argument --backend: must be one of asyncio, trio"),
    (["a:app", "--grace", "nan"], "argument --grace: must be a finite number >= 0"),
    (["a:app", "--reload-interval", "0"], "argument --reload-interval: must be more than 0"),
    (["a:app", "--log-level", "loud"], "argument --log-level: must be one of debug, info"),
    (["a:app", "--max-body-size", "-1"], "argument --max-body-size: expected bytes"),
    (["a:app", "--static", "public"], "argument --static: expected POINT=DIR"),
    (["a:app", "--static", "/=no-such-dir"], "argument --static: 'no-such-dir' is not a directory"),
    (["a:app", "--mount", "api=a:app"],
     "argument --mount: a mount point must start with '/', not 'api'"),
    (["a:app", "--certfile", "no-such.pem"], "argument --certfile: no such file"),
    (["a:app", "--prot", "1"], "unrecognized arguments: --prot"),
    ([], "nothing to serve"),
    (["no_such_module_here:app"], "cannot import no_such_module_here:app: No module named"),
    (["missing.py"], "no such file: 'missing.py'"),
    (["not-a-target"], "mount target 'not-a-target' is not a directory, a .py file or"),
])
def test_user_errors_exit_2_with_one_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = errors_of(capsys)
    assert "Traceback" not in err
    assert f"skitai: error: {message}" in err
    assert err.splitlines()[-1].startswith("skitai: error: ")


def test_a_missing_attribute_is_a_user_error(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(site)
    assert cli.main(["apps:nothing"]) == 2
    assert errors_of(capsys) == "skitai: error: apps has no attribute 'nothing'\n"


def test_a_config_file_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ini = write_ini(tmp_path, "[server]\nprot = 1\n")
    assert cli.main(["--config", str(ini), "a:app"]) == 2
    assert errors_of(capsys) == (
        f"skitai: error: {ini}: [server] unknown key 'prot'; did you mean 'port'?\n"
    )


def test_an_app_that_raises_on_import_shows_only_its_own_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_app.py").write_text("def setup():\n    return 1 / 0\n\nsetup()\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["broken_app:app"]) == 2
    err = errors_of(capsys)
    assert err.startswith("skitai: error: importing broken_app:app failed\nTraceback")
    assert "broken_app.py\", line 4" in err
    assert "broken_app.py\", line 2, in setup" in err
    assert err.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "skitai" + os.sep not in err
    assert "importlib" not in err


# ---------------------------------------------------------------- main() runs


def test_main_runs_the_parsed_options(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(runner, "run", lambda **options: runs.append(options))
    monkeypatch.chdir(site)
    sys.path[:] = [p for p in sys.path if p not in ("", str(site))]
    assert cli.main(["serve", "apps:wsgi_app", "--static", "/s=public", "--port", "0"]) == 0
    assert runs == [{"mount": [("/", "apps:wsgi_app"), ("/s", "public")], "port": 0}]
    assert sys.path[0] == str(site)


def test_config_file_modules_import_from_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "confdir_app.py").write_text(APP_MODULE)
    ini = write_ini(conf, "[mount]\n/ = confdir_app:wsgi_app\n")
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(runner, "run", lambda **options: runs.append(options))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--config", str(ini)]) == 0
    assert runs == [{"mount": [("/", "confdir_app:wsgi_app")]}]


# ---------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def started(command: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, killed by its pid if the test leaves it running."""
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)


def wait_until_answering(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"server exited with {process.returncode}: {err.decode()}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"server did not answer {url} within {STARTUP_TIMEOUT}s")


PYTHON_M = [sys.executable, "-m", "skitai"]
CONSOLE_SCRIPT = [str(Path(sys.executable).with_name("skitai")), "serve"]


@pytest.mark.parametrize(("command", "backend"), [(PYTHON_M, "asyncio"), (CONSOLE_SCRIPT, "trio")],
                         ids=["python-m-asyncio", "console-script-trio"])
def test_serves_until_sigterm(site: Path, command: list[str], backend: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [*command, "--host", "127.0.0.1", "--port", str(port), "--backend", backend,
            "apps:wsgi_app", "--static", "/static=public"]
    with started(argv, site) as process:
        wait_until_answering(process, url)
        app_response = httpx.get(f"{url}/hello", timeout=5.0)
        static_response = httpx.get(f"{url}/static/hello.txt", timeout=5.0)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=STOP_TIMEOUT)
    assert app_response.status_code == 200
    assert app_response.text == "app at /hello"
    assert static_response.status_code == 200
    assert static_response.text == "hello from disk\n"
    assert process.returncode == 0, err.decode()
    assert out == b""
    assert b"GET /hello HTTP/1.1" in err


def test_a_port_in_use_exits_1(site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*PYTHON_M, "--port", str(port), "apps:wsgi_app"], cwd=site,
                                capture_output=True, timeout=STOP_TIMEOUT)
    assert result.returncode == 1
    assert result.stdout == b""
    assert f"skitai: error: cannot listen on 127.0.0.1:{port}: ".encode() in result.stderr
