"""Named, sealed cookie states: what `was.session` and `was.mbox` share.

Each holds one state per mounted name (None is the default one) and
forwards its methods to the current one, the last mounted:
`was.session.mount("ADM", key, path="/admin")` switches `was.session` to
the `SESSION__ADM` cookie for the rest of the request. States load their
cookie on first use, so a request that never touches them costs nothing,
and `commit()` writes into the request's `CookieJar` only what changed.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from skitai.saddle.cookies import CookieJar
from skitai.saddle.sealing import Sealer, SecureKey, sealer_for

_MOUNT_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True)
class CookiePolicy:
    """The attributes a state's cookie is set with."""

    path: str
    domain: str | None
    secure: bool | None  # None: Secure when the request came over HTTPS
    http_only: bool


class CookieState(ABC):
    """One named state stored in one sealed cookie."""

    def __init__(self, cookies: CookieJar, cookie_name: str, sealer: Sealer, policy: CookiePolicy,
                 client_address: str | None, clock: Callable[[], float]) -> None:
        self.cookies = cookies
        self.cookie_name = cookie_name
        self.sealer = sealer
        self.policy = policy
        self.client_address = client_address
        self.clock = clock

    @abstractmethod
    def exists(self) -> bool:
        """True when the state holds something."""

    @abstractmethod
    def commit(self) -> None:
        """Write the cookie into the jar if the state changed."""

    def write_cookie(self, token: str, expires: int) -> None:
        self.cookies.set(self.cookie_name, token, expires=expires, path=self.policy.path,
                         domain=self.policy.domain, secure=self.policy.secure,
                         http_only=self.policy.http_only)

    def remove_cookie(self) -> None:
        if self.cookie_name in self.cookies:
            self.cookies.remove(self.cookie_name, path=self.policy.path, domain=self.policy.domain)


S = TypeVar("S", bound=CookieState)


class Mounts(ABC, Generic[S]):
    """Named states behind one object; methods act on the current one."""

    prefix: ClassVar[str]

    def __init__(self, cookies: CookieJar, *, securekey: SecureKey | None, client_address: str | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cookies = cookies
        self.securekey = securekey
        self.client_address = client_address
        self.clock = clock
        self._states: dict[str | None, S] = {}
        self._current: S | None = None

    def cookie_name(self, name: str | None) -> str:
        if name is None:
            return self.prefix
        if not _MOUNT_NAME.fullmatch(name):
            raise ValueError(f"mount names are 1 to 64 letters, digits, '_' or '-': {name!r}")
        return f"{self.prefix}_{name}"

    def mount(self, name: str | None = None, securekey: SecureKey | None = None, path: str | None = None,
              domain: str | None = None, secure: bool | None = None, http_only: bool | None = None,
              **options: Any) -> None:
        """Create the named state if it is new, and make it current."""
        state = self._states.get(name)
        if state is None:
            state = self._build(name, securekey, path, domain, secure, http_only, options)
            self._states[name] = state
        self._current = state

    def _build(self, name: str | None, securekey: SecureKey | None, path: str | None, domain: str | None,
               secure: bool | None, http_only: bool | None, options: dict[str, Any]) -> S:
        key = securekey if securekey is not None else self.securekey
        if key is None:
            raise RuntimeError(f"{type(self).__name__} needs a securekey: set app.securekey")
        # The default state is shared by every app of the host, as in the original.
        default_path = "/" if name is None else self.cookies.default_path
        policy = CookiePolicy(path or default_path, domain, secure,
                              True if http_only is None else http_only)
        return self.create(self.cookie_name(name), sealer_for(key), policy, **options)

    @abstractmethod
    def create(self, cookie_name: str, sealer: Sealer, policy: CookiePolicy, **options: Any) -> S:
        """A new state for `cookie_name`."""

    @property
    def current(self) -> S:
        if self._current is None:
            self.mount()
        assert self._current is not None
        return self._current

    def exists(self, name: str | None = None) -> bool:
        """True when the named state holds something.

        A name not mounted in this request is looked up with the app's
        securekey; one sealed with another key must be mounted first.
        """
        state = self._states.get(name)
        if state is None:
            if self.cookie_name(name) not in self.cookies or self.securekey is None:
                return False
            state = self._build(name, None, None, None, None, None, {})
        return state.exists()

    def commit(self) -> None:
        """Write every changed state's cookie into the jar; call before the response head."""
        for state in self._states.values():
            state.commit()
