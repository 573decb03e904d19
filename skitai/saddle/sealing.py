"""Sealed cookie values: authenticated encryption of JSON, bound to a cookie name.

A sealed value looks like `S1.<key id>.<nonce + ciphertext>` (base64url, no
padding), all cookie-octets. The payload is AES-256-GCM over the compact
JSON `[expires_at, value]`, so the value is secret and any change to it, to
its expiry or to the key id makes the tag fail. The cookie name is the
associated data: a value sealed for `SESSION_` does not open as `NOTIS_`.

Keys come from the app's `securekey` through HKDF-SHA256, one AES key and
one 4-byte key id per secret. `Sealer(["new", "old"])` seals with the first
and opens with any, which is how a key is rotated without logging everyone
out. Nothing is decoded before the tag is checked, and JSON is the only
decoder: a cookie can never name code to run (the original un-pickled them).

`unseal()` never raises: a tampered, truncated, expired, oversize or
foreign value gives None and one line on `skitai.app.sealing`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("skitai.app.sealing")

VERSION = "S1"
# Browsers keep at most 4096 bytes of name=value per cookie (RFC 6265 §6.1).
MAX_COOKIE_SIZE = 4096
NONCE_SIZE = 12
KEY_ID_SIZE = 4
_SALT = b"skitai.saddle.sealing"
_AAD_PREFIX = VERSION.encode() + b"\0"
# base64 decoding skips stray characters; accept only the exact alphabet.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

Key = str | bytes
SecureKey = Key | Sequence[Key]  # one secret, or several: the first seals, all open


class CookieTooLarge(ValueError):
    """A sealed value would not fit in a cookie; store less, or use a server-side store."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)


class _Key:
    def __init__(self, secret: Key) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if len(raw) < 16:
            # A short securekey is guessable offline from any one cookie.
            raise ValueError("securekey must be at least 16 bytes; use secrets.token_urlsafe(32)")
        self.aead = AESGCM(_derive(raw, b"aes-256-gcm key", 32))
        self.id = _b64encode(_derive(raw, b"key id", KEY_ID_SIZE))


class Sealer:
    """Seal and unseal JSON-serialisable values for named cookies.

    `securekey` is one secret or a sequence: the first seals, all open.
    `max_size` bounds `name=<sealed>`: the cookie limit by default, None
    for values kept elsewhere (a server-side store).
    """

    def __init__(self, securekey: SecureKey) -> None:
        secrets = [securekey] if isinstance(securekey, str | bytes) else list(securekey)
        if not secrets:
            raise ValueError("no securekey given")
        keys = [_Key(secret) for secret in secrets]
        self._current = keys[0]
        self._keys = {key.id: key for key in reversed(keys)}

    def seal(self, name: str, value: Any, *, expires_at: float | None = None,
             max_size: int | None = MAX_COOKIE_SIZE) -> str:
        """Return the sealed form of `value` for the cookie `name`.

        Raises TypeError for a value JSON cannot encode and CookieTooLarge
        when `name=<sealed>` would be over 4096 bytes.
        """
        expiry = None if expires_at is None else int(expires_at)
        plain = json.dumps([expiry, value], separators=(",", ":"), ensure_ascii=False).encode()
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._current.aead.encrypt(nonce, plain, _AAD_PREFIX + name.encode())
        token = f"{VERSION}.{self._current.id}.{_b64encode(nonce + sealed)}"
        if max_size is not None and len(name) + 1 + len(token) > max_size:
            raise CookieTooLarge(
                f"cookie {name!r} would be {len(name) + 1 + len(token)} bytes sealed, "
                f"over the {max_size}-byte limit"
            )
        return token

    def unseal(self, name: str, token: str, *, now: float | None = None,
               max_size: int | None = MAX_COOKIE_SIZE) -> Any:
        """Return the value sealed in `token` for cookie `name`, or None if it does not open.

        `now` is the Unix time expiry is checked against (the clock by default).
        """
        if not isinstance(token, str):
            return _refused(name, "not a string")
        if max_size is not None and len(name) + 1 + len(token) > max_size:
            return _refused(name, "oversize")
        version, _, rest = token.partition(".")
        key_id, _, body = rest.partition(".")
        if version != VERSION:
            return _refused(name, "not a sealed value")
        key = self._keys.get(key_id)
        if key is None:
            return _refused(name, "unknown key id")
        if not _BASE64URL.fullmatch(body):
            return _refused(name, "bad encoding")
        try:
            blob = _b64decode(body)
        except (binascii.Error, ValueError):
            return _refused(name, "bad encoding")
        if len(blob) <= NONCE_SIZE:
            return _refused(name, "truncated")
        try:
            plain = key.aead.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], _AAD_PREFIX + name.encode())
        except InvalidTag:
            return _refused(name, "authentication failed")
        # The tag held, so this is our own JSON; unpack it defensively all the same.
        try:
            expiry, value = json.loads(plain)
        except (ValueError, TypeError):
            return _refused(name, "bad payload")
        now = time.time() if now is None else now
        if expiry is not None and (not isinstance(expiry, int) or expiry <= now):
            log.info("cookie %r ignored: expired", name)
            return None
        return value


def _refused(name: str, reason: str) -> None:
    log.warning("cookie %r ignored: %s", name, reason)
    return None


def sealer_for(securekey: SecureKey) -> Sealer:
    """One Sealer per key set, so HKDF runs once per key rather than once per request."""
    return _sealer_for((securekey,) if isinstance(securekey, str | bytes) else tuple(securekey))


@functools.lru_cache(maxsize=64)
def _sealer_for(securekeys: tuple[Key, ...]) -> Sealer:
    return Sealer(securekeys)
