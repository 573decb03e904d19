from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skitai.saddle import auth
from skitai.saddle.auth import Authenticator, Challenge, User
from tests.saddle.helpers import Clock

REALM = "Partner App Area of mysite.com"
LOGGER = "skitai.app.auth"
USERS: dict[str, Any] = {
    "app": ("iamyourpartnerapp", 0, {"role": "root"}),
    "plain": "secret",
    "md5": (hashlib.md5(f"md5:{REALM}:pw".encode()).hexdigest(), True),
    "sha": (hashlib.sha256(f"sha:{REALM}:pw".encode()).hexdigest(), True, "info"),
}


def digest_auth(**options: Any) -> Authenticator:
    options.setdefault("clock", Clock())
    return Authenticator("digest", REALM, USERS, secret="server secret", **options)


def params_of(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="?([^",]*)"?', header.partition(" ")[2]))


def answer(challenge: Challenge, user: str, password: str, uri: str = "/hello/x", method: str = "GET",
           count: int = 1, algorithm: str = "SHA-256", ha1: str | None = None, **override: str) -> str:
    header = next(v for _, v in challenge.headers if f"algorithm={algorithm}" in v)
    p = params_of(header)
    h = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}[algorithm]

    def hx(*parts: str) -> str:
        return h(":".join(parts).encode()).hexdigest()

    fields = {"username": user, "realm": p["realm"], "nonce": p["nonce"], "uri": uri, "algorithm": algorithm,
              "qop": "auth", "nc": f"{count:08x}", "cnonce": "0a4f113b", "opaque": p["opaque"]}
    fields.update(override)
    first = ha1 or hx(user, fields["realm"], password)
    fields["response"] = hx(first, fields["nonce"], fields["nc"], fields["cnonce"], "auth",
                            hx(method, fields["uri"]))
    fields.update({k: v for k, v in override.items() if k == "response"})
    quoted = {"algorithm", "qop", "nc"}
    return "Digest " + ", ".join(f"{k}={v}" if k in quoted else f'{k}="{v}"' for k, v in fields.items())


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture(autouse=True)
def _log_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)


def test_challenge_offers_sha256_then_md5() -> None:
    challenge = digest_auth().authenticate("GET", "/", None, "10.0.0.1")
    assert isinstance(challenge, Challenge) and challenge.status == 401
    (name1, sha), (name2, md5) = challenge.headers
    assert name1 == name2 == "WWW-Authenticate"
    assert sha.startswith(f'Digest realm="{REALM}", qop="auth", algorithm=SHA-256, nonce="')
    assert "algorithm=MD5" in md5 and params_of(sha)["nonce"] == params_of(md5)["nonce"]
    assert "stale" not in sha


@pytest.mark.parametrize(("user", "password", "algorithm", "info"), [
    ("app", "iamyourpartnerapp", "SHA-256", {"role": "root"}),
    ("app", "iamyourpartnerapp", "MD5", {"role": "root"}),
    ("plain", "secret", "SHA-256", None),
    ("md5", "pw", "MD5", None),
    ("sha", "pw", "SHA-256", "info"),
])
def test_digest_accepts(user: str, password: str, algorithm: str, info: Any) -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    header = answer(challenge, user, password, algorithm=algorithm)  # type: ignore[arg-type]
    assert authenticator.authenticate("GET", "/hello/x", header) == User(user, REALM, info)


def test_hashed_entry_needs_its_own_algorithm(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    header = answer(challenge, "md5", "pw", algorithm="SHA-256")
    assert isinstance(authenticator.authenticate("GET", "/hello/x", header), Challenge)
    assert any("not made with SHA-256" in m for m in refusals(caplog))


def test_replayed_nonce_count_refused(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    first = answer(challenge, "plain", "secret", count=1)
    assert isinstance(authenticator.authenticate("GET", "/hello/x", first), User)
    replay = authenticator.authenticate("GET", "/hello/x", first, "10.6.6.6")
    assert isinstance(replay, Challenge) and replay.status == 401
    assert any("replayed nonce count 00000001" in m and "10.6.6.6" in m for m in refusals(caplog))
    # Higher counts pass, a slightly late one too (parallel requests), but each only once.
    for nc in (5, 3, 4, 2):
        header = answer(challenge, "plain", "secret", count=nc)
        assert isinstance(authenticator.authenticate("GET", "/hello/x", header), User)
    for nc in (3, 0):
        late = answer(challenge, "plain", "secret", count=nc)
        assert isinstance(authenticator.authenticate("GET", "/hello/x", late), Challenge)
    ahead = answer(challenge, "plain", "secret", count=200)
    assert isinstance(authenticator.authenticate("GET", "/hello/x", ahead), User)
    behind = answer(challenge, "plain", "secret", count=100)  # outside the window now
    assert isinstance(authenticator.authenticate("GET", "/hello/x", behind), Challenge)


def test_stale_nonce_answered_stale(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    authenticator = digest_auth(clock=clock, nonce_lifetime=300)
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    clock.now += 301
    result = authenticator.authenticate("GET", "/hello/x", answer(challenge, "plain", "secret"))
    assert isinstance(result, Challenge) and all("stale=true" in v for _, v in result.headers)
    assert any("stale nonce" in m for m in refusals(caplog))
    # A wrong password with an old nonce is no reason to say stale.
    result = authenticator.authenticate("GET", "/hello/x", answer(challenge, "plain", "guess", count=2))
    assert isinstance(result, Challenge) and "stale" not in result.headers[0][1]
    # The fresh nonce of the stale answer works.
    assert isinstance(authenticator.authenticate("GET", "/hello/x", answer(result, "plain", "secret")), User)


def test_wrong_uri_is_a_bad_request(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    header = answer(challenge, "plain", "secret", uri="/public")
    assert authenticator.authenticate("GET", "/admin/delete", header) == Challenge(400)
    assert any("is not the request target" in m for m in refusals(caplog))
    encoded = answer(challenge, "plain", "secret", uri="/a%20b?x=1")
    assert isinstance(authenticator.authenticate("GET", "/a b?x=1", encoded), User)


@pytest.mark.parametrize(("user", "password", "override", "reason"), [
    ("plain", "wrong", {}, "wrong Digest response for 'plain'"),
    ("nobody", "secret", {}, "wrong Digest response for 'nobody'"),
    ("plain", "secret", {"realm": "Other realm"}, "wrong realm"),
    ("plain", "secret", {"opaque": "0" * 32}, "wrong opaque"),
    ("plain", "secret", {"nonce": "AAAA" * 13 + "AA"}, "nonce not issued here"),
    ("plain", "secret", {"qop": "auth-int"}, "qop or nc malformed"),
    ("plain", "secret", {"nc": "1"}, "qop or nc malformed"),
])
def test_digest_refusals(caplog: pytest.LogCaptureFixture, user: str, password: str,
                         override: dict[str, str], reason: str) -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    result = authenticator.authenticate("GET", "/hello/x", answer(challenge, user, password, **override))
    assert isinstance(result, Challenge) and result.status == 401 and result.headers
    assert any(reason in m for m in refusals(caplog)), refusals(caplog)


@pytest.mark.parametrize("header", [
    "Digest", "Digest ,", 'Digest username="a", username="b"', "Digest username=",
    'Digest username="unterminated',
    "Digest algorithm=SHA-512, username=a, realm=r, nonce=n, uri=/, response=r, qop=auth, nc=00000001, "
    "cnonce=c",
    "Bearer abc", "digest\x00", "Basic Zm9vOmJhcg==",
])
def test_malformed_digest_headers(header: str) -> None:
    result = digest_auth().authenticate("GET", "/", header)
    assert isinstance(result, Challenge) and result.status == 401


def test_nonce_from_another_secret_refused_same_secret_stale() -> None:
    ours = digest_auth()
    theirs = Authenticator("digest", REALM, USERS, secret="other secret")
    challenge = theirs.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    result = ours.authenticate("GET", "/hello/x", answer(challenge, "plain", "secret"))
    assert isinstance(result, Challenge) and "stale" not in result.headers[0][1]
    sibling = digest_auth()  # another worker process with the same securekey
    challenge = sibling.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    result = ours.authenticate("GET", "/hello/x", answer(challenge, "plain", "secret"))
    assert isinstance(result, Challenge) and "stale=true" in result.headers[0][1]


def test_nonce_store_is_bounded() -> None:
    authenticator = digest_auth(max_nonces=3)
    first = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(first, Challenge)
    for _ in range(3):
        authenticator.authenticate("GET", "/hello/x", None)
    result = authenticator.authenticate("GET", "/hello/x", answer(first, "plain", "secret"))
    assert isinstance(result, Challenge) and "stale=true" in result.headers[0][1]


def test_one_nonce_count_wins_across_threads() -> None:
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    same = answer(challenge, "plain", "secret", count=1)
    headers = [same] * 8 + [answer(challenge, "plain", "secret", count=n) for n in range(2, 10)]
    results: list[object] = []
    barrier = threading.Barrier(len(headers))

    def attempt(header: str) -> None:
        barrier.wait()
        results.append(authenticator.authenticate("GET", "/hello/x", header))

    threads = [threading.Thread(target=attempt, args=(h,)) for h in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, User) for r in results) == 1 + 8


def test_secrets_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    authenticator = digest_auth()
    challenge = authenticator.authenticate("GET", "/hello/x", None)
    assert isinstance(challenge, Challenge)
    header = answer(challenge, "plain", "secret")
    response = params_of(header)["response"].encode()
    assert isinstance(authenticator.authenticate("GET", "/hello/x", header), User)
    assert (response, response) in compared
    basic = Authenticator("basic", REALM, USERS)
    basic.authenticate("GET", "/", "Basic " + base64.b64encode(b"plain:guess").decode())
    assert (b"guess", b"secret") in compared


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = Authenticator("basic", REALM, USERS)
    assert authenticator.authenticate("GET", "/", basic_header("app", "iamyourpartnerapp")) == User(
        "app", REALM, {"role": "root"})
    assert authenticator.authenticate("GET", "/", basic_header("plain", "secret")) == User("plain", REALM)
    challenge = authenticator.authenticate("GET", "/", None)
    assert challenge == Challenge(401, (("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),))
    for header in (basic_header("plain", "wrong"), basic_header("nobody", "secret"), "Basic !!!",
                   "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic " + base64.b64encode(b"\xff:x").decode()):
        assert authenticator.authenticate("GET", "/", header) == challenge
    assert authenticator.authenticate("GET", "/", basic_header("md5", "pw")) == challenge
    assert any("hashed password, which Basic cannot check" in m for m in refusals(caplog))


@pytest.mark.parametrize(("realm", "users", "why"), [
    (None, USERS, "no realm"), ("", USERS, "no realm"), (REALM, None, "users is not set"),
    (REALM, {}, "users is empty"), (REALM, 42, "users is not set"),
])
@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_fails_closed(caplog: pytest.LogCaptureFixture, realm: str | None, users: Any, why: str,
                      scheme: str) -> None:
    authenticator = Authenticator(scheme, realm, users)
    for header in (None, basic_header("plain", "secret"), "Digest username=plain"):
        assert authenticator.authenticate("GET", "/", header, "10.0.0.1") == Challenge(403)
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1 and why in errors[0].getMessage()
    assert len(refusals(caplog)) == 4


def test_users_object_with_get() -> None:
    class Directory:
        def get(self, name: str) -> str | None:
            return "pw" if name == "ldap-user" else None

    authenticator = Authenticator("basic", REALM, Directory())
    assert authenticator.authenticate("GET", "/", basic_header("ldap-user", "pw")) == User("ldap-user", REALM)


def test_bad_user_entry_logged(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = Authenticator("basic", REALM, {"odd": 12345})
    assert isinstance(authenticator.authenticate("GET", "/", basic_header("odd", "12345")), Challenge)
    assert any("entry is not a password" in m for m in refusals(caplog))


def test_configuration_errors() -> None:
    with pytest.raises(ValueError):
        Authenticator("bearer", REALM, USERS)
    with pytest.raises(ValueError):
        Authenticator("digest", "evil\r\nSet-Cookie: x=1", USERS)
    with pytest.raises(ValueError):
        Authenticator("digest", REALM, USERS, algorithms=("SHA-512",))
    quoted = Authenticator("digest", 'say "hi" \\ there', USERS).challenge()
    assert 'realm="say \\"hi\\" \\\\ there"' in quoted.headers[0][1]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["Digest ", "Basic ", ""]))
def test_any_header_gives_a_challenge(text: str, scheme: str) -> None:
    for authenticator in (digest_auth(), Authenticator("basic", REALM, USERS)):
        result = authenticator.authenticate("GET", "/", scheme + text)
        assert isinstance(result, Challenge) and result.status in (400, 401)
