"""`was.session`: a sealed, expiring dictionary per client.

Values are anything JSON can hold (tuples come back as lists, dict keys as
strings). The cookie is `SESSION_`, or `SESSION__<NAME>` once mounted by
name, and is `HttpOnly`, `SameSite=Lax` and `Secure` over HTTPS unless
mounted otherwise.

Expiry is sliding: a session lives `session_timeout` seconds after it was
last written. `commit()` writes it when it changed, and also when less than
half the timeout is left, so an active client stays signed in while most
read-only requests send no Set-Cookie. Mutating a stored value in place
(`session["cart"].append(x)`) is not seen: assign it again.

The client address that created a session is sealed with it:
`source_verified()` compares it with the current one and `getv()` returns
values only when they match.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from skitai.saddle.cookies import CookieJar
from skitai.saddle.mounting import CookiePolicy, CookieState, Mounts
from skitai.saddle.sealing import Sealer, SecureKey
from skitai.saddle.stores import CookieStore, Record, SessionStore

DEFAULT_TIMEOUT = 1200


class SessionState(CookieState):
    """One named session, loaded from its cookie on first use."""

    def __init__(self, cookies: CookieJar, cookie_name: str, sealer: Sealer, policy: CookiePolicy,
                 client_address: str | None, clock: Callable[[], float], *, store: SessionStore,
                 timeout: float) -> None:
        super().__init__(cookies, cookie_name, sealer, policy, client_address, clock)
        self.store = store
        self.timeout = timeout
        self._record: Record | None = None
        self._changed = False
        self._rotate = False

    @property
    def record(self) -> Record:
        if self._record is None:
            token = self.cookies.get(self.cookie_name)
            loaded = self.store.load(self.sealer, self.cookie_name, token, self.clock()) if token else None
            self._record = loaded or Record(address=self.client_address)
        return self._record

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data

    def changed(self) -> None:
        self._changed = True

    def regenerate(self) -> None:
        self.record  # noqa: B018 - load it, so commit() writes it under the new id
        self._rotate = self._changed = True

    def exists(self) -> bool:
        return bool(self.data)

    def commit(self) -> None:
        if self._record is None:
            return  # never used in this request
        record, now = self._record, self.clock()
        if self._rotate and record.sid is not None:
            self.store.discard(record)
            record.sid = None
        if not record.data:
            if self._changed or self.cookie_name in self.cookies:
                self.store.discard(record)
                self.remove_cookie()
        elif self._changed or record.expires_at - now < self.timeout / 2:
            record.expires_at = now + self.timeout
            self.write_cookie(self.store.save(self.sealer, self.cookie_name, record, now),
                              round(self.timeout))
        self._changed = self._rotate = False


class Session(Mounts[SessionState]):
    """The request's sessions; dict methods act on the current (last mounted) one.

    `store` is a `CookieStore` (the default) or a `RedisStore`, shared by
    all requests of an app.
    """

    prefix = "SESSION_"

    def __init__(self, cookies: CookieJar, *, securekey: SecureKey | None, client_address: str | None,
                 session_timeout: float | None = DEFAULT_TIMEOUT, store: SessionStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(cookies, securekey=securekey, client_address=client_address, clock=clock)
        self.session_timeout = DEFAULT_TIMEOUT if session_timeout is None else session_timeout
        self.store = store or CookieStore()

    def create(self, cookie_name: str, sealer: Sealer, policy: CookiePolicy, **options: Any) -> SessionState:
        timeout = options.get("session_timeout") or self.session_timeout
        return SessionState(self.cookies, cookie_name, sealer, policy, self.client_address, self.clock,
                            store=self.store, timeout=timeout)

    def mount(self, name: str | None = None, securekey: SecureKey | None = None, path: str | None = None,
              domain: str | None = None, secure: bool | None = None, http_only: bool | None = None,
              session_timeout: float | None = None, **options: Any) -> None:
        """Create the named session if it is new, and make it `was.session`."""
        super().mount(name, securekey, path, domain, secure, http_only,
                      session_timeout=session_timeout, **options)

    # Values.
    def set(self, key: str, val: Any) -> None:
        try:
            json.dumps(val)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session values must be JSON-serialisable: {key!r}: {exc}") from None
        self.current.data[key] = val
        self.current.changed()

    def get(self, key: str, default: Any = None) -> Any:
        return self.current.data.get(key, default)

    def getv(self, key: str, default: Any = None) -> Any:
        """The value, only if the session was created from this client address."""
        return self.get(key, default) if self.source_verified() else default

    def source_verified(self) -> bool:
        address = self.current.record.address
        return address is not None and address == self.client_address

    def remove(self, key: str) -> None:
        if key in self.current.data:
            del self.current.data[key]
            self.current.changed()

    def clear(self) -> None:
        self.current.data.clear()
        self.current.changed()

    def regenerate(self) -> None:
        """Keep the data under a new session id; call it when the user signs in."""
        self.current.regenerate()

    # Dict methods.
    def __getitem__(self, key: str) -> Any:
        return self.current.data[key]

    def __setitem__(self, key: str, val: Any) -> None:
        self.set(key, val)

    def __delitem__(self, key: str) -> None:
        del self.current.data[key]
        self.current.changed()

    def __contains__(self, key: object) -> bool:
        return key in self.current.data

    def __len__(self) -> int:
        return len(self.current.data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.current.data))

    def has_key(self, key: str) -> bool:
        return key in self.current.data

    def keys(self) -> list[str]:
        return list(self.current.data)

    def values(self) -> list[Any]:
        return list(self.current.data.values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self.current.data.items())

    def iterkeys(self) -> Iterator[str]:
        return iter(self.keys())

    def itervalues(self) -> Iterator[Any]:
        return iter(self.values())

    def iteritems(self) -> Iterator[tuple[str, Any]]:
        return iter(self.items())
