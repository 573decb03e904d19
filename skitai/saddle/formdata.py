"""Streaming `multipart/form-data` parsing: text fields to `str`, files spooled to disk.

`read_form(environ)` reads `wsgi.input` in pieces of `chunk_size` and never
holds a file in memory. Boundary scanning is `multipart`'s
`PushMultipartParser` (the parser under Bottle: sans-IO, incremental, with
part-header limits; see docs/reference/uploads.md for why not our own).
This module adds what a server needs on top: the body, file, field and
part-count limits, temp files, charsets, and one level of nested
`multipart/mixed` (several files under one field, RFC 2388).

If parsing fails for any reason (malformed input, a limit, a client that
went away) every temp file made so far is removed before the error
propagates. Errors carry their status: `MultipartError` (400, malformed),
`MultipartTooLarge` (413, the body, a file or a field over its limit),
`TooManyParts` (413, too many parts, or part headers too large); each is
logged once on `skitai.app.uploads`, unless the caller logs the answer
itself (`log_refusal=False`, as Saddle does, with the request's ids).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import multipart

from skitai.errors import BadRequest, BodyTooLarge
from skitai.saddle.uploads import Form, Upload

log = logging.getLogger("skitai.app.uploads")

# RFC 2046 §5.1.1: 1 to 70 bchars, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class MultipartError(BadRequest):
    """The body is not well-formed multipart."""


class MultipartTooLarge(BodyTooLarge):
    """The body, one file or one text field is over its limit."""


class TooManyParts(BodyTooLarge):
    """Too many parts, or a part's headers are too large."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one multipart body. Sizes in bytes.

    `max_body_size` is the seed's `max_multipart_body_size`, `max_file_size`
    its `max_upload_file_size`; text fields are held in memory, hence
    `max_field_size`. `max_header_size` bounds one part header line,
    `max_header_count` the lines per part.
    """

    max_body_size: int = 20 * 1024 * 1024
    max_file_size: int = 20_000_000
    max_field_size: int = 1024 * 1024
    max_parts: int = 1000
    max_header_size: int = 4096
    max_header_count: int = 8


class _MixedParser(multipart.PushMultipartParser):  # type: ignore[misc]
    """The parts of a nested multipart/mixed: files, with any disposition (RFC 2388)."""

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> multipart.MultipartSegment:
        return multipart.MultipartSegment(headerlist)


class _Text:
    def __init__(self, name: str, charset: str, limit: int) -> None:
        self.name, self.charset, self.limit = name, charset, limit
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise MultipartTooLarge(f"field {self.name[:80]!r} over {self.limit} bytes")
        self.data += chunk

    def value(self) -> str:
        try:
            return self.data.decode(self.charset)
        except (LookupError, UnicodeDecodeError) as exc:
            reason = f"field {self.name[:80]!r} is not {self.charset[:40]!r} text: {exc}"
            raise MultipartError(reason) from None


class _File:
    def __init__(self, upload: Upload, limit: int, unnamed: bool) -> None:
        self.upload, self.limit, self.unnamed = upload, limit, unnamed
        self.file = open(upload.path, "wb")  # noqa: SIM115 - closed by finish() or close()

    def write(self, chunk: bytes) -> None:
        self.upload.size += len(chunk)
        if self.upload.size > self.limit:
            raise MultipartTooLarge(f"file {self.upload.name[:80]!r} over {self.limit} bytes")
        self.file.write(chunk)

    def close(self) -> None:
        self.file.close()


class FormBuilder:
    """Turns multipart bytes, fed in any pieces, into a `Form`."""

    def __init__(self, boundary: str, limits: Limits, tmpdir: str | None = None) -> None:
        self.limits, self.tmpdir = limits, tmpdir
        self.form = Form()
        self._parser = self._new_parser(multipart.PushMultipartParser, boundary)
        # Bytes seen before the first delimiter, until they prove there is no preamble.
        self._openings = (f"--{boundary}".encode(), f"\r\n--{boundary}".encode())
        self._head: bytes | None = b""
        self._nested: _MixedParser | None = None
        self._nested_name = ""
        self._sink: _Text | _File | None = None
        self._parts = 0

    def _new_parser(self, kind: type[multipart.PushMultipartParser], boundary: str) -> Any:
        return kind(boundary, max_header_size=self.limits.max_header_size,
                    max_header_count=self.limits.max_header_count)

    def feed(self, chunk: bytes) -> None:
        if self._head is not None:
            chunk = self._head + chunk
            if not any(o.startswith(chunk[:len(o)]) for o in self._openings):
                # The parser skips a preamble differently depending on how it is cut
                # into chunks; browsers send none, so refuse it.
                raise MultipartError("the body does not start with the boundary")
            if len(chunk) < len(self._openings[1]):
                self._head = chunk
                return
            self._head = None
        self._run(self._parser, chunk, outer=True)

    def finish(self) -> Form:
        if self._head:
            self._run(self._parser, self._head, outer=True)
        self._close(self._parser)
        return self.form

    def abort(self) -> None:
        if isinstance(self._sink, _File):
            self._sink.close()
        self.form.cleanup()
        self._parser.close(check_complete=False)

    def _run(self, parser: Any, chunk: bytes, outer: bool) -> None:
        try:
            for event in parser.parse(chunk):
                self._on_event(event, outer)
        except multipart.ParserLimitReached as exc:
            raise TooManyParts(f"part headers too large: {exc}") from None
        except multipart.MultipartError as exc:
            raise MultipartError(f"malformed multipart: {exc}") from None

    def _close(self, parser: Any) -> None:
        try:
            parser.close()
        except multipart.MultipartError as exc:
            raise MultipartError(f"malformed multipart: {exc}") from None

    def _on_event(self, event: Any, outer: bool) -> None:
        if outer and self._nested is not None:
            if event is None:
                self._close(self._nested)
                self._nested = None
            elif event:
                self._run(self._nested, event, outer=False)
        elif isinstance(event, multipart.MultipartSegment):
            self._start(event, outer)
        elif event is None:
            self._end()
        elif event:
            assert self._sink is not None
            self._sink.write(event)

    def _start(self, segment: multipart.MultipartSegment, outer: bool) -> None:
        self._parts += 1
        if self._parts > self.limits.max_parts:
            raise TooManyParts(f"more than {self.limits.max_parts} parts")
        name = segment.name if outer else self._nested_name
        if outer and segment.content_type == "multipart/mixed":
            self._nested_name = name or ""
            self._nested = self._new_parser(_MixedParser, boundary_of(segment.header("Content-Type", "")))
        elif segment.filename is not None or not outer:
            fd, path = tempfile.mkstemp(prefix="skitai-upload-", dir=self.tmpdir)
            os.close(fd)
            upload = Upload(path, segment.filename or "", segment.content_type or "application/octet-stream",
                            name or "")
            self.form.uploads.append(upload)  # owned by the form from now on, for cleanup
            self._sink = _File(upload, self.limits.max_file_size, unnamed=not segment.filename)
        else:
            self._sink = _Text(name or "", segment.charset or "utf-8", self.limits.max_field_size)

    def _end(self) -> None:
        sink, self._sink = self._sink, None
        if isinstance(sink, _Text):
            self.form.add(sink.name, sink.value())
        elif isinstance(sink, _File):
            sink.close()
            upload = sink.upload
            if sink.unnamed and upload.size == 0:
                # A file input left empty: browsers send filename="" and no content.
                upload.remove()
                self.form.uploads.remove(upload)
                self.form.add(upload.field, None)
            else:
                self.form.add(upload.field, upload)


def boundary_of(content_type: str) -> str:
    """The boundary of a multipart Content-Type, checked against RFC 2046."""
    kind, options = multipart.parse_options_header(content_type)
    if not kind.startswith("multipart/"):
        raise MultipartError(f"not a multipart body: {kind[:80]!r}")
    boundary = options.get("boundary", "")
    if not _BOUNDARY.fullmatch(boundary):
        raise MultipartError(f"missing or invalid multipart boundary: {boundary[:80]!r}")
    return str(boundary)


DEFAULT_LIMITS = Limits()


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def read_form(environ: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS, *, tmpdir: str | None = None,
              chunk_size: int = 65536) -> Form:
    """Parse the multipart/form-data body of a WSGI request."""
    length = environ.get("CONTENT_LENGTH") or None
    if length is not None and not str(length).isdigit():
        raise MultipartError(f"invalid Content-Length {str(length)[:40]!r}")
    return parse(environ["wsgi.input"], environ.get("CONTENT_TYPE", ""), limits,
                 content_length=None if length is None else int(length), tmpdir=tmpdir, chunk_size=chunk_size)


def parse(stream: Readable, content_type: str, limits: Limits = DEFAULT_LIMITS, *,
          content_length: int | None = None, tmpdir: str | None = None, chunk_size: int = 65536,
          log_refusal: bool = True) -> Form:
    """Parse a multipart body read from `stream`; see `read_form()`."""
    try:
        if content_length is not None and content_length > limits.max_body_size:
            raise MultipartTooLarge(f"multipart body of {content_length} bytes, over {limits.max_body_size}")
        builder = FormBuilder(boundary_of(content_type), limits, tmpdir)
        try:
            received = 0
            while content_length is None or received < content_length:
                want = chunk_size if content_length is None else min(chunk_size, content_length - received)
                chunk = stream.read(want)
                if not chunk:
                    if content_length is not None:
                        raise MultipartError(f"body truncated at {received} of {content_length} bytes")
                    break
                received += len(chunk)
                if received > limits.max_body_size:
                    raise MultipartTooLarge(f"multipart body over {limits.max_body_size} bytes")
                builder.feed(chunk)
            return builder.finish()
        except BaseException:
            builder.abort()  # no temp file outlives a failed parse, whatever failed
            raise
    except (MultipartError, MultipartTooLarge, TooManyParts) as exc:
        if log_refusal:
            log.info("multipart body refused (%d): %s", exc.status, exc.message)
        raise
