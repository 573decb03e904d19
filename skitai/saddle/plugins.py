"""Where modules written apart plug into Saddle.

* `BODY_PARSERS[media_type] = parser`: `parser(stream, content_type, config)`
  reads a request body of that type from `stream` (`read(size)`, a piece
  at a time as it arrives, 413 past the app's limit for the type) and
  returns the handler's arguments, files included, within the app's other
  limits (`config.max_upload_file_size`...). It runs in a worker thread.
  When what it returns has a `cleanup()` method (temp files to remove),
  the app calls it once the request is over, however it ended.
  Multipart forms register `"multipart/form-data"` here
  (skitai.saddle.form_parser).
* `AUTHENTICATORS[scheme] = factory`: `factory(app)` gives the object that
  checks requests to routes with `authenticate=True` (or every route when
  `app.authenticate` is set) for `app.authorization == scheme` ("basic",
  "digest"...). Its `authenticate(was)` returns None to admit the request
  (after setting `was.request.user`) or an `HTTPError` to refuse it (401
  with a `WWW-Authenticate` header). With no authenticator for the app's
  scheme, those routes are refused with 403. "digest" and "basic" are
  skitai.saddle.http_auth's.
* Per-request objects such as `was.session` and `was.mbox`
  (skitai.saddle.session_service) register with
  `skitai.context.register_service(name, factory)`; `factory(was)` may call
  `was.on_commit(func)` to write its cookie when the request succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from skitai.saddle.errors import HTTPError


class BodyStream(Protocol):
    """What a body parser reads: `read(size)` gives up to `size` bytes, b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


BodyParser = Callable[[BodyStream, str, Any], dict[str, Any]]


class Authenticator(Protocol):
    def authenticate(self, was: Any) -> HTTPError | None:
        """None admits the request; an HTTPError is the refusal."""


BODY_PARSERS: dict[str, BodyParser] = {}
AUTHENTICATORS: dict[str, Callable[[Any], Authenticator]] = {}
