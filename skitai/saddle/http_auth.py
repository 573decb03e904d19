"""HTTP Digest and Basic authentication for Saddle apps, through skitai.saddle.auth.

Registered as the authenticator factory for `app.authorization = "digest"`
and `"basic"`. One `HttpAuthenticator` is made per app on its first
protected request, from `app.realm`, `app.users`, `app.opaque`,
`app.digest_algorithms` and the first of `app.securekey` (which signs
Digest nonces, so every process of the app accepts the others'). It keeps
the nonces it issued for the app's lifetime.

An admitted request gets `was.request.user` (`name`, `realm`, `info`);
the app then reports the name for the access log (skitai.saddle.app). A
refused one is answered 401 with a fresh challenge (`stale=true` for an
expired or forgotten nonce), 400 for a Digest `uri` that is not the
request's, and 403 for everyone when the realm or the users are missing.
"""

from __future__ import annotations

from typing import Any

from skitai.saddle import plugins
from skitai.saddle.auth import Authenticator, User
from skitai.saddle.errors import HTTPError


class HttpAuthenticator:
    """Saddle's `authenticate(was)` over an `Authenticator`; `options` go to it (clock, nonce_lifetime...)."""

    def __init__(self, app: Any, **options: Any) -> None:
        options.setdefault("algorithms", tuple(app.digest_algorithms))
        self.checker = Authenticator(app.authorization, app.realm, app.users,
                                     secret=_first_key(app.securekey), opaque=app.opaque, **options)

    def authenticate(self, was: Any) -> HTTPError | None:
        env = was.env
        result = self.checker.authenticate(env["REQUEST_METHOD"], was.request.uri,
                                           env.get("HTTP_AUTHORIZATION"), env.get("REMOTE_ADDR"))
        if isinstance(result, User):
            was.request.user = result
            return None
        return HTTPError(result.status, headers=list(result.headers))


def _first_key(securekey: Any) -> str | bytes | None:
    """The key that seals is the one that signs: the first of a list being rotated."""
    if securekey is None or isinstance(securekey, str | bytes):
        return securekey
    keys = list(securekey)
    return keys[0] if keys else None


def install() -> None:
    plugins.AUTHENTICATORS["digest"] = HttpAuthenticator
    plugins.AUTHENTICATORS["basic"] = HttpAuthenticator
