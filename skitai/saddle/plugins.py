"""Where modules written apart plug into Saddle.

* `BODY_PARSERS[media_type] = parser`: `parser(stream, content_type, config)`
  reads a request body of that type from the file-like `stream` within the
  app's limits (`config.max_multipart_body_size`, `max_upload_file_size`...)
  and returns the handler's arguments, files included. Multipart forms
  register `"multipart/form-data"` here.
* `AUTHENTICATORS[scheme] = factory`: `factory(app)` gives the object that
  checks requests to routes with `authenticate=True` (or every route when
  `app.authenticate` is set) for `app.authorization == scheme` ("basic",
  "digest"...). Its `authenticate(was)` returns None to admit the request
  (after setting `was.request.user`) or an `HTTPError` to refuse it (401
  with a `WWW-Authenticate` header). With no authenticator for the app's
  scheme, those routes are refused with 403.
* Per-request objects such as `was.session` and `was.mbox` register with
  `skitai.context.register_service(name, factory)`; `factory(was)` may call
  `was.on_commit(func)` to write its cookie when the request succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from skitai.saddle.errors import HTTPError

BodyParser = Callable[[BinaryIO, str, Any], dict[str, Any]]


class Authenticator(Protocol):
    def authenticate(self, was: Any) -> HTTPError | None:
        """None admits the request; an HTTPError is the refusal."""


BODY_PARSERS: dict[str, BodyParser] = {}
AUTHENTICATORS: dict[str, Callable[[Any], Authenticator]] = {}
