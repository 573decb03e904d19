from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import pickle
from pathlib import Path

import pytest

from skitai.saddle.cookies import CookieJar
from skitai.saddle.mbox import Mbox
from skitai.saddle.sealing import CookieTooLarge, Sealer
from tests.saddle.helpers import KEY, Browser, Clock

ADDRESS = "10.0.0.1"


class Cycle:
    def __init__(self) -> None:
        self.browser = Browser()
        self.clock = Clock()

    def open(self, address: str = ADDRESS) -> Mbox:
        self.jar = CookieJar(self.browser.header())
        return Mbox(self.jar, securekey=KEY, client_address=address, clock=self.clock)

    def close(self, mbox: Mbox) -> list[str]:
        mbox.commit()
        self.browser.receive(self.jar.set_cookie_headers())
        return self.browser.lines


@pytest.fixture
def cycle() -> Cycle:
    return Cycle()


def test_flash_is_shown_once(cycle: Cycle) -> None:
    mbox = cycle.open()
    first = mbox.send("This is Flash Message", "flash")
    assert mbox.send("Alert kept 60 s", "alram", valid=60) == first + 1
    (line,) = cycle.close(mbox)
    assert line.startswith("NOTIS_=S1.") and "HttpOnly" in line and "Flash" not in line

    mbox = cycle.open()
    messages = mbox.get()
    assert [(m[0], m[1], m[3], m[4], m[5]) for m in messages] == [
        (first, "flash", 0, "This is Flash Message", {}), (first + 1, "alram", 60, "Alert kept 60 s", {})]
    assert messages[0][2] == int(cycle.clock.now)
    cycle.close(mbox)
    mbox = cycle.open()
    assert [m[4] for m in mbox.get()] == ["Alert kept 60 s"]
    cycle.close(mbox)
    cycle.clock.now += 60
    mbox = cycle.open()
    assert mbox.get() == [] and len(mbox) == 0
    assert "Max-Age=0" in cycle.close(mbox)[0]


def test_consumption_waits_for_commit(cycle: Cycle) -> None:
    mbox = cycle.open()
    mbox.send("once")
    cycle.close(mbox)
    assert [m[4] for m in cycle.open().get()] == ["once"]  # the request failed: no commit
    mbox = cycle.open()
    assert [m[4] for m in mbox.get()] == ["once"]
    assert mbox.get() == []  # consumed within the request too
    cycle.close(mbox)
    assert cycle.open().get() == []


def test_sent_and_read_in_one_request(cycle: Cycle) -> None:
    mbox = cycle.open()
    mbox.send("error shown on this page", "error")
    assert [m[4] for m in mbox.get("error")] == ["error shown on this page"]
    assert cycle.close(mbox) == []


def test_filters_search_and_remove(cycle: Cycle) -> None:
    mbox = cycle.open()
    news = mbox.send("New Item Arrived", "notice", valid=600, topic="news")
    sale = mbox.send("Sale", "notice", valid=600, topic="sale")
    other = mbox.send("Hi", "info", valid=600)
    cycle.close(mbox)
    mbox = cycle.open()
    assert [m[0] for m in mbox.get("notice")] == [news, sale]
    assert [m[0] for m in mbox.get("topic", "news")] == [news]
    assert mbox.get("topic", "nothing") == [] and mbox.get("absent") == []
    assert mbox.search("notice") == [news, sale]
    assert mbox.search("topic", "sale") == [sale]
    mbox.remove(sale)
    mbox.remove(12345)
    cycle.close(mbox)
    assert [m[0] for m in cycle.open().get()] == [news, other]


def test_getv_checks_the_address(cycle: Cycle) -> None:
    mbox = cycle.open()
    mbox.send("private", valid=600)
    cycle.close(mbox)
    assert cycle.open(address="10.6.6.6").getv() == []
    assert not cycle.open(address="10.6.6.6").source_verified()
    assert [m[4] for m in cycle.open().getv()] == ["private"]


def test_send_validates(cycle: Cycle) -> None:
    mbox = cycle.open()
    with pytest.raises(TypeError):
        mbox.send(object())
    with pytest.raises(TypeError):
        mbox.send("x", when=object())
    with pytest.raises(ValueError):
        mbox.send("x", valid=-1)


def test_oversize_refused_on_commit(cycle: Cycle) -> None:
    mbox = cycle.open()
    for _ in range(40):
        mbox.send("m" * 100, valid=60)
    with pytest.raises(CookieTooLarge, match="NOTIS_"):
        mbox.commit()


def test_original_pickle_cookie_runs_nothing(cycle: Cycle, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))

    payload = base64.b64encode(pickle.dumps(Exploit())).decode()
    mac = base64.b64encode(hmac.new(b"x", payload.encode(), hashlib.sha1).digest()).decode()
    cycle.browser.cookies["NOTIS_"] = f"{mac}?msgs={payload}"
    caplog.set_level(logging.INFO, "skitai.app.sealing")
    mbox = cycle.open()
    assert mbox.get() == []
    assert not marker.exists()
    assert [r.name for r in caplog.records] == ["skitai.app.sealing"]


@pytest.mark.parametrize("payload", [
    {"m": [[1, "info", 0, 0, "ok", {}], ["bad"], [2, 3, 4, 5, 6, 7], "x"], "n": 9, "a": "10.0.0.1"},
    {"m": "not a list"},
    ["not", "a", "dict"],
])
def test_odd_payloads_with_the_right_key_are_filtered(cycle: Cycle, payload: object) -> None:
    cycle.browser.cookies["NOTIS_"] = Sealer(KEY).seal("NOTIS_", payload)
    messages = cycle.open().get()
    assert messages in ([], [(1, "info", 0, 0, "ok", {})])


def test_session_cookie_cannot_pose_as_mbox(cycle: Cycle) -> None:
    sealed = Sealer(KEY).seal("SESSION_", {"m": [[1, "info", 0, 0, "forged", {}]], "n": 2})
    cycle.browser.cookies["NOTIS_"] = sealed
    assert cycle.open().get() == []


def test_named_mbox(cycle: Cycle) -> None:
    mbox = cycle.open()
    mbox.mount("ADM", "admin-key-different-from-app-key", path="/admin")
    mbox.send("10 data has been deleted", "warning")
    assert mbox.exists("ADM") and not mbox.exists()
    (line,) = cycle.close(mbox)
    assert line.startswith("NOTIS__ADM=") and "; Path=/admin;" in line
    mbox = cycle.open()
    assert not mbox.exists("ADM")  # its key is not the app's: mount it to see it
    mbox.mount("ADM", "admin-key-different-from-app-key", path="/admin")
    assert [m[4] for m in mbox.get()] == ["10 data has been deleted"]
