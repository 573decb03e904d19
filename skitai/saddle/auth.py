"""HTTP authentication for Saddle apps: Digest (RFC 7616) and Basic (RFC 7617).

`Authenticator.authenticate()` turns a request's method, target and
`Authorization` header into a `User`, or into a `Challenge` to answer
with. It fails closed: with no realm or no users it refuses everyone
(the original let everyone in).

Digest takes MD5 or SHA-256 with `qop=auth` only. A nonce is
`base64url(time, random, HMAC-SHA256(secret, time, random, realm))`: a
forged one is refused outright, one older than `nonce_lifetime` gets a
fresh challenge with `stale=true` (clients retry without asking the user).
Issued nonces are remembered, at most `max_nonces` of them, oldest
forgotten first, each with a sliding window of the nonce counts seen, so
a replayed `nc` is refused. A nonce this process never issued or has
forgotten (another worker process, a restart) is answered `stale=true`
as well: fail closed, at the price of one more round trip.

User entries, from `users.get(name)`: a password, `(password, hashed)` or
`(password, hashed, info)`. Hashed means the entry is the Digest HA1,
`H(name:realm:password)` in hex; its length tells MD5 from SHA-256, and
Basic cannot check it (refused and logged). Secrets are compared with
`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("skitai.app.auth")

HASHES: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
HA1_LENGTHS = {32: "MD5", 64: "SHA-256"}
NC_WINDOW = 64  # out-of-order nonce counts accepted behind the highest, as parallel requests do
_PARAM = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(,|$)')
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True)
class User:
    """An authenticated user: `was.request.user`."""

    name: str
    realm: str
    info: Any = None


@dataclass(frozen=True)
class Challenge:
    """A refusal to answer with: its status and `WWW-Authenticate` header values."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Entry:
    secret: str
    hashed: bool
    info: Any


class _NonceCounts:
    """Issued nonces and the counts seen for each; bounded, shared by worker threads."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce -> (highest nc, bitmap)
        self._lock = threading.Lock()

    def issue(self, nonce: str) -> None:
        with self._lock:
            self._seen[nonce] = (0, 1)
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)

    def use(self, nonce: str, nc: int) -> str:
        """"ok", "replay" for a count seen before (or too far behind), "unknown" for a forgotten nonce."""
        with self._lock:
            state = self._seen.get(nonce)
            if state is None:
                return "unknown"
            high, bitmap = state
            if nc > high:
                bitmap = ((bitmap << (nc - high)) | 1) & ((1 << NC_WINDOW) - 1)
                high = nc
            else:
                bit = 1 << (high - nc)
                if high - nc >= NC_WINDOW or bitmap & bit:
                    return "replay"
                bitmap |= bit
            self._seen[nonce] = (high, bitmap)
            return "ok"


class Authenticator:
    """Checks `Authorization` headers against `users` for one realm.

    `secret` signs nonces (pass the app's securekey so every worker process
    accepts the others' nonces; a random one otherwise). `clock` returns
    Unix time. One instance serves all requests of an app, from any thread.
    """

    def __init__(self, authorization: str = "digest", realm: str | None = None, users: Any = None, *,
                 secret: str | bytes | None = None, opaque: str | None = None,
                 algorithms: Sequence[str] = ("SHA-256", "MD5"), nonce_lifetime: float = 300.0,
                 max_nonces: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.scheme = authorization.lower()
        if self.scheme not in ("digest", "basic"):
            raise ValueError(f"authorization must be 'digest' or 'basic', not {authorization!r}")
        if realm is not None and (not isinstance(realm, str) or re.search(r"[\x00-\x1f\x7f]", realm)):
            raise ValueError(f"realm must be printable text: {realm!r}")
        unknown = [a for a in algorithms if a not in HASHES]
        if unknown or not algorithms:
            raise ValueError(f"Digest algorithms are {sorted(HASHES)}, not {list(algorithms)}")
        self.realm = realm
        self.users = users
        self.algorithms = tuple(algorithms)
        self.nonce_lifetime = nonce_lifetime
        self._clock = clock
        raw = secret.encode() if isinstance(secret, str) else secret
        self._secret = raw or os.urandom(32)
        self.opaque = opaque or hmac.new(self._secret, b"opaque", hashlib.sha256).hexdigest()[:32]
        self._nonces = _NonceCounts(max_nonces)
        self._misconfigured = _misconfiguration(realm, users)
        if self._misconfigured:
            log.error("authentication refuses every request: %s", self._misconfigured)

    def authenticate(self, method: str, uri: str, authorization: str | None,
                     client_address: str | None = None) -> User | Challenge:
        """The user the header proves, or the challenge to answer with."""
        if self._misconfigured:
            log.warning("refused %s: %s", client_address, self._misconfigured)
            return Challenge(403)
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != self.scheme:
            if authorization:
                log.info("refused %s: %r is not %s authorization", client_address, scheme[:20], self.scheme)
            return self.challenge()
        if self.scheme == "basic":
            return self._basic(credentials.strip(), client_address)
        return self._digest(method, uri, credentials, client_address)

    # Challenges.
    def challenge(self, stale: bool = False) -> Challenge:
        realm = _quote(self.realm or "")
        if self.scheme == "basic":
            return Challenge(401, (("WWW-Authenticate", f'Basic realm={realm}, charset="UTF-8"'),))
        nonce = self._new_nonce()
        extra = ", stale=true" if stale else ""
        return Challenge(401, tuple(
            ("WWW-Authenticate", f'Digest realm={realm}, qop="auth", algorithm={algorithm}, '
                                 f'nonce="{nonce}", opaque="{self.opaque}"{extra}')
            for algorithm in self.algorithms))

    def _new_nonce(self) -> str:
        stamp = struct.pack(">Q", int(self._clock()))
        body = stamp + os.urandom(16)
        nonce = _b64(body + self._sign(body))
        self._nonces.issue(nonce)
        return nonce

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body + (self.realm or "").encode(), hashlib.sha256).digest()[:16]

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since the nonce was issued, or None if we did not sign it."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii") + b"=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 40 or not hmac.compare_digest(self._sign(raw[:24]), raw[24:]):
            return None
        issued: int = struct.unpack(">Q", raw[:8])[0]
        return self._clock() - issued

    # Basic.
    def _basic(self, credentials: str, client: str | None) -> User | Challenge:
        try:
            name, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return self._refuse(client, "malformed Basic credentials")
        entry = self._entry(name) if sep else None
        if entry is not None and entry.hashed:
            return self._refuse(client, f"user {name!r} has a hashed password, which Basic cannot check")
        expected = entry.secret if entry is not None else "\0unknown user\0"
        if not hmac.compare_digest(password.encode(), expected.encode()) or entry is None:
            return self._refuse(client, f"wrong Basic credentials for {name!r}")
        return User(name, self.realm or "", entry.info)

    # Digest.
    def _digest(self, method: str, uri: str, credentials: str, client: str | None) -> User | Challenge:
        params = _parse_params(credentials)
        required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if params is None or any(k not in params for k in required):
            return self._refuse(client, "malformed Digest credentials")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            return self._refuse(client, f"Digest algorithm {algorithm[:20]!r} not offered")
        if params["qop"] != "auth" or not re.fullmatch(r"[0-9a-fA-F]{8}", params["nc"]):
            return self._refuse(client, "Digest qop or nc malformed")
        if not hmac.compare_digest(params["realm"].encode(), (self.realm or "").encode()):
            return self._refuse(client, f"wrong realm {params['realm'][:80]!r}")
        if params["uri"] != uri and unquote(params["uri"]) != unquote(uri):
            log.info("refused %s: Digest uri %r is not the request target %r", client,
                     params["uri"][:200], uri[:200])
            return Challenge(400)
        age = self._nonce_age(params["nonce"])
        if age is None:
            return self._refuse(client, "nonce not issued here")
        if not hmac.compare_digest(params.get("opaque", "").encode(), self.opaque.encode()):
            return self._refuse(client, "wrong opaque")
        name = params["username"]
        entry = self._entry(name)
        if not self._response_matches(entry, name, algorithm, method, params):
            return self._refuse(client, f"wrong Digest response for {name!r}")
        assert entry is not None
        if age > self.nonce_lifetime:
            return self._refuse(client, "stale nonce", stale=True)
        verdict = self._nonces.use(params["nonce"], int(params["nc"], 16))
        if verdict == "replay":
            return self._refuse(client, f"replayed nonce count {params['nc']} for {name!r}")
        if verdict == "unknown":
            return self._refuse(client, "nonce forgotten or issued by another process", stale=True)
        return User(name, self.realm or "", entry.info)

    def _response_matches(self, entry: _Entry | None, name: str, algorithm: str, method: str,
                          params: dict[str, str]) -> bool:
        digest = HASHES[algorithm]

        def h(*parts: str) -> str:
            return str(digest(":".join(parts).encode("utf-8")).hexdigest())

        if entry is None:
            ha1 = h(name, self.realm or "", os.urandom(8).hex())  # same work for unknown users
        elif entry.hashed:
            ha1 = entry.secret.lower()
            if HA1_LENGTHS.get(len(ha1)) != algorithm:
                log.info("user %r has a hashed password not made with %s", name, algorithm)
                return False
        else:
            ha1 = h(name, self.realm or "", entry.secret)
        ha2 = h(method, params["uri"])
        expected = h(ha1, params["nonce"], params["nc"], params["cnonce"], "auth", ha2)
        matches = hmac.compare_digest(expected.encode(), params["response"].lower().encode())
        return matches and entry is not None

    # Shared.
    def _entry(self, name: str) -> _Entry | None:
        found = self.users.get(name)
        if found is None:
            return None
        if isinstance(found, str):
            return _Entry(found, False, None)
        if isinstance(found, tuple | list) and len(found) in (2, 3) and isinstance(found[0], str):
            return _Entry(found[0], bool(found[1]), found[2] if len(found) == 3 else None)
        log.error("user %r: entry is not a password, (password, hashed) or (password, hashed, info)",
                  name)
        return None

    def _refuse(self, client: str | None, reason: str, stale: bool = False) -> Challenge:
        log.info("refused %s: %s", client, reason)
        return self.challenge(stale)


def _misconfiguration(realm: str | None, users: Any) -> str | None:
    if not realm:
        return "no realm is set"
    if users is None or not callable(getattr(users, "get", None)):
        return "users is not set (a mapping or an object with .get(name))"
    if isinstance(users, Mapping) and not users:
        return "users is empty"
    return None


def _parse_params(text: str) -> dict[str, str] | None:
    """auth-params as a dict; None if malformed or a parameter repeats."""
    params: dict[str, str] = {}
    position, text = 0, text.strip()
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None or match.end() == position:
            return None
        key, value = match.group(1).lower(), match.group(2)
        if key in params:
            return None
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        params[key] = value
        position = match.end()
    return params


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
