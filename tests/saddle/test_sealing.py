from __future__ import annotations

import base64
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skitai.saddle.sealing import MAX_COOKIE_SIZE, CookieTooLarge, Sealer

KEY = "ds8fdsflksdjf9879dsf;?<>Asda-rotation-1"
OTHER = "another-secret-key-of-some-length"
LOGGER = "skitai.app.sealing"


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(KEY)


def refused(caplog: pytest.LogCaptureFixture, reason: str) -> bool:
    return any(r.name == LOGGER and reason in r.getMessage() for r in caplog.records)


def flip(token: str, index: int) -> str:
    head, _, body = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return f"{head}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def test_round_trip_and_secrecy(sealer: Sealer) -> None:
    value = {"user_id": "hansroh", "roles": ["admin"], "n": 3, "ünï": "cödé"}
    token = sealer.seal("SESSION_", value)
    assert sealer.unseal("SESSION_", token) == value
    assert "hansroh" not in token and "admin" not in token
    assert token.startswith("S1.")
    # Two seals of one value differ (random nonce), both open.
    assert sealer.seal("SESSION_", value) != token


def test_cookie_octets_only(sealer: Sealer) -> None:
    token = sealer.seal("SESSION_", {"a": "x; y=\"z\"\r\n"})
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("index", [0, 5, 11, 12, 20, -1])
def test_bit_flip_anywhere_is_ignored(sealer: Sealer, caplog: pytest.LogCaptureFixture, index: int) -> None:
    token = sealer.seal("SESSION_", {"admin": False})
    caplog.set_level(logging.INFO, LOGGER)
    assert sealer.unseal("SESSION_", flip(token, index)) is None
    assert refused(caplog, "authentication failed")


def test_truncated_is_ignored(sealer: Sealer, caplog: pytest.LogCaptureFixture) -> None:
    token = sealer.seal("SESSION_", {"admin": False})
    caplog.set_level(logging.INFO, LOGGER)
    for cut in (len(token) - 1, len(token) - 4, 20, 9, 3):
        assert sealer.unseal("SESSION_", token[:cut]) is None
    assert len([r for r in caplog.records if r.name == LOGGER]) == 5


def test_moved_between_cookies_is_ignored(sealer: Sealer, caplog: pytest.LogCaptureFixture) -> None:
    token = sealer.seal("SESSION_", [1, "msg"])
    caplog.set_level(logging.INFO, LOGGER)
    assert sealer.unseal("NOTIS_", token) is None
    assert sealer.unseal("SESSION__ADM", token) is None
    assert refused(caplog, "authentication failed")


def test_expired_is_ignored(sealer: Sealer, caplog: pytest.LogCaptureFixture) -> None:
    token = sealer.seal("SESSION_", "v", expires_at=1000)
    assert sealer.unseal("SESSION_", token, now=999) == "v"
    caplog.set_level(logging.INFO, LOGGER)
    assert sealer.unseal("SESSION_", token, now=1000) is None
    assert refused(caplog, "expired")


def test_wrong_key_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    token = Sealer(OTHER).seal("SESSION_", "v")
    caplog.set_level(logging.INFO, LOGGER)
    assert Sealer(KEY).unseal("SESSION_", token) is None
    assert refused(caplog, "unknown key id")


def test_key_id_forged_to_the_right_one_still_fails(sealer: Sealer, caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = sealer.seal("S", 1).split("."), Sealer(OTHER).seal("S", 1).split(".")
    caplog.set_level(logging.INFO, LOGGER)
    assert sealer.unseal("S", ".".join([theirs[0], ours[1], theirs[2]])) is None
    assert refused(caplog, "authentication failed")


def test_rotation_opens_old_seals_with_new(caplog: pytest.LogCaptureFixture) -> None:
    old = Sealer(OTHER).seal("SESSION_", "kept")
    rotated = Sealer([KEY, OTHER])
    assert rotated.unseal("SESSION_", old) == "kept"
    fresh = rotated.seal("SESSION_", "new")
    assert Sealer(KEY).unseal("SESSION_", fresh) == "new"
    caplog.set_level(logging.INFO, LOGGER)
    assert Sealer(OTHER).unseal("SESSION_", fresh) is None


def test_oversize_refused_on_write(sealer: Sealer) -> None:
    with pytest.raises(CookieTooLarge, match="SESSION_"):
        sealer.seal("SESSION_", "x" * MAX_COOKIE_SIZE)
    # A server-side value may be larger.
    assert sealer.unseal("k", sealer.seal("k", "x" * 10000, max_size=None), max_size=None) == "x" * 10000


def test_oversize_ignored_on_read(sealer: Sealer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    assert sealer.unseal("SESSION_", "S1." + "A" * MAX_COOKIE_SIZE) is None
    assert refused(caplog, "oversize")


def test_not_json_refused_on_write(sealer: Sealer) -> None:
    with pytest.raises(TypeError):
        sealer.seal("S", object())


def test_short_key_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Sealer("short")
    with pytest.raises(ValueError):
        Sealer([])


@pytest.mark.parametrize("token", ["", ".", "S1", "S1..", "S1.xxxx.", "S1.!!!!.AAAA", "pickle", "S1.ab.c=d",
                                   "S2.abcdef.AAAAAAAAAAAAAAAAAAAAAAAA", "S1.abcd.é"])
def test_garbage_is_ignored(sealer: Sealer, token: str) -> None:
    assert sealer.unseal("SESSION_", token) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600) | st.builds(lambda t: "S1." + t, st.text(max_size=300)))
def test_any_string_unseals_to_none_never_raises(token: str) -> None:
    assert Sealer(KEY).unseal("SESSION_", token) is None


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 2**16))
def test_any_body_with_our_key_id_is_refused(body: bytes, salt: int) -> None:
    sealer = Sealer(KEY)
    key_id = sealer.seal("S", 0).split(".")[1]
    token = f"S1.{key_id}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}"
    assert sealer.unseal("S", token) is None
