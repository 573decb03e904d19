"""`was.session` and `was.mbox` in Saddle apps.

Both are made on first use in a request, from the request's cookie jar
(`was.cookie`), the app's `securekey` (one key, or a list: the first seals,
all open), the client address and, for sessions, `session_timeout` and the
store `app.session_store` names (skitai.saddle.stores.store_from_setting:
None or "cookie" for the sealed cookie, a `redis://` URL, or a store
object). They are committed through `was.on_commit`, so their Set-Cookie
lines are written only when the request succeeded.

A store the app made from a URL is the app's: it is closed when the server
shuts the app down. A store object the app was given is the giver's to
close.

Server-side stores block (a Redis round trip). They are never called on
the event loop: an async route's default session is loaded in a worker
thread before its hooks run (`preload`), its commits run in a worker
thread too, and any other load attempted on the loop is refused with an
error that says what to do instead.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread

from skitai import context
from skitai.saddle.mbox import Mbox
from skitai.saddle.sealing import Sealer
from skitai.saddle.sessions import Session
from skitai.saddle.stores import CookieStore, Record, SessionStore, store_from_setting
from skitai.saddle.was import RequestWas

NO_SECUREKEY = ("was.{service} needs app.securekey: set it to a random secret of 16 bytes or more "
                "(secrets.token_urlsafe(32)), the same in every process serving the app")


class SessionStores:
    """The session store of one app, made from `app.session_store` on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[Any, SessionStore] | None = None  # (the setting, its store)
        self._owned = False

    def get(self, setting: Any) -> SessionStore:
        built = self._built
        if built is not None and built[0] == setting:
            return built[1]
        with self._lock:  # the worker threads of the first requests race here
            if self._built is None or self._built[0] != setting:
                self._close_owned()
                store = store_from_setting(setting)
                self._owned = store is not setting  # made from a name or URL: ours to close
                if not isinstance(store, CookieStore):
                    store = _OffTheLoop(store)
                self._built = (setting, store)
            return self._built[1]

    def close(self) -> None:
        """Close the store if the app made it (at shutdown)."""
        with self._lock:
            self._close_owned()
            self._built = None

    def _close_owned(self) -> None:
        if self._built is None or not self._owned:
            return
        store = self._built[1]
        inner = store.store if isinstance(store, _OffTheLoop) else store
        close = getattr(inner, "close", None)
        if close is not None:
            close()


class _OffTheLoop:
    """A blocking session store that refuses to stall the event loop."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def load(self, sealer: Sealer, name: str, token: str, now: float) -> Record | None:
        _refuse_on_loop()
        return self.store.load(sealer, name, token, now)

    def save(self, sealer: Sealer, name: str, record: Record, now: float) -> str:
        _refuse_on_loop()
        return self.store.save(sealer, name, record, now)

    def discard(self, record: Record) -> None:
        _refuse_on_loop()
        self.store.discard(record)


def _refuse_on_loop() -> None:
    try:
        anyio.get_current_task()
    except anyio.NoEventLoopError:
        return  # a worker thread: blocking is fine here
    raise RuntimeError(
        "a server-side session store cannot be read on the event loop: in an async route, "
        "mount named sessions in a sync before_request hook, or use the cookie store")


def session_of(was: Any) -> Session:
    """`was.session`: the request's sessions, made on first use."""
    saddle_was = _saddle_was(was, "session")
    found: Session | None = getattr(saddle_was.g, "_session", None)
    if found is not None:
        return found
    app = saddle_was.app
    session = Session(saddle_was.cookie, securekey=_securekey(saddle_was, "session"),
                      client_address=saddle_was.env.get("REMOTE_ADDR"),
                      session_timeout=app.session_timeout,
                      store=app.session_stores.get(app.session_store))
    saddle_was.on_commit(lambda response: session.commit())
    saddle_was.g._session = session
    return session


def mbox_of(was: Any) -> Mbox:
    """`was.mbox`: the request's message boxes, made on first use."""
    saddle_was = _saddle_was(was, "mbox")
    found: Mbox | None = getattr(saddle_was.g, "_mbox", None)
    if found is not None:
        return found
    mbox = Mbox(saddle_was.cookie, securekey=_securekey(saddle_was, "mbox"),
                client_address=saddle_was.env.get("REMOTE_ADDR"))
    saddle_was.on_commit(lambda response: mbox.commit())
    saddle_was.g._mbox = mbox
    return mbox


def _saddle_was(was: Any, service: str) -> RequestWas:
    if not isinstance(was, RequestWas):
        raise RuntimeError(f"was.{service} is for Saddle apps (it commits with the handler's response)")
    return was


def _securekey(was: RequestWas, service: str) -> Any:
    securekey = was.app.securekey
    if not securekey:
        # Never an unsealed cookie: the handler fails, and says why.
        raise RuntimeError(NO_SECUREKEY.format(service=service))
    return securekey


async def preload(was: RequestWas) -> None:
    """Load an async route's default session in a worker thread, when a server-side store keeps it."""
    app = was.app
    if not app.securekey or Session.prefix not in was.cookie:
        return
    if isinstance(app.session_stores.get(app.session_store), CookieStore):
        return  # unsealing a cookie does not block: loaded on first use
    await anyio.to_thread.run_sync(lambda: session_of(was).current.record)


def install() -> None:
    context.register_service("session", session_of)
    context.register_service("mbox", mbox_of)
