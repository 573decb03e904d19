"""`was.mbox`: flash and notice messages carried in a sealed cookie.

A message is `(id, category, created, valid, msg, extra)`. `valid=0`
messages are shown once: `get()` consumes them, and the framework commits
the consumption only when the request succeeds (`commit()` is not called
otherwise), so a failed page does not lose them. `valid=N` messages stay
for N seconds after they were sent, whoever reads them.

Messages wait for the next request in the `NOTIS_` cookie (`NOTIS__<NAME>`
when mounted by name), sealed like sessions: a forged cookie is ignored,
never decoded (the original un-pickled it: remote code execution). The
cookie holds about 3 KB of JSON at most; `commit()` raises
`CookieTooLarge` beyond that, so keep pending messages short and few.
"""

from __future__ import annotations

import json
from typing import Any

from skitai.saddle.cookies import NEVER
from skitai.saddle.mounting import CookieState, Mounts
from skitai.saddle.sealing import Sealer, SecureKey

Message = tuple[int, str, int, int, Any, dict[str, Any]]


class MboxState(CookieState):
    """One named message box, loaded from its cookie on first use."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._messages: list[list[Any]] | None = None
        self._changed = False
        self._next_id = 1
        self._address: str | None = None

    @property
    def messages(self) -> list[list[Any]]:
        if self._messages is None:
            self._messages = []
            self._address = self.client_address
            token = self.cookies.get(self.cookie_name)
            payload = self.sealer.unseal(self.cookie_name, token) if token else None
            if isinstance(payload, dict) and isinstance(payload.get("m"), list):
                self._restore(payload)
        return self._messages

    def _restore(self, payload: dict[str, Any]) -> None:
        assert self._messages is not None
        now = self.clock()
        for message in payload["m"]:
            if not _well_formed(message):
                continue
            created, valid = message[2], message[3]
            if valid and created + valid <= now:
                self._changed = True  # expired: drop it from the cookie too
                continue
            self._messages.append(message)
        next_id, address = payload.get("n"), payload.get("a")
        if isinstance(next_id, int):
            self._next_id = next_id
        if isinstance(address, str):
            self._address = address

    @property
    def address(self) -> str | None:
        """The client address the first pending message was sent to."""
        self.messages  # noqa: B018 - loading the cookie sets it
        return self._address

    def changed(self) -> None:
        self._changed = True

    def add(self, category: str, valid: int, msg: Any, extra: dict[str, Any]) -> int:
        message_id = self._next_id
        self.messages.append([message_id, category, int(self.clock()), valid, msg, extra])
        self._next_id += 1
        self._changed = True
        return message_id

    def exists(self) -> bool:
        return bool(self.messages)

    def commit(self) -> None:
        if self._messages is None or not self._changed:
            return
        if not self._messages:
            self.remove_cookie()
        else:
            payload = {"m": self._messages, "n": self._next_id, "a": self._address}
            token = self.sealer.seal(self.cookie_name, payload, expires_at=self.clock() + NEVER)
            self.write_cookie(token, NEVER)
        self._changed = False


def _well_formed(message: Any) -> bool:
    return (isinstance(message, list) and len(message) == 6 and isinstance(message[0], int)
            and isinstance(message[1], str) and isinstance(message[2], int)
            and isinstance(message[3], int) and isinstance(message[5], dict))


class Mbox(Mounts[MboxState]):
    """The request's message boxes; methods act on the current (last mounted) one."""

    prefix = "NOTIS_"

    def create(self, cookie_name: str, sealer: Sealer, policy: Any, **options: Any) -> MboxState:
        return MboxState(self.cookies, cookie_name, sealer, policy, self.client_address, self.clock)

    def mount(self, name: str | None = None, securekey: SecureKey | None = None, path: str | None = None,
              domain: str | None = None, secure: bool | None = None, http_only: bool | None = None,
              **options: Any) -> None:
        """Create the named message box if it is new, and make it `was.mbox`."""
        super().mount(name, securekey, path, domain, secure, http_only, **options)

    def send(self, msg: Any, category: str = "info", valid: int = 0, **extra: Any) -> int:
        """Queue a message; `valid=0` shows it once, `valid=N` for N seconds. Returns its id."""
        try:
            json.dumps([msg, extra])
        except (TypeError, ValueError) as exc:
            raise TypeError(f"mbox messages must be JSON-serialisable: {exc}") from None
        if not isinstance(valid, int) or valid < 0:
            raise ValueError(f"valid is a number of seconds >= 0, not {valid!r}")
        return self.current.add(str(category), valid, msg, extra)

    def get(self, category_or_key: str | None = None, val: Any = None) -> list[Message]:
        """Messages, all or of one category, or whose `extra[key] == val`; consumes the `valid=0` ones."""
        state = self.current
        chosen = [m for m in state.messages if _matches(m, category_or_key, val)]
        consumed = {m[0] for m in chosen if m[3] == 0}
        if consumed:
            state.messages[:] = [m for m in state.messages if m[0] not in consumed]
            state.changed()
        return [(m[0], m[1], m[2], m[3], m[4], m[5]) for m in chosen]

    def getv(self, category_or_key: str | None = None, val: Any = None) -> list[Message]:
        """`get()`, only when the messages were first sent to this client address."""
        return self.get(category_or_key, val) if self.source_verified() else []

    def search(self, key: str, val: Any = None) -> list[int]:
        """Ids of messages whose `extra[key] == val`, or whose category is `key` when val is None."""
        return [m[0] for m in self.current.messages if _matches(m, key, val)]

    def remove(self, message_id: int) -> None:
        state = self.current
        kept = [m for m in state.messages if m[0] != message_id]
        if len(kept) != len(state.messages):
            state.messages[:] = kept
            state.changed()

    def source_verified(self) -> bool:
        address = self.current.address
        return address is not None and address == self.client_address

    def __len__(self) -> int:
        return len(self.current.messages)


def _matches(message: list[Any], key: str | None, val: Any) -> bool:
    if key is None:
        return True
    if val is None:
        return bool(message[1] == key)
    return bool(key in message[5] and message[5][key] == val)
