"""`multipart/form-data` bodies as handler arguments, through skitai.saddle.formdata.

Registered as the body parser for `multipart/form-data`: text fields reach
the handler as `str`, files as `skitai.saddle.uploads.Upload` objects
spooled to temp files (in `app.config.upload_tmpdir`, the system's temp
directory by default). The body is parsed as it is read, never held whole.

Limits come from `app.config`: `max_multipart_body_size` for the whole
body and `max_upload_file_size` for each file; past them the answer is
413, and a malformed body is a 400. The app logs the answer once, with the
request's ids, so the parser's own log line is left out here.

Every file not saved by the handler is removed when the request ends,
however it ends: an error answer, a failed handler, a client gone
mid-response (the app calls the returned form's `cleanup()` through
`was.on_close`). A parse that fails removes its files itself.
"""

from __future__ import annotations

from typing import Any

from skitai.saddle import formdata, plugins
from skitai.saddle.errors import HTTPError
from skitai.saddle.uploads import Form

MEDIA_TYPE = "multipart/form-data"


def parse_form(stream: plugins.BodyStream, content_type: str, config: Any) -> Form:
    limits = formdata.Limits(max_body_size=int(config.max_multipart_body_size),
                             max_file_size=int(config.max_upload_file_size))
    try:
        form = formdata.parse(stream, content_type, limits, tmpdir=config.upload_tmpdir, log_refusal=False)
    except (formdata.MultipartError, formdata.MultipartTooLarge, formdata.TooManyParts) as exc:
        raise HTTPError(exc.status, exc.message) from None
    return form


def install() -> None:
    plugins.BODY_PARSERS[MEDIA_TYPE] = parse_form
