# SPDX-License-Identifier: EUPL-1.2
"""Checking credentials: password or app password, with a short cache and brute-force throttling.

A verified (login, secret) pair is cached under a keyed hash (the secret itself is never kept)
for ``ttl`` seconds, so requests do not pay argon2 each time. Each hit still reads the user row:
a password change or disable (from any process) bumps ``auth_version`` and drops the entry.
Failed attempts are counted per client address and per login over a sliding window; past the
limits, attempts are refused with Throttled before any password is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2.exceptions import InvalidHashError, VerificationError

from cartable.core.accounts import HASHER, app_token_hash, principal_for
from cartable.core.context import Core
from cartable.core.errors import Throttled, Unauthenticated
from cartable.core.model import Principal
from cartable.store.meta import accounts as repo

__all__ = ["Authenticator", "ThrottlePolicy"]


@dataclass(frozen=True)
class ThrottlePolicy:
    window_seconds: float = 600.0
    max_per_address: int = 20
    max_per_login: int = 10


class _Failures:
    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = {}

    def count(self, key: str, since: float) -> int:
        q = self._events.get(key)
        if not q:
            return 0
        while q and q[0] < since:
            q.popleft()
        return len(q)

    def add(self, key: str, now: float) -> None:
        self._events.setdefault(key, deque(maxlen=1000)).append(now)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


class Authenticator:
    def __init__(self, core: Core, *, ttl: float = 60.0, policy: ThrottlePolicy | None = None) -> None:
        self.core = core
        self.ttl = ttl
        self.policy = policy or ThrottlePolicy()
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[int, int, float, Principal]] = {}
        self._failures = _Failures()
        self._lock = threading.Lock()

    def _cache_key(self, login: str, secret: str) -> bytes:
        return hmac.new(self._key, f"{login}\0{secret}".encode(), hashlib.sha256).digest()

    def _check_throttle(self, login: str, address: str, now: float) -> None:
        since = now - self.policy.window_seconds
        with self._lock:
            by_addr = self._failures.count("a:" + address, since)
            by_login = self._failures.count("l:" + login, since)
        if by_addr >= self.policy.max_per_address or by_login >= self.policy.max_per_login:
            raise Throttled("too many failed logins; wait a few minutes before trying again",
                            retry_after=int(self.policy.window_seconds // 10))

    def _fail(self, login: str, address: str, now: float) -> Unauthenticated:
        with self._lock:
            self._failures.add("a:" + address, now)
            self._failures.add("l:" + login, now)
        return Unauthenticated("wrong user name or password")

    def authenticate(self, login: str, secret: str, address: str = "") -> Principal:
        now = time.monotonic()
        key = self._cache_key(login, secret)
        with self.core.db.read(snapshot=False) as tx:
            rec = repo.user_by_name(tx, login)
            cached = self._cache.get(key)
            if rec is not None and cached is not None:
                uid, version, expires, principal = cached
                if uid == rec.id and version == rec.auth_version and expires > now and not rec.disabled:
                    app_id = principal.app_password_id
                    if app_id is None or repo.app_password_exists(tx, app_id):
                        return principal
                self._cache.pop(key, None)
            self._check_throttle(login, address, now)
            app = repo.app_password_by_hash(tx, app_token_hash(secret)) if len(secret) >= 32 else None
        if rec is None or rec.disabled:
            HASHER.hash("timing-equaliser") if rec is None else None
            raise self._fail(login, address, now)
        app_id: int | None = None
        if app is not None and app[1] == rec.id:
            app_id = app[0]
        else:
            try:
                HASHER.verify(rec.password_hash, secret)
            except (VerificationError, InvalidHashError):
                raise self._fail(login, address, now) from None
        principal = principal_for(self.core, rec, app_id)
        with self._lock:
            self._failures.clear("a:" + address)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = (rec.id, rec.auth_version, now + self.ttl, principal)
        return principal
