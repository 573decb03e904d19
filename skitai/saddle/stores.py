"""Where session data lives: in the sealed cookie itself, or in Redis.

A store turns a cookie value into a `Record` and back. Both stores are
synchronous on purpose: Saddle handlers run in worker threads, sessions are
loaded lazily from the handler and committed from `start_response`, both in
that thread, so a blocking redis-py call there holds only its own thread
(`redis.asyncio` does not run under trio, see docs/discussion/cookie-sealing.md).
No store method is ever called on the event loop.

- `CookieStore`: the whole record is sealed into the cookie (no server
  state; about 3 KB of JSON at most).
- `RedisStore`: the cookie holds a sealed random session id; the record is
  sealed too and kept in Redis under a hash of the id, with the session
  timeout as its TTL, so several processes and machines share sessions.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from skitai.errors import SkitaiError
from skitai.saddle.sealing import Sealer

log = logging.getLogger("skitai.app.sessions")

# Bound on a record kept server-side, against a session growing without end.
MAX_STORED_SIZE = 1024 * 1024


class SessionStoreError(SkitaiError):
    """The session store could not be reached or answered with an error."""


@dataclass
class Record:
    """One session: its data, the client address that created it, its deadline."""

    data: dict[str, Any] = field(default_factory=dict)
    address: str | None = None
    expires_at: float = 0.0
    sid: str | None = None  # server-side stores only

    def pack(self) -> dict[str, Any]:
        return {"d": self.data, "a": self.address, "e": self.expires_at}

    @classmethod
    def unpack(cls, payload: Any, sid: str | None = None) -> Record | None:
        if not isinstance(payload, dict):
            return None
        data, address, expires_at = payload.get("d"), payload.get("a"), payload.get("e")
        if not isinstance(data, dict) or not isinstance(address, str | None):
            return None
        if not isinstance(expires_at, int | float):
            return None
        return cls(data, address, float(expires_at), sid)


class SessionStore(Protocol):
    """Load, save and discard records; called from worker threads only."""

    def load(self, sealer: Sealer, name: str, token: str, now: float) -> Record | None:
        """The record a cookie value refers to, or None if it is invalid or gone."""
        ...

    def save(self, sealer: Sealer, name: str, record: Record, now: float) -> str:
        """Store `record` until `record.expires_at`; return the cookie value to send."""
        ...

    def discard(self, record: Record) -> None:
        """Forget `record` (the cookie is removed by the caller)."""
        ...


class CookieStore:
    """Keep the whole record in the sealed cookie."""

    def load(self, sealer: Sealer, name: str, token: str, now: float) -> Record | None:
        return Record.unpack(sealer.unseal(name, token, now=now))

    def save(self, sealer: Sealer, name: str, record: Record, now: float) -> str:
        return sealer.seal(name, record.pack(), expires_at=record.expires_at)

    def discard(self, record: Record) -> None:
        pass  # the record lives only in the cookie the caller removes


class RedisStore:
    """Keep records in Redis; the cookie carries only a sealed session id.

    `url` is a redis-py URL (`redis://127.0.0.1:6379/0`); `client` may be
    given instead (a `redis.Redis`, shared by threads through its pool).
    """

    def __init__(self, url: str | None = None, *, client: Any = None, prefix: str = "skitai:session:",
                 socket_timeout: float = 5.0) -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        if client is None:
            client = redis.Redis.from_url(url or "redis://127.0.0.1:6379/0", socket_timeout=socket_timeout,
                                          socket_connect_timeout=socket_timeout)
        self._redis = client
        self._prefix = prefix

    def _key(self, sid: str) -> str:
        # Hashed, so a reader of Redis keys cannot present them as cookies.
        return self._prefix + hashlib.sha256(sid.encode()).hexdigest()

    def load(self, sealer: Sealer, name: str, token: str, now: float) -> Record | None:
        handle = sealer.unseal(name, token, now=now)
        if not isinstance(handle, dict) or not isinstance(handle.get("i"), str):
            return None
        sid = handle["i"]
        key = self._key(sid)
        try:
            stored = self._redis.get(key)
        except self._errors as exc:
            raise SessionStoreError(f"session store: {exc}") from exc
        if stored is None:
            # A genuine id whose session ended (cleared, regenerated, expired): a replayed cookie.
            log.info("cookie %r ignored: its session is no longer in the store", name)
            return None
        # Sealed against its own key, so records cannot be swapped inside Redis.
        payload = sealer.unseal(f"{name}@{key}", stored.decode("ascii", "replace"), now=now,
                                max_size=MAX_STORED_SIZE)
        return Record.unpack(payload, sid)

    def save(self, sealer: Sealer, name: str, record: Record, now: float) -> str:
        if record.sid is None:
            record.sid = secrets.token_urlsafe(32)
        key = self._key(record.sid)
        sealed = sealer.seal(f"{name}@{key}", record.pack(), expires_at=record.expires_at,
                             max_size=MAX_STORED_SIZE)
        ttl = max(1, round(record.expires_at - now))
        try:
            self._redis.set(key, sealed, ex=ttl)
        except self._errors as exc:
            raise SessionStoreError(f"session store: {exc}") from exc
        return sealer.seal(name, {"i": record.sid}, expires_at=record.expires_at)

    def close(self) -> None:
        """Close the client's connections (at app shutdown)."""
        self._redis.close()

    def discard(self, record: Record) -> None:
        if record.sid is None:
            return
        try:
            self._redis.delete(self._key(record.sid))
        except self._errors as exc:
            raise SessionStoreError(f"session store: {exc}") from exc


def store_from_setting(setting: str | SessionStore | None) -> SessionStore:
    """The store an app setting names: None or "cookie", a `redis://` URL, or a store object."""
    if setting is None or setting == "cookie":
        return CookieStore()
    if isinstance(setting, str):
        if setting.startswith(("redis://", "rediss://", "unix://")):
            return RedisStore(setting)
        raise ValueError(f"unknown session store {setting!r}: use 'cookie' or a redis:// URL")
    return setting
