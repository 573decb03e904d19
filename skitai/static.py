"""Static files: conditional GET, byte ranges and gzip, with the disk kept off the event loop.

Theory: `serve` answers a request from a directory in hops to worker threads
under a limiter of this module's own, so a slow disk never takes the WSGI
pool's threads and a flood of file requests never takes them all.

1. One hop (`_prepare`) does everything that needs the file system before
   the first byte goes out: it maps the path to a file inside the root,
   opens and fstat()s it, picks the representation, evaluates the
   conditional and range headers and reads the first chunk. A file that
   fits in one chunk is read whole and closed in that same hop.
2. Each further chunk is one more hop (`FileBody.read_chunk`), which gzips
   it there when needed, so zlib never runs on the loop either.

Representations: the file as it is (identity); its precompressed `name.gz`
sibling; or gzip on the fly. A client that accepts gzip gets the sibling
when there is one, else on-the-fly gzip when the type is compressible and
the file is at least `min_size` bytes. Ranges are offered on the identity
representation only, so a GET with a Range header always gets identity.
The gzip representations have ETags of their own (the on-the-fly one weak,
since its bytes depend on the zlib build), no Accept-Ranges, and the
on-the-fly one no Content-Length.

Preconditions follow RFC 9110 13.2.2: If-Match, else If-Unmodified-Since
(412); If-None-Match, else If-Modified-Since (304); then Range with
If-Range (206, 416).

Paths: a path with an empty, ".", ".." or hidden segment (a name starting
with "." other than ".well-known"), a NUL or a backslash is not looked up.
What is found is realpath()ed and must lie inside the root unless
`follow_symlinks` is set. Directories answer with index.html, then
index.htm; asked for without their trailing slash, with a 301 to it.
There are no listings. What is not found, or is not a regular file,
belongs to the next mount.
"""

from __future__ import annotations

import calendar
import logging
import mimetypes
import os
import re
import secrets
import stat
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_tz
from itertools import pairwise
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from skitai.compress import GzipStream, accepts_gzip, with_vary
from skitai.config import Compression
from skitai.errorpages import HTML, error_page
from skitai.log import safe
from skitai.protocols.events import Exchange, Request

log = logging.getLogger(__name__)

CHUNK_SIZE = 262144  # file bytes read per hop; a file up to this size costs one hop
FILE_THREADS = 16  # file system hops running at once, per event loop
MAX_RANGES = 32  # a Range header asking for more parts than this is ignored
INDEX_FILES = ("index.html", "index.htm")
VISIBLE_DOT_NAMES = frozenset({".well-known"})  # RFC 8615: ACME challenges and the like
OCTET_STREAM = "application/octet-stream"
ARCHIVE_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
}
ALLOW = (b"Allow", b"GET, HEAD")
PATH_SAFE = "/!$&'()*+,;=:@"  # RFC 3986 pchar delimiters, kept as they are in a Location
_ETAG = re.compile(rb'(W/)?("[^"]*")')

if not mimetypes.inited:
    mimetypes.init()  # read the system type tables now, not in racing request threads

# A limiter belongs to the event loop that made it, and one process may run
# several loops over its life (tests run asyncio and trio in turn).
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("skitai.static.limiter")


def file_limiter() -> anyio.CapacityLimiter:
    """This event loop's limiter for file system hops."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(FILE_THREADS)
        _limiter.set(limiter)
        return limiter


async def serve(
    exchange: Exchange,
    root: str,
    path_info: str,
    *,
    script_name: str,
    max_age: int,
    follow_symlinks: bool,
    compression: Compression,
) -> bool:
    """Answer from the directory `root`; False when it holds nothing for `path_info`."""
    target = _target(path_info)
    if target is None:
        return False
    site = Site(root, script_name, max_age, follow_symlinks, compression)
    try:
        answer = await anyio.to_thread.run_sync(
            _prepare, exchange.request, site, target, limiter=file_limiter()
        )
    except OSError as exc:  # the file failed us between open and first read
        log.warning("%s", safe(str(exc)))
        answer = _error(500)
    if answer is None:
        return False
    await _send(exchange, answer)
    return True


async def _send(exchange: Exchange, answer: Answer) -> None:
    body = answer.body
    try:
        await exchange.start_response(answer.status, answer.headers)
        if answer.first:
            await exchange.send_body(answer.first)
        while body is not None and not body.finished:
            try:
                chunk = await anyio.to_thread.run_sync(body.read_chunk, limiter=file_limiter())
            except OSError as exc:
                log.warning("%s; response cut short", safe(str(exc)))
                return  # left unfinished, so the driver closes the connection
            await exchange.send_body(chunk)
        await exchange.end_response()
    finally:
        if body is not None:
            # A read-only descriptor closes without blocking, and cleanup
            # must not await: this also runs on cancellation.
            body.file.close()


# ------------------------------------------------------------------ the request


@dataclass(frozen=True, slots=True)
class Site:
    """A static mount and the options that shape its answers."""

    root: str  # absolute, symlinks resolved
    script_name: str
    max_age: int
    follow_symlinks: bool
    compression: Compression

    def allows(self, real_path: str) -> bool:
        if self.follow_symlinks or real_path == self.root:
            return True
        return real_path.startswith(self.root.rstrip(os.sep) + os.sep)

    def gzips(self, content_type: str, size: int) -> bool:
        """Whether gzip on the fly applies to a file of this type and size."""
        compression = self.compression
        return (
            compression.enabled
            and size >= compression.min_size
            and compression.compressible(content_type)
        )


@dataclass(frozen=True, slots=True)
class Target:
    """What a path asks for below the root."""

    path_info: str
    names: tuple[str, ...]  # file system names, one per segment
    directory: bool  # the path ends with "/"


def _target(path_info: str) -> Target | None:
    """The names a path asks for, or None when it must not reach the disk."""
    if path_info and not path_info.startswith("/"):
        return None
    try:
        # path_info holds the request's bytes as latin-1; the disk's names
        # are those bytes decoded the way the file system decodes them.
        decoded = os.fsdecode(path_info.encode("latin-1"))
    except UnicodeEncodeError:
        return None
    segments = decoded.split("/")[1:]
    directory = bool(segments) and segments[-1] == ""
    names = segments[:-1] if directory else segments
    if not all(_visible(name) for name in names):
        return None
    return Target(path_info, tuple(names), directory)


def _visible(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name:
        return False
    return not name.startswith(".") or name in VISIBLE_DOT_NAMES


@dataclass(slots=True)
class Answer:
    """A response decided in the first hop, with as much of its body as was read there."""

    status: int
    headers: list[tuple[bytes, bytes]]
    first: bytes = b""
    body: FileBody | None = None  # the rest of the body, still to be read


class NeedsSlash:
    """A directory asked for without its trailing slash."""


NEEDS_SLASH = NeedsSlash()


def _prepare(request: Request, site: Site, target: Target) -> Answer | None:
    """Find, open and answer in one hop. Blocking: runs in a worker thread."""
    found = _find(site, target)
    if found is None:
        return None
    if request.method not in ("GET", "HEAD"):
        if isinstance(found, OpenFile):
            found.close()
        return _error(405, headers=[ALLOW])
    if isinstance(found, NeedsSlash):
        return _redirect_to_slash(request, site, target)
    return _answer_file(request, site, found)


def _redirect_to_slash(request: Request, site: Site, target: Target) -> Answer:
    raw_path = (site.script_name + target.path_info + "/").encode("latin-1")
    location = quote(raw_path, safe=PATH_SAFE).encode("ascii")
    if request.query:
        location += b"?" + request.query
    return _error(301, headers=[(b"Location", location)])


def _error(status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> Answer:
    status, page = error_page(status)
    return Answer(status, [HTML, *headers, _content_length(len(page))], page)


def _content_length(length: int) -> tuple[bytes, bytes]:
    return b"Content-Length", b"%d" % length


# ------------------------------------------------------------------ the file system


class OpenFile:
    """A file or directory opened for reading, with its fstat() from that moment."""

    __slots__ = ("fd", "path", "stat")

    def __init__(self, fd: int, path: str, st: os.stat_result) -> None:
        self.fd = fd
        self.path = path  # as asked for, before symlinks are resolved
        self.stat = st

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.stat.st_mode)

    @property
    def size(self) -> int:
        return self.stat.st_size

    @property
    def modified(self) -> int:
        """Last modification, in whole seconds as HTTP dates have them."""
        return int(self.stat.st_mtime)

    def read(self, offset: int, size: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        while len(data) < size:
            more = os.pread(self.fd, size - len(data), offset + len(data))
            if not more:
                raise OSError(f"{self.path} shrank while being sent")
            data += more
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _find(site: Site, target: Target) -> OpenFile | NeedsSlash | None:
    opened = _open_inside(site, os.path.join(site.root, *target.names))
    if opened is None:
        return None
    if opened.is_dir:
        opened.close()
        if not target.directory:
            return NEEDS_SLASH
        return _open_index(site, opened.path)
    if target.directory:
        opened.close()
        return None
    return opened


def _open_index(site: Site, directory: str) -> OpenFile | None:
    for name in INDEX_FILES:
        opened = _open_inside(site, os.path.join(directory, name))
        if opened is None:
            continue
        if not opened.is_dir:
            return opened
        opened.close()
    return None


def _open_inside(site: Site, path: str) -> OpenFile | None:
    """`path` opened when it resolves inside the site and is a regular file or a directory."""
    real_path = os.path.realpath(path)
    if not site.allows(real_path):
        return None
    try:
        # O_NONBLOCK: opening a FIFO must not hang the thread waiting for a writer.
        fd = os.open(real_path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        os.close(fd)
        return None
    return OpenFile(fd, path, st)


def _open_sibling(site: Site, file: OpenFile) -> OpenFile | None:
    """The precompressed `name.gz` next to a file, when it is a regular file."""
    sibling = _open_inside(site, file.path + ".gz")
    if sibling is not None and sibling.is_dir:
        sibling.close()
        return None
    return sibling


def _content_type(path: str) -> str:
    content_type, encoding = mimetypes.guess_type(path)
    if encoding is not None:  # the file itself is an archive: "x.tar.gz" is gzip data
        return ARCHIVE_TYPES.get(encoding, OCTET_STREAM)
    if content_type is None:
        return OCTET_STREAM
    if content_type.startswith("text/"):
        return content_type + "; charset=utf-8"
    return content_type


# ------------------------------------------------------------------ representations


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a file: where its bytes come from and how they are labelled."""

    file: OpenFile
    content_type: str
    etag: bytes
    varies: bool  # another representation exists for another Accept-Encoding
    encoding: bytes | None = None  # Content-Encoding
    gzip_level: int | None = None  # gzip while reading, at this level

    @property
    def ranges_allowed(self) -> bool:
        return self.encoding is None

    @property
    def length_known(self) -> bool:
        return self.gzip_level is None

    def headers(self, max_age: int, content_type: bytes | None = None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"Content-Type", content_type or self.content_type.encode("latin-1")),
            (b"ETag", self.etag),
            (b"Last-Modified", _http_date(self.file.modified)),
            (b"Cache-Control", b"max-age=%d" % max_age),
        ]
        if self.encoding is None:
            headers.append((b"Accept-Ranges", b"bytes"))
        else:
            headers.append((b"Content-Encoding", self.encoding))
        return with_vary(headers) if self.varies else headers


def _strong_etag(st: os.stat_result, suffix: bytes = b"") -> bytes:
    return b'"%x-%x%s"' % (st.st_mtime_ns, st.st_size, suffix)


def _http_date(seconds: float) -> bytes:
    return formatdate(seconds, usegmt=True).encode("ascii")


def _answer_file(request: Request, site: Site, file: OpenFile) -> Answer:
    """The answer for a found file; closes every descriptor it does not hand on."""
    sibling = None
    kept = None
    try:
        sibling = _open_sibling(site, file)
        variant = _choose(request, site, file, sibling)
        answer = _answer_variant(request, site, variant)
        kept = answer.body.file if answer.body is not None else None
        return answer
    finally:
        for opened in (file, sibling):
            if opened is not None and opened is not kept:
                opened.close()


def _choose(request: Request, site: Site, file: OpenFile, sibling: OpenFile | None) -> Variant:
    content_type = _content_type(file.path)
    compressible = site.gzips(content_type, file.size)
    identity = Variant(
        file, content_type, _strong_etag(file.stat), varies=sibling is not None or compressible
    )
    wants_range = request.method == "GET" and request.header(b"range") is not None
    if wants_range or not accepts_gzip(request.header(b"accept-encoding")):
        return identity
    if sibling is not None:
        return Variant(
            sibling,
            content_type,
            _strong_etag(sibling.stat, b"-gz"),
            varies=True,
            encoding=b"gzip",
        )
    if compressible:
        return Variant(
            file,
            content_type,
            b"W/" + _strong_etag(file.stat, b"-gzip"),
            varies=True,
            encoding=b"gzip",
            gzip_level=site.compression.level,
        )
    return identity


def _answer_variant(request: Request, site: Site, variant: Variant) -> Answer:
    refusal = _preconditions(request, site, variant)
    if refusal is not None:
        return refusal
    if variant.ranges_allowed and request.method == "GET":
        ranges = _ranges_to_send(request, variant)
        if ranges is not None:
            return _partial(site, variant, ranges) if ranges else _unsatisfiable(variant)
    return _whole(request, site, variant)


def _whole(request: Request, site: Site, variant: Variant) -> Answer:
    headers = variant.headers(site.max_age)
    if variant.length_known:
        headers.append(_content_length(variant.file.size))
    if request.method == "HEAD":
        return Answer(200, headers)
    body = FileBody(variant.file, [Span(0, variant.file.size)], variant.gzip_level)
    return _with_first_chunk(200, headers, body)


def _partial(site: Site, variant: Variant, ranges: list[tuple[int, int]]) -> Answer:
    size = variant.file.size
    if len(ranges) == 1:
        first, last = ranges[0]
        headers = variant.headers(site.max_age)
        headers.append((b"Content-Range", b"bytes %d-%d/%d" % (first, last, size)))
        headers.append(_content_length(last - first + 1))
        body = FileBody(variant.file, [Span(first, last - first + 1)])
        return _with_first_chunk(206, headers, body)
    boundary = secrets.token_hex(16).encode("ascii")
    parts: list[bytes | Span] = []
    for first, last in ranges:
        parts.append(
            b"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
            % (boundary, variant.content_type.encode("latin-1"), first, last, size)
        )
        parts.append(Span(first, last - first + 1))
    parts.append(b"\r\n--%s--\r\n" % boundary)
    headers = variant.headers(site.max_age, b"multipart/byteranges; boundary=" + boundary)
    length = sum(len(part) if isinstance(part, bytes) else part.length for part in parts)
    headers.append(_content_length(length))
    return _with_first_chunk(206, headers, FileBody(variant.file, parts))


def _unsatisfiable(variant: Variant) -> Answer:
    return _error(416, headers=[(b"Content-Range", b"bytes */%d" % variant.file.size)])


def _with_first_chunk(status: int, headers: list[tuple[bytes, bytes]], body: FileBody) -> Answer:
    first = body.read_chunk()
    return Answer(status, headers, first, None if body.finished else body)


# ------------------------------------------------------------------ the body


@dataclass(frozen=True, slots=True)
class Span:
    """`length` bytes of the file from `offset`."""

    offset: int
    length: int


class FileBody:
    """What remains to send of a response: literal bytes and spans of an open file.

    `read_chunk` blocks, so it runs in a worker thread. It reads at most
    CHUNK_SIZE bytes of the file, gzips them when asked, and closes the
    file once the last span is read.
    """

    __slots__ = ("_gzip", "_parts", "file")

    def __init__(
        self, file: OpenFile, parts: Iterable[bytes | Span], gzip_level: int | None = None
    ) -> None:
        self.file = file
        self._parts = deque(parts)
        self._gzip = GzipStream(gzip_level) if gzip_level is not None else None

    @property
    def finished(self) -> bool:
        return not self._parts

    def read_chunk(self) -> bytes:
        pieces = []
        budget = CHUNK_SIZE
        parts = self._parts
        while parts and budget > 0:
            part = parts.popleft()
            if isinstance(part, bytes):
                pieces.append(part)
                continue
            size = min(part.length, budget)
            pieces.append(self.file.read(part.offset, size))
            budget -= size
            if size < part.length:
                parts.appendleft(Span(part.offset + size, part.length - size))
        data = b"".join(pieces)
        if self._gzip is not None:
            data = self._gzip.compress(data)
            if not parts:
                data += self._gzip.finish()
        if not parts:
            self.file.close()
        return data


# ------------------------------------------------------------------ preconditions


def _preconditions(request: Request, site: Site, variant: Variant) -> Answer | None:
    """412 or 304 when a precondition says so (RFC 9110 13.2.2), else None."""
    modified = variant.file.modified
    if_match = _joined(request, b"if-match")
    if if_match is not None:
        if not _etag_matches(if_match, variant.etag, weak=False):
            return _error(412)
    elif (since := _date(request.header(b"if-unmodified-since"))) is not None and modified > since:
        return _error(412)
    if_none_match = _joined(request, b"if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, variant.etag, weak=True):
            return _not_modified(site, variant)
    elif (since := _date(request.header(b"if-modified-since"))) is not None and modified <= since:
        return _not_modified(site, variant)
    return None


def _not_modified(site: Site, variant: Variant) -> Answer:
    # RFC 9110 15.4.5: the validators and caching fields a 200 would carry.
    headers = [(b"ETag", variant.etag), (b"Cache-Control", b"max-age=%d" % site.max_age)]
    return Answer(304, with_vary(headers) if variant.varies else headers)


def _joined(request: Request, name: bytes) -> bytes | None:
    """Every value of a list header as one, or None when it is absent."""
    values = [value for key, value in request.headers if key == name]
    return b",".join(values) if values else None


def _etag_matches(field: bytes, etag: bytes, *, weak: bool) -> bool:
    """Whether a field's list of entity-tags (or "*") matches ours (RFC 9110 8.8.3.2)."""
    if field.strip() == b"*":
        return True
    our_weak = etag.startswith(b"W/")
    ours = etag[2:] if our_weak else etag
    for their_weak, theirs in _ETAG.findall(field):
        if theirs == ours and (weak or not (their_weak or our_weak)):
            return True
    return False


def _date(value: bytes | None) -> int | None:
    """An HTTP-date (any of the three formats) in seconds, or None when it is not one."""
    if value is None:
        return None
    try:
        parsed = parsedate_tz(value.decode("latin-1"))
        if parsed is None:
            return None
        return calendar.timegm(parsed[:6]) - (parsed[9] or 0)
    except (ValueError, OverflowError, IndexError):
        return None


# ------------------------------------------------------------------ ranges


def _ranges_to_send(request: Request, variant: Variant) -> list[tuple[int, int]] | None:
    """The byte ranges to answer with: None for the whole file, [] for 416."""
    header = request.header(b"range")
    if header is None or variant.file.size == 0:
        return None  # an empty file has no range to send; 200 is always an answer
    if_range = request.header(b"if-range")
    if if_range is not None and not _if_range_holds(request, variant, if_range):
        return None
    return _parse_ranges(header, variant.file.size)


def _if_range_holds(request: Request, variant: Variant, if_range: bytes) -> bool:
    """RFC 9110 13.1.5: a strong entity-tag match, or the exact modification date."""
    if if_range.lstrip().startswith((b'"', b"W/")):
        return _etag_matches(if_range, variant.etag, weak=False)
    file = variant.file
    # A date names one representation only when the client cannot have been
    # sent a gzip one with the same Last-Modified.
    if variant.varies and accepts_gzip(request.header(b"accept-encoding")):
        return False
    # A date is a strong validator only once its second is over (RFC 9110 8.8.2.2).
    return _date(if_range) == file.modified and file.modified < int(time.time())


def _parse_ranges(header: bytes, size: int) -> list[tuple[int, int]] | None:
    """Satisfiable (first, last) pairs, coalesced; None when the header is to be ignored."""
    unit, equals, specs = header.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes":
        return None
    items = [item.strip() for item in specs.split(b",") if item.strip()]
    if not items or len(items) > MAX_RANGES:
        return None
    ranges = []
    for item in items:
        try:
            spec = _range_spec(item, size)
        except ValueError:  # one invalid range-spec and the whole header is ignored
            return None
        if spec is not None:
            ranges.append(spec)
    return _coalesce(ranges)


def _range_spec(item: bytes, size: int) -> tuple[int, int] | None:
    """A range-spec as (first, last) within the file, None when unsatisfiable.

    Raises ValueError when it is not a valid byte-range-spec.
    """
    first_text, dash, last_text = (text.strip() for text in item.partition(b"-"))
    if not dash or not (first_text or last_text):
        raise ValueError(item)
    if not all(text.isdigit() for text in (first_text, last_text) if text):
        raise ValueError(item)
    if not first_text:
        suffix = int(last_text)
        return (max(size - suffix, 0), size - 1) if suffix else None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        raise ValueError(item)
    if first >= size:
        return None
    return first, min(last, size - 1)


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges as asked when they are apart; else all merged, in file order."""
    ordered = sorted(ranges)
    if all(later[0] > earlier[1] + 1 for earlier, later in pairwise(ordered)):
        return ranges
    merged = [ordered[0]]
    for first, last in ordered[1:]:
        merged_first, merged_last = merged[-1]
        if first <= merged_last + 1:
            merged[-1] = (merged_first, max(merged_last, last))
        else:
            merged.append((first, last))
    return merged
