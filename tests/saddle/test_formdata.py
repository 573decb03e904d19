from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skitai.errors import ClientDisconnected
from skitai.saddle.formdata import Limits, MultipartError, MultipartTooLarge, TooManyParts, parse, read_form
from skitai.saddle.uploads import Form, Upload, safe_filename

B = "----skitaiBoundary7MA4YWxk"
CT = f"multipart/form-data; boundary={B}"


def part(headers: str, data: bytes, boundary: str = B) -> bytes:
    return f"--{boundary}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"


def field(name: str, value: str | bytes, extra: str = "") -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return part(f'Content-Disposition: form-data; name="{name}"{extra}', data)


def file(name: str, filename: str, data: bytes, mimetype: str = "text/plain") -> bytes:
    return part(
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {mimetype}',
        data,
    )


def body(*parts: bytes, boundary: str = B) -> bytes:
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def run(
    data: bytes,
    tmp_path: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    chunk_size: int = 65536,
    content_type: str = CT,
    length: bool = True,
) -> Form:
    return parse(
        io.BytesIO(data),
        content_type,
        limits,
        content_length=len(data) if length else None,
        tmpdir=str(tmp_path),
        chunk_size=chunk_size,
    )


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path))


SEED_FORM = body(
    field("submit-hidden", "Genious"),
    field("submit-name", "Hans Roh"),
    file("file", "report.txt", b"line 1\r\n--not a boundary\r\nline 3"),
)


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 65536])
def test_seed_form(tmp_path: Path, chunk_size: int) -> None:
    form = run(SEED_FORM, tmp_path, chunk_size=chunk_size)
    assert form["submit-hidden"] == "Genious" and form["submit-name"] == "Hans Roh"
    upload = form["file"]
    assert isinstance(upload, Upload) and form.uploads == [upload]
    assert (upload.name, upload.mimetype, upload.size, upload.field) == (
        "report.txt",
        "text/plain",
        32,
        "file",
    )
    assert upload.read() == b"line 1\r\n--not a boundary\r\nline 3"
    assert os.path.dirname(upload.path) == str(tmp_path) and os.stat(upload.path).st_mode & 0o777 == 0o600
    form.cleanup()
    assert leftovers(tmp_path) == []


def test_read_form_from_environ(tmp_path: Path) -> None:
    environ = {"wsgi.input": io.BytesIO(SEED_FORM), "CONTENT_TYPE": CT, "CONTENT_LENGTH": str(len(SEED_FORM))}
    form = read_form(environ, tmpdir=str(tmp_path))
    assert form["submit-name"] == "Hans Roh"
    form.cleanup()
    with pytest.raises(MultipartError):
        read_form({"wsgi.input": io.BytesIO(b""), "CONTENT_TYPE": CT, "CONTENT_LENGTH": "-1"})


def test_save_unique_and_overwrite(tmp_path: Path) -> None:
    into = tmp_path / "saved"
    spool = tmp_path / "spool"
    spool.mkdir()
    paths = []
    for _ in range(3):
        form = run(SEED_FORM, spool)
        paths.append(form["file"].save(str(into), mkdir=True))
        form.cleanup()
    assert [os.path.basename(p) for p in paths] == ["report.txt", "report-1.txt", "report-2.txt"]
    form = run(body(file("file", "report.txt", b"new")), spool)
    upload = form["file"]
    assert upload.save(str(into), dup="o") == str(into / "report.txt") and upload.saved
    form.cleanup()
    assert (into / "report.txt").read_bytes() == b"new" and leftovers(spool) == []
    form = run(SEED_FORM, spool)
    assert form["file"].save(str(into), name="../../escape.txt") == str(into / "escape.txt")
    with pytest.raises(ValueError):
        form["file"].save(str(into), dup="x")
    form.cleanup()


def test_remove_and_cleanup_leave_saved_files(tmp_path: Path) -> None:
    form = run(body(file("a", "a.txt", b"a"), file("b", "b.txt", b"b")), tmp_path / "..")
    saved = form["a"].save(str(tmp_path))
    form["b"].remove()
    form["b"].remove()  # twice is fine
    form.cleanup()
    assert leftovers(tmp_path) == ["a.txt"] and Path(saved).read_bytes() == b"a"


def test_charsets(tmp_path: Path) -> None:
    form = run(
        body(
            field("k", "한글".encode("euc-kr"), "\r\nContent-Type: text/plain; charset=euc-kr"),
            field("u", "ünïcödé"),
        ),
        tmp_path,
    )
    assert form["k"] == "한글" and form["u"] == "ünïcödé"


@pytest.mark.parametrize(
    "data",
    [
        field("bad", b"\xff\xfe"),
        field("bad", b"x", "\r\nContent-Type: text/plain; charset=no-such-charset"),
        field("bad", b"x", "\r\nContent-Type: text/plain; charset=rot13"),
    ],
)
def test_undecodable_text_is_a_bad_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    caplog.set_level(logging.INFO, "skitai.app.uploads")
    with pytest.raises(MultipartError) as info:
        run(body(file("f", "f.txt", b"spooled first"), data), tmp_path)
    assert info.value.status == 400 and "bad" in info.value.message
    assert leftovers(tmp_path) == [] and len(caplog.records) == 1


def test_repeated_names_become_lists(tmp_path: Path) -> None:
    form = run(
        body(
            field("tag", "a"),
            field("tag", "b"),
            field("tag", "c"),
            file("f", "1", b"1"),
            file("f", "2", b"2"),
        ),
        tmp_path,
    )
    assert form["tag"] == ["a", "b", "c"]
    assert [u.name for u in form["f"]] == ["1", "2"]
    form.cleanup()


def test_empty_file_input_is_none(tmp_path: Path) -> None:
    form = run(body(file("file", "", b"", "application/octet-stream"), file("empty", "e.txt", b"")), tmp_path)
    assert form["file"] is None and form["empty"].size == 0
    assert len(form.uploads) == 1
    form.cleanup()
    assert leftovers(tmp_path) == []


def test_nested_multipart_mixed(tmp_path: Path) -> None:
    inner = "AaB03x-inner"
    mixed = (
        part('Content-Disposition: file; filename="file1.txt"\r\nContent-Type: text/plain', b"one", inner)
        + part(
            'Content-Disposition: attachment; filename="../file2.gif"\r\nContent-Type: image/gif',
            b"GIF89a",
            inner,
        )
        + f"--{inner}--".encode()
    )
    data = body(
        field("submit-name", "Larry"),
        part(
            f'Content-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; '
            f"boundary={inner}",
            mixed,
        ),
    )
    for chunk_size in (1, 5, 65536):
        form = run(data, tmp_path, chunk_size=chunk_size)
        one, two = form["files"]
        assert (one.name, one.read(), one.mimetype) == ("file1.txt", b"one", "text/plain")
        assert (two.name, two.read(), two.mimetype, two.field) == (
            "file2.gif",
            b"GIF89a",
            "image/gif",
            "files",
        )
        assert form["submit-name"] == "Larry"
        form.cleanup()
    truncated = body(
        part(
            f'Content-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; '
            f"boundary={inner}",
            mixed[: -len(inner) - 4],
        )
    )
    with pytest.raises(MultipartError):
        run(truncated, tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("given_name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.txt", "a.txt"),
        ("a\r\nb\x00.txt", "a__b_.txt"),
        ("..", "noname"),
        ("", "noname"),
        (" .hidden ", "hidden"),
        ("CON.txt", "_CON.txt"),
        ('a<b>:"|?*.t', "a_b______.t"),
        ("é" * 200, "é" * 127),
        ("ok name.tar.gz", "ok name.tar.gz"),
    ],
)
def test_safe_filename(given_name: str, safe: str) -> None:
    assert safe_filename(given_name) == safe


ERROR_CASES: list[tuple[str, bytes, dict[str, Any], type[Exception], int]] = [
    ("preamble", b"This is a preamble.\r\n" + body(field("a", "1")), {}, MultipartError, 400),
    ("no boundary", body(field("a", "1")), {"content_type": "multipart/form-data"}, MultipartError, 400),
    (
        "bad boundary",
        body(field("a", "1")),
        {"content_type": "multipart/form-data; boundary=" + "x" * 71},
        MultipartError,
        400,
    ),
    ("not multipart", b"a=1", {"content_type": "application/x-www-form-urlencoded"}, MultipartError, 400),
    ("missing final boundary", field("a", "1") + file("f", "f", b"data"), {}, MultipartError, 400),
    ("garbage", b"\x00" * 100, {}, MultipartError, 400),
    (
        "bare LF",
        f"--{B}\nContent-Disposition: form-data; name=a\n\n1\n--{B}--".encode(),
        {},
        MultipartError,
        400,
    ),
    ("no disposition", part("Content-Type: text/plain", b"x") + f"--{B}--".encode(), {}, MultipartError, 400),
    ("huge part header", body(part("X-Long: " + "h" * 5000, b"x")), {}, TooManyParts, 413),
    (
        "many part headers",
        body(
            part(
                "\r\n".join(f"X-{i}: v" for i in range(9)) + '\r\nContent-Disposition: form-data; name="a"',
                b"x",
            )
        ),
        {},
        TooManyParts,
        413,
    ),
    (
        "too many parts",
        body(*[field(f"f{i}", "v") for i in range(6)]),
        {"limits": Limits(max_parts=5)},
        TooManyParts,
        413,
    ),
    (
        "oversize file",
        body(file("f", "big", b"x" * 101)),
        {"limits": Limits(max_file_size=100)},
        MultipartTooLarge,
        413,
    ),
    (
        "oversize field",
        body(field("f", "x" * 101)),
        {"limits": Limits(max_field_size=100)},
        MultipartTooLarge,
        413,
    ),
    (
        "oversize body",
        body(file("f", "a", b"x" * 500)),
        {"limits": Limits(max_body_size=300)},
        MultipartTooLarge,
        413,
    ),
    (
        "oversize body, no length",
        body(file("f", "a", b"x" * 500)),
        {"limits": Limits(max_body_size=300), "length": False},
        MultipartTooLarge,
        413,
    ),
]


@pytest.mark.parametrize(
    ("data", "options", "error", "status"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_are_precise_logged_and_leave_nothing(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    data: bytes,
    options: dict[str, Any],
    error: type[Exception],
    status: int,
) -> None:
    caplog.set_level(logging.INFO, "skitai.app.uploads")
    # A file is already spooled when the error strikes, wherever possible.
    prefix = file("early", "early.txt", b"spooled") if data.startswith(b"--" + B.encode()) else b""
    for chunk_size in (1, 64, 65536):
        with pytest.raises(error) as info:
            run(prefix + data, tmp_path, chunk_size=chunk_size, **options)
        assert info.value.status == status  # type: ignore[attr-defined]
        assert leftovers(tmp_path) == []
    assert [r.name for r in caplog.records] == ["skitai.app.uploads"] * 3


def test_truncated_body(tmp_path: Path) -> None:
    data = body(file("f", "f", b"x" * 1000))
    with pytest.raises(MultipartError, match="truncated"):
        parse(io.BytesIO(data[:600]), CT, content_length=len(data), tmpdir=str(tmp_path))
    assert leftovers(tmp_path) == []


def test_declared_length_over_limit_refused_before_reading(tmp_path: Path) -> None:
    class Unread(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("read")

    with pytest.raises(MultipartTooLarge):
        parse(Unread(), CT, Limits(max_body_size=10), content_length=11, tmpdir=str(tmp_path))  # type: ignore[arg-type]


def test_client_gone_mid_file(tmp_path: Path) -> None:
    class Disconnecting(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = False

        def read(self, size: int = -1) -> bytes:
            if self.sent:
                raise ClientDisconnected("peer reset")
            self.sent = True
            return part('Content-Disposition: form-data; name="f"; filename="x"', b"x" * 100)

    with pytest.raises(ClientDisconnected):
        parse(Disconnecting(), CT, content_length=10_000, tmpdir=str(tmp_path))  # type: ignore[arg-type]
    assert leftovers(tmp_path) == []


def outcome(data: bytes, tmp_path: Path, chunk_size: int) -> Any:
    try:
        form = run(data, tmp_path, chunk_size=chunk_size)
    except (MultipartError, MultipartTooLarge, TooManyParts) as exc:
        assert leftovers(tmp_path) == []
        return type(exc).__name__
    result = []
    for name, value in form.items():
        for item in value if isinstance(value, list) else [value]:
            result.append(
                (name, (item.name, item.mimetype, item.read()) if isinstance(item, Upload) else item)
            )
    form.cleanup()
    assert leftovers(tmp_path) == []
    return result


FRAGMENTS = [
    f"--{B}".encode(),
    f"--{B}--".encode(),
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"\r",
    b"\n",
    b'Content-Disposition: form-data; name="a"',
    b'Content-Disposition: form-data; name="f"; filename="x"',
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Type: multipart/mixed; boundary=in",
    b"--in",
    b"--in--",
    b"Content-Disposition: file",
    b"value",
    b"\xff",
]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=40), st.integers(1, 17))
def test_any_bytes_give_a_form_or_a_precise_error(
    tmp_path: Path, pieces: list[bytes], chunk_size: int
) -> None:
    data = b"".join(pieces)
    whole = outcome(data, tmp_path, len(data) or 1)
    assert outcome(data, tmp_path, chunk_size) == whole
    assert outcome(data, tmp_path, 1) == whole
