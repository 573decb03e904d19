"""The `skitai` command: a command line and an INI file to `skitai.run()` options.

    skitai [serve] [TARGET ...] [--config FILE] [options]

`parse_options(argv)` returns the keyword arguments of `skitai.run()` and
starts nothing. `main()` checks them, imports the apps, then runs. Only the
options a user gave appear in the dict: the command line overrides the file,
and `skitai.Config` supplies every other default, so the two cannot disagree.

Exit status: 0 after a graceful stop, 1 when the address cannot be bound,
2 for a user error (a bad value, an unknown key, a target that does not
import), reported in one line on stderr.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import difflib
import errno
import importlib
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import skitai
from skitai import runner
from skitai.config import BACKENDS, HTTP_PARSERS, Compression, Config, Limits, mount_list
from skitai.errors import ConfigError
from skitai.loader import resolve
from skitai.mounts import normalize_point

USAGE_ERROR = 2
LISTEN_FAILED = 1
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})
DEFAULTS = Config()
SIZE_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

DESCRIPTION = """\
Serve WSGI apps and static directories.

Each TARGET is mounted at / unless written POINT=TARGET. A target is
module:attr (imported from the working directory), a .py file (its `app`
attribute) or a directory (served as static files)."""

EPILOG = """\
examples:
  skitai myapp:app --port 8000 --threads 8
  skitai serve /=myapp:app --static /media=./public --backend trio
  skitai --config skitai.ini --port 8080

SIGINT or SIGTERM stops the server gracefully; a second one stops it at once.
Logs go to stderr unless --log-dir is given. Sizes are in bytes (a K, M or G
suffix multiplies by 1024, 1024**2, 1024**3); times are in seconds."""


# ---------------------------------------------------------------- values


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None


def _count(minimum: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = _integer(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return convert


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, not {value}")
    return value


def _size(text: str) -> int:
    """Bytes, optionally with a binary K, M or G suffix: 64K, 10M, 1G."""
    number, scale = text, 1
    if text[-1:].upper() in SIZE_SUFFIXES:
        number, scale = text[:-1], SIZE_SUFFIXES[text[-1].upper()]
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected bytes such as 65536 or 64K, not {text!r}")
    return int(number) * scale


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value


def _interval(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return convert


def _yes_no(text: str) -> bool:
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected yes or no, not {text!r}") from None


def _origins(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _compression(text: str) -> Compression:
    return Compression(enabled=_yes_no(text))


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return text


def _file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _point(text: str) -> str:
    try:
        return normalize_point(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _target_mount(text: str) -> tuple[str, str]:
    """A positional TARGET: mounted at / unless written /POINT=TARGET."""
    if text.startswith("/") and "=" in text:
        return _mount(text)
    return "/", text


def _mount(text: str, form: str = "POINT=TARGET such as /api=myapp:app") -> tuple[str, str]:
    point, equals, target = text.partition("=")
    if not equals or not target:
        raise argparse.ArgumentTypeError(f"expected {form}, not {text!r}")
    return _point(point), target


def _static_mount(text: str) -> tuple[str, str]:
    point, target = _mount(text, "POINT=DIR such as /static=./public")
    return point, _directory(target)


# ---------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """One `skitai.run()` option as a command-line flag and an INI key."""

    name: str  # the run() keyword and the INI key
    flags: tuple[str, ...]
    convert: Callable[[str], Any]  # an INI value, or the flag's argument
    help: str
    group: str
    metavar: str | None = None
    const: Any = None  # a switch: the flag takes no argument and stores this
    is_path: bool = False  # in the INI file, relative to the file's directory

    @property
    def is_switch(self) -> bool:
        return self.const is not None


SERVER, STATIC, TLS, LOGGING = "server", "static files and compression", "TLS", "logging"
WEBSOCKET = "WebSocket"
LIMITS = "limits"

SERVER_OPTIONS = (
    Option("address", ("--host", "--address"), str, "interface to listen on", SERVER, "HOST"),
    Option("port", ("--port",), _port, "TCP port; 0 picks a free one", SERVER, "PORT"),
    Option("threads", ("--threads",), _count(1), "worker threads running the apps", SERVER, "N"),
    Option("backend", ("--backend",), _one_of(BACKENDS), "event loop", SERVER,
           "{" + ",".join(BACKENDS) + "}"),
    Option("http_parser", ("--http-parser",), _one_of(HTTP_PARSERS),
           "HTTP/1.1 parser: httptools is faster, auto uses it when installed", SERVER,
           "{" + ",".join(HTTP_PARSERS) + "}"),
    Option("grace", ("--grace",), _seconds,
           "seconds in-flight requests get to finish after SIGINT or SIGTERM", SERVER, "SECONDS"),
    Option("reload_interval", ("--reload-interval",), _interval,
           "how often apps that set use_reloader are checked for changed files", SERVER,
           "SECONDS"),
    Option("backlog", ("--backlog",), _count(1), "length of the listen queue", SERVER, "N"),
    Option("server_name", ("--server-name",), str, "value of the Server response header",
           SERVER, "NAME"),
    Option("static_max_age", ("--static-max-age",), _count(0),
           "Cache-Control max-age of static files, in seconds", STATIC, "SECONDS"),
    Option("follow_symlinks", ("--follow-symlinks",), _yes_no,
           "serve symlinks that lead out of a static directory", STATIC, const=True),
    Option("compression", ("--no-compression",), _compression,
           "do not gzip responses on the fly (by default text, JSON and similar types are "
           "gzipped for clients that accept it)", STATIC, const=Compression(enabled=False)),
    Option("certfile", ("--certfile",), _file, "TLS certificate chain (PEM)", TLS, "FILE",
           is_path=True),
    Option("keyfile", ("--keyfile",), _file, "TLS private key (PEM)", TLS, "FILE", is_path=True),
    Option("passphrase", ("--passphrase",), str, "passphrase of the private key", TLS, "TEXT"),
    Option("tls_port", ("--tls-port",), _port,
           "serve HTTPS on this port and plain HTTP on --port (default: --port is HTTPS)", TLS,
           "PORT"),
    Option("log_dir", ("--log-dir",), _directory,
           "write server.log, app.log and request.log in DIR instead of stderr", LOGGING, "DIR",
           is_path=True),
    Option("log_level", ("--log-level",), _one_of(LOG_LEVELS), "lowest level logged", LOGGING,
           "{" + ",".join(LOG_LEVELS) + "}"),
    Option("access_log", ("--no-access-log",), _yes_no,
           "do not log a line per request (logged by default)", LOGGING, const=False),
    Option("websocket_origins", ("--websocket-origins",), _origins,
           "origins besides the server's own whose pages may open WebSockets, comma-separated "
           "(https://example.com,https://example.com:8443); * for any", WEBSOCKET, "ORIGINS"),
    Option("websocket_compression", ("--no-websocket-compression",), _yes_no,
           "do not accept permessage-deflate (accepted by default when offered)", WEBSOCKET,
           const=False),
    Option("websocket_threads", ("--websocket-threads",), _count(1),
           "threads for the DEDICATE and MULTICAST designs, one per connection or room",
           WEBSOCKET, "N"),
)

LIMIT_ALIASES = {"keep_alive_timeout": ("--keep-alive",)}
UNIT_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "BYTES": _size, "N": _count(0), "SECONDS": _seconds,
}


def _limit_option(field: dataclasses.Field[Any]) -> Option:
    unit, text = field.metadata["unit"], field.metadata["help"]
    flags = ("--" + field.name.replace("_", "-"), *LIMIT_ALIASES.get(field.name, ()))
    return Option(field.name, flags, UNIT_CONVERTERS[unit], text, LIMITS, unit)


LIMIT_OPTIONS = tuple(_limit_option(field) for field in dataclasses.fields(Limits))
INI_KEYS = {
    "server": {option.name: option for option in SERVER_OPTIONS},
    "limits": {option.name: option for option in LIMIT_OPTIONS},
}


def _default_text(option: Option) -> str:
    if option.is_switch:
        return ""
    holder = DEFAULTS.limits if option.group == LIMITS else DEFAULTS
    value = getattr(holder, option.name)
    if value is None or value == ():
        return ""
    if isinstance(value, float):
        return f" (default: {value:g})"
    if option.metavar == "BYTES":
        return f" (default: {_size_text(value)})"
    return f" (default: {value})"


def _size_text(size: int) -> str:
    for suffix, scale in reversed(SIZE_SUFFIXES.items()):
        if size >= scale and size % scale == 0:
            return f"{size} = {size // scale}{suffix}"
    return str(size)


# ---------------------------------------------------------------- parsing


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skitai", usage="%(prog)s [serve] [TARGET ...] [options]",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version",
                        version=f"skitai {skitai.__version__} (Python {sys.version.split()[0]})")
    what = parser.add_argument_group("what to serve")
    what.add_argument("targets", nargs="*", type=_target_mount, metavar="TARGET",
                      help="module:attr, a .py file or a directory, mounted at / "
                           "or at POINT when written POINT=TARGET")
    what.add_argument("--mount", action="append", type=_mount, metavar="POINT=TARGET",
                      help="mount a target at POINT (repeatable)")
    what.add_argument("--static", action="append", type=_static_mount, metavar="POINT=DIR",
                      help="serve the files of DIR at POINT (repeatable)")
    what.add_argument("--config", metavar="FILE",
                      help="read options and mounts from an INI file; "
                           "the command line overrides it")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in (*SERVER_OPTIONS, *LIMIT_OPTIONS):
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        _add(groups[option.group], option)
    return parser


def _add(group: argparse._ArgumentGroup, option: Option) -> None:
    text = option.help + _default_text(option)
    if option.is_switch:
        group.add_argument(*option.flags, dest=option.name, action="store_const",
                           const=option.const, help=text)
    else:
        group.add_argument(*option.flags, dest=option.name, type=option.convert,
                           metavar=option.metavar, help=text)


def command_line(argv: Sequence[str] | None) -> list[str]:
    """The arguments without the optional leading `serve`."""
    args = list(sys.argv[1:] if argv is None else argv)
    return args[1:] if args[:1] == ["serve"] else args


def parse_options(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The `skitai.run()` keyword arguments for a command line.

    Raises SystemExit(2) for a malformed command line (argparse reports it) and
    ConfigError for a bad config file or nothing to serve.
    """
    args = build_parser().parse_intermixed_args(command_line(argv))
    return options_from(args)


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    """Merge parsed arguments over their config file. Raises ConfigError."""
    given = dict(vars(args))
    config_path = given.pop("config", None)
    from_file = read_config_file(config_path) if config_path else {}
    mounts = [*given.pop("targets", []), *given.pop("mount", []), *given.pop("static", [])]
    options = {**from_file, **given}
    options["mount"] = _merged_mounts(from_file.get("mount", []), mounts)
    if not options["mount"]:
        raise ConfigError("nothing to serve: give a TARGET, --mount, --static or a config "
                          "file with a [mount] section (see skitai --help)")
    return options


def _merged_mounts(
    from_file: list[tuple[str, str]], from_command_line: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A point mounted on the command line replaces what the file mounts there."""
    points = {point for point, _ in from_command_line}
    return [m for m in from_file if m[0] not in points] + from_command_line


# ---------------------------------------------------------------- config file


def read_config_file(path: str) -> dict[str, Any]:
    """Options from an INI file: [server], [limits], [mount] and [static]."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # mount points keep case
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None
    if parser.defaults():
        raise ConfigError(f"{path}: unknown section [{parser.default_section}]")
    base = os.path.dirname(os.path.abspath(path))
    options: dict[str, Any] = {}
    mounts: list[tuple[str, str]] = []
    for name in parser.sections():
        section = parser[name]
        if name in INI_KEYS:
            options.update(_section_options(path, name, section.items(), base))
        elif name in ("mount", "static"):
            mounts.extend(_section_mounts(path, name, section.items(), base))
        else:
            raise ConfigError(f"{path}: unknown section [{name}]; expected [server], "
                              "[limits], [mount] or [static]")
    if mounts:
        options["mount"] = mounts
    return options


def _section_options(
    path: str, section: str, items: Iterable[tuple[str, str]], base: str
) -> dict[str, Any]:
    known = INI_KEYS[section]
    options = {}
    for key, text in items:
        option = known.get(key.lower())
        if option is None:
            raise ConfigError(f"{path}: [{section}] unknown key {key!r}{_did_you_mean(key, known)}")
        value = os.path.join(base, text) if option.is_path and text else text
        try:
            options[option.name] = option.convert(value)
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{path}: [{section}] {key} = {text}: {exc}") from None
    return options


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key.lower(), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _section_mounts(
    path: str, section: str, items: Iterable[tuple[str, str]], base: str
) -> list[tuple[str, str]]:
    mounts = []
    for point, target in items:
        try:
            if not target:
                raise argparse.ArgumentTypeError("no target given")
            if section == "static" or not _is_named(target):
                target = os.path.normpath(os.path.join(base, target))
            mounts.append((_point(point), _directory(target) if section == "static" else target))
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{path}: [{section}] {point}: {exc}") from None
    return mounts


def _is_named(target: str) -> bool:
    """module:attr or @cluster, as opposed to a path."""
    return target.startswith("@") or (
        ":" in target and "/" not in target and not target.endswith(".py")
    )


# ---------------------------------------------------------------- running


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `skitai` command; returns its exit status."""
    try:
        args = build_parser().parse_intermixed_args(command_line(argv))
    except SystemExit as stop:  # --help, --version, or a malformed command line, reported
        return int(stop.code or 0)
    try:
        options = options_from(args)
        _extend_import_path(vars(args).get("config"))
        config = Config.from_options(options)
    except ConfigError as exc:
        return _fail(str(exc))
    for _, target in mount_list(config.mount):
        try:
            resolve(target)
        except ConfigError as exc:
            return _fail(str(exc))
        except Exception as exc:
            return _fail(f"importing {target} failed\n{_app_traceback(exc)}")
    return _run(options, config)


def _run(options: dict[str, Any], config: Config) -> int:
    try:
        runner.run(**options)
    except ConfigError as exc:
        return _fail(str(exc))
    except Exception as exc:
        error = _listen_error(exc)
        if error is None:
            raise
        host = f"[{config.address}]" if ":" in config.address else config.address
        return _fail(f"cannot listen on {host}:{config.port}: {error.strerror}", LISTEN_FAILED)
    return 0


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    sys.stderr.write(f"skitai: error: {message}\n")
    return status


def _extend_import_path(config_path: str | None) -> None:
    """Targets import from the working directory, as under `python -m`, even when run
    as a console script; targets named in a config file also import from its directory."""
    directories = [os.getcwd()]
    if config_path:
        directories.append(os.path.dirname(os.path.abspath(config_path)))
    for directory in reversed(directories):
        if directory not in sys.path:
            sys.path.insert(0, directory)


def _app_traceback(exc: BaseException) -> str:
    """The traceback of the app's own code, without Skitai's and importlib's frames."""
    machinery = tuple(os.path.dirname(module.__file__ or "") + os.sep
                      for module in (skitai, importlib))
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith((*machinery, "<frozen importlib"))
    ]
    listed = "".join(traceback.format_list(frames))
    header = "Traceback (most recent call last):\n" if listed else ""
    return header + listed + "".join(traceback.format_exception_only(type(exc), exc)).rstrip()


def _listen_error(exc: BaseException) -> OSError | None:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.errno in LISTEN_ERRNOS:
        return exc
    return None
