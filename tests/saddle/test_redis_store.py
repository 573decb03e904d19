"""The Redis session store against the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from skitai.saddle.stores import RedisStore, SessionStoreError, store_from_setting
from tests.saddle.helpers import REDIS_HOST, REDIS_PORT, require_redis
from tests.saddle.test_sessions import Cycle


@pytest.fixture
def redis_client() -> Iterator[Any]:
    require_redis()
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    prefix = f"skitai-test:{secrets.token_hex(8)}:"
    yield prefix
    for key in redis_client.scan_iter(prefix + "*"):
        redis_client.delete(key)


@pytest.fixture
def store(redis_client: Any, prefix: str) -> RedisStore:
    return RedisStore(client=redis_client, prefix=prefix)


def keys(client: Any, prefix: str) -> list[bytes]:
    return list(client.scan_iter(prefix + "*"))


def test_cookie_holds_only_a_sealed_id(store: RedisStore, redis_client: Any, prefix: str) -> None:
    cycle = Cycle(store)
    session = cycle.open()
    session.set("profile", "p" * 10000)  # far over what a cookie could hold
    (line,) = cycle.close(session)
    assert len(line) < 300 and "ppp" not in line
    (key,) = keys(redis_client, prefix)
    assert 1190 <= redis_client.ttl(key) <= 1200
    assert b"ppp" not in redis_client.get(key)  # sealed in Redis too
    assert cycle.open()["profile"] == "p" * 10000


def test_processes_share_sessions(redis_client: Any, prefix: str) -> None:
    cycle = Cycle(RedisStore(client=redis_client, prefix=prefix))
    session = cycle.open()
    session.set("user", "u")
    cycle.close(session)
    # Another process: its own store and client, same Redis and securekey.
    cycle.store = other = RedisStore(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix=prefix)
    assert cycle.open()["user"] == "u"
    other.close()


def test_clear_deletes_the_record(store: RedisStore, redis_client: Any, prefix: str) -> None:
    cycle = Cycle(store)
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    session = cycle.open()
    session.clear()
    (line,) = cycle.close(session)
    assert "Max-Age=0" in line and keys(redis_client, prefix) == []


def test_regenerate_moves_the_record(store: RedisStore, redis_client: Any, prefix: str) -> None:
    cycle = Cycle(store)
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    (old,) = keys(redis_client, prefix)
    stolen = dict(cycle.browser.cookies)
    session = cycle.open()
    session.regenerate()
    cycle.close(session)
    (new,) = keys(redis_client, prefix)
    assert new != old and cycle.open()["a"] == 1
    cycle.browser.cookies = stolen  # the pre-login id no longer opens anything
    assert len(cycle.open()) == 0


def test_expired_record_is_gone(store: RedisStore, redis_client: Any, prefix: str) -> None:
    cycle = Cycle(store)
    session = cycle.open()
    session.set("a", 1)
    cycle.close(session)
    (key,) = keys(redis_client, prefix)
    redis_client.delete(key)  # what the TTL does
    session = cycle.open()
    assert len(session) == 0
    assert "Max-Age=0" in cycle.close(session)[0]


def test_tampered_or_swapped_records_are_ignored(store: RedisStore, redis_client: Any, prefix: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    alice, mallory = Cycle(store), Cycle(store)
    for cycle, name in ((alice, "alice"), (mallory, "mallory")):
        session = cycle.open()
        session.set("user", name)
        cycle.close(session)
        if name == "alice":
            (alice_key,) = keys(redis_client, prefix)
    (mallory_key,) = set(keys(redis_client, prefix)) - {alice_key}
    # Someone with write access to Redis copies Alice's record under Mallory's key.
    redis_client.set(mallory_key, redis_client.get(alice_key))
    caplog.set_level(logging.INFO, "skitai.app.sealing")
    assert len(mallory.open()) == 0
    redis_client.set(alice_key, b"S1.garbage")
    assert len(alice.open()) == 0
    assert len([r for r in caplog.records if r.name == "skitai.app.sealing"]) == 2


def test_unreachable_redis_is_a_store_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cycle = Cycle(RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout=1))
    session = cycle.open()
    session.set("a", 1)
    with pytest.raises(SessionStoreError):
        session.commit()
    cycle.store.close()  # type: ignore[attr-defined]


def test_store_from_setting() -> None:
    assert type(store_from_setting(None)).__name__ == "CookieStore"
    assert type(store_from_setting("cookie")).__name__ == "CookieStore"
    redis_store = store_from_setting("redis://127.0.0.1:6379/0")
    assert isinstance(redis_store, RedisStore)
    redis_store.close()
    with pytest.raises(ValueError):
        store_from_setting("memcached://x")
