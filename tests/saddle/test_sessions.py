from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from skitai.saddle.cookies import CookieJar
from skitai.saddle.sealing import CookieTooLarge, Sealer
from skitai.saddle.sessions import Session
from skitai.saddle.stores import CookieStore, SessionStore
from tests.saddle.helpers import KEY, Browser, Clock

ADDRESS = "10.0.0.1"


class Cycle:
    """One client's requests against an app with the given session settings."""

    def __init__(self, store: SessionStore | None = None, timeout: float = 1200) -> None:
        self.browser = Browser()
        self.clock = Clock()
        self.store = store or CookieStore()
        self.timeout = timeout

    def open(self, address: str = ADDRESS, https: bool = False, default_path: str = "/") -> Session:
        self.jar = CookieJar(self.browser.header(), https=https, default_path=default_path)
        return Session(self.jar, securekey=KEY, client_address=address, session_timeout=self.timeout,
                       store=self.store, clock=self.clock)

    def close(self, session: Session) -> list[str]:
        session.commit()
        self.browser.receive(self.jar.set_cookie_headers())
        return self.browser.lines


@pytest.fixture
def cycle() -> Iterator[Cycle]:
    yield Cycle()


def test_round_trip_and_cookie_attributes(cycle: Cycle) -> None:
    session = cycle.open(https=True, default_path="/app")
    assert "login" not in session
    session.set("user_id", "hansroh")
    session["roles"] = ["admin", "staff"]
    (line,) = cycle.close(session)
    assert line.startswith("SESSION_=S1.")
    assert "; Path=/; Max-Age=1200; " in line and line.endswith("; Secure; HttpOnly; SameSite=Lax")
    assert "hansroh" not in line

    session = cycle.open()
    assert session.get("user_id") == "hansroh" and session["roles"] == ["admin", "staff"]
    assert sorted(session.keys()) == ["roles", "user_id"] and len(session) == 2
    assert dict(session.items()) == dict(session.iteritems()) and session.has_key("roles")
    assert sorted(session) == sorted(session.iterkeys()) and len(list(session.itervalues())) == 2
    session.set("n", 1)
    (line,) = cycle.close(session)  # over plain HTTP: no Secure
    assert "Secure" not in line and "HttpOnly" in line


def test_untouched_session_sends_nothing(cycle: Cycle) -> None:
    assert cycle.close(cycle.open()) == []
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    session = cycle.open()
    assert session.get("a") == 1
    assert cycle.close(session) == []  # read-only, fresh: no Set-Cookie


def test_sliding_expiry(cycle: Cycle) -> None:
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    cycle.clock.now += 500  # more than half left: nothing sent
    session = cycle.open()
    assert session["a"] == 1 and cycle.close(session) == []
    cycle.clock.now += 200  # 500 s left of 1200: refreshed
    session = cycle.open()
    assert session["a"] == 1 and len(cycle.close(session)) == 1
    cycle.clock.now += 1100  # still alive thanks to the refresh
    session = cycle.open()
    assert session["a"] == 1
    cycle.close(session)


def test_expired_session_is_empty_and_cookie_removed(cycle: Cycle, caplog: pytest.LogCaptureFixture) -> None:
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    cycle.clock.now += 1200
    caplog.set_level(logging.INFO, "skitai.app.sealing")
    session = cycle.open()
    assert "a" not in session and not session.exists()
    (line,) = cycle.close(session)
    assert line.startswith("SESSION_=; Path=/; Max-Age=0")
    assert any("expired" in r.getMessage() for r in caplog.records)


def test_source_verified_and_getv(cycle: Cycle) -> None:
    session = cycle.open()
    assert session.source_verified()  # created here, from this address
    session.set("secret", "s")
    cycle.close(session)
    assert cycle.open().source_verified()
    other = cycle.open(address="10.6.6.6")
    assert not other.source_verified()
    assert other.getv("secret") is None and other.getv("secret", "no") == "no"
    assert other.get("secret") == "s"
    assert cycle.open().getv("secret") == "s"


FORGED = {"d": {"admin": True}, "a": None, "e": 2e9}


@pytest.mark.parametrize("forge", [
    lambda token: token[:-2],
    lambda token: token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
    lambda token: Sealer("an attacker's own key").seal("SESSION_", FORGED),
    lambda token: Sealer(KEY).seal("NOTIS_", FORGED),
    lambda token: "gANjb3MKc3lzdGVtCnEAWAIAAABpZHEBhXECUnEDLg==?admin=1",
])
def test_forged_cookie_gives_an_empty_session(cycle: Cycle, caplog: pytest.LogCaptureFixture,
                                             forge: Any) -> None:
    session = cycle.open()
    session.set("admin", False)
    cycle.close(session)
    cycle.browser.cookies["SESSION_"] = forge(cycle.browser.cookies["SESSION_"])
    caplog.set_level(logging.INFO, "skitai.app.sealing")
    session = cycle.open()
    assert len(session) == 0 and session.get("admin") is None
    assert [r.name for r in caplog.records] == ["skitai.app.sealing"]
    (line,) = cycle.close(session)
    assert "Max-Age=0" in line


def test_remove_clear_and_delete(cycle: Cycle) -> None:
    session = cycle.open()
    session.set("a", 1)
    session.set("b", 2)
    session.set("c", 3)
    cycle.close(session)
    session = cycle.open()
    session.remove("a")
    session.remove("missing")
    del session["b"]
    with pytest.raises(KeyError):
        del session["b"]
    cycle.close(session)
    session = cycle.open()
    assert session.keys() == ["c"]
    session.clear()
    (line,) = cycle.close(session)
    assert "Max-Age=0" in line and "SESSION_" not in cycle.browser.cookies


def test_values_must_be_json(cycle: Cycle) -> None:
    with pytest.raises(TypeError, match="JSON"):
        cycle.open().set("a", {1, 2})


def test_oversize_session_refused_on_commit(cycle: Cycle) -> None:
    session = cycle.open()
    session.set("blob", "x" * 5000)
    with pytest.raises(CookieTooLarge, match="SESSION_"):
        session.commit()


def test_no_securekey_is_a_clear_error() -> None:
    session = Session(CookieJar(), securekey=None, client_address=ADDRESS)
    with pytest.raises(RuntimeError, match="securekey"):
        session.get("a")
    session.commit()  # never used: nothing to do
    assert not session.exists("ADM")


def test_named_sessions(cycle: Cycle) -> None:
    admin_key = "admin-key-different-from-app-key"
    session = cycle.open(default_path="/app")
    session.set("user", "u")
    session.mount("ADM", admin_key, path="/admin", session_timeout=60)
    session.set("admin_login", True)
    assert session.exists("ADM") and session.exists(None)
    session.mount()
    assert session.get("admin_login") is None and session["user"] == "u"
    lines = cycle.close(session)
    adm = next(line for line in lines if line.startswith("SESSION__ADM="))
    assert "; Path=/admin; Max-Age=60; " in adm

    session = cycle.open()
    assert session.exists(None)
    assert not session.exists("ADM")  # sealed with its own key: must be mounted to be seen
    session.mount("ADM", admin_key, path="/admin")
    assert session.exists("ADM") and session["admin_login"] is True
    assert "user" not in session
    cycle.clock.now += 61
    session = cycle.open()
    session.mount("ADM", admin_key, path="/admin")
    assert not session.exists("ADM")


def test_named_session_with_the_app_key_is_seen_unmounted(cycle: Cycle) -> None:
    session = cycle.open(default_path="/app")
    session.mount("SHOP")
    session["cart"] = [1]
    (line,) = cycle.close(session)
    assert "; Path=/app;" in line
    session = cycle.open()
    assert session.exists("SHOP") and not session.exists(None) and not session.exists("OTHER")


@pytest.mark.parametrize("name", ["", "a b", "x;y", "a" * 65])
def test_bad_mount_names(cycle: Cycle, name: str) -> None:
    with pytest.raises(ValueError):
        cycle.open().mount(name)


def test_regenerate_keeps_data(cycle: Cycle) -> None:
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    before = cycle.browser.cookies["SESSION_"]
    session = cycle.open()
    session.regenerate()
    cycle.close(session)
    assert cycle.browser.cookies["SESSION_"] != before
    assert cycle.open()["a"] == 1


def test_securekey_rotation_keeps_sessions(cycle: Cycle) -> None:
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    new_key = "a-brand-new-securekey-after-rotation"
    rotated = Session(CookieJar(cycle.browser.header()), securekey=[new_key, KEY], client_address=ADDRESS,
                      clock=cycle.clock)
    assert rotated["a"] == 1
    rotated.set("b", 2)
    jar = rotated.cookies
    rotated.commit()
    cycle.browser.receive(jar.set_cookie_headers())
    only_new = Session(CookieJar(cycle.browser.header()), securekey=new_key, client_address=ADDRESS,
                       clock=cycle.clock)
    assert only_new.items() == [("a", 1), ("b", 2)]
