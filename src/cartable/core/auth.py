# SPDX-License-Identifier: EUPL-1.2
"""Checking credentials (password, app password, or an app password as a bearer token), with a
short cache, and brute-force throttling that slows the attacker down instead of locking the
account (modelled on Nextcloud's brute-force protection).

Two steps, so that an HTTP adapter can wait without holding a thread:

1. ``check(cred, address)`` returns the cached Principal when this process verified the same
   secret less than ``ttl`` seconds ago (each hit still reads the user row: a password change or
   disable from any process bumps ``auth_version`` and drops the entry; a revoked app password
   drops it too), or an ``Attempt`` telling how long to wait before ``verify``. It raises
   Throttled when a counter is at its cap.
2. ``verify(cred, address, attempt)`` checks the secret and returns the Principal, or raises
   Unauthenticated and counts the failure.

Throttling. Each failure adds one to two counters: (client address, login) and (client address);
IPv6 addresses count per /64, as one client usually holds a whole /64. Counters live in the
database (``store.meta.counters``: a restart or another node keeps them; random user names cost
rows that expire, never process memory) and leak: each forgets one failure every
``failure_cost`` seconds, and rows that reach zero are purged. Before checking a secret the
adapter waits ``0.1 s × 2^n``, at most ``max_delay``, where n is the (address, login) count, or
the address count scaled by ``max_per_user / max_per_address`` if higher. Only a counter at its
cap refuses, with Throttled and a ``retry_after`` that is the time until it falls below the cap.
A credential this process already verified skips throttling entirely (an attacker cannot make
the cache hit without the secret). A success clears the (address, login) counter only: the
address keeps its record of failures against other accounts. Unknown users and disabled
accounts cost the same argon2 verification as a wrong password. Each failure is also an audit
event (core/audit.py), written in the transaction that counts it; successes are not (see there).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2.exceptions import InvalidHashError, VerificationError

from cartable.core import audit
from cartable.core.accounts import HASHER, app_token_hash, name_key, principal_for
from cartable.core.context import Core
from cartable.core.errors import Throttled, Unauthenticated
from cartable.core.model import Principal
from cartable.core.units import unit_of_work
from cartable.store.meta import accounts as repo
from cartable.store.meta import counters
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import UserRecord

__all__ = ["Authenticator", "ThrottlePolicy", "Credentials", "Attempt", "delay_for", "purge_counters"]

FIRST_DELAY = 0.1
_CACHE_MAX = 100_000
# argon2 verifications one process runs at once: each holds 64 MiB (argon2-cffi's defaults) and a
# core; more wait their turn (16 clients of one user after a restart once took 1 GiB and seconds).
ARGON2_AT_ONCE = 2


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed logins are counted (settings ``login_*`` in docs/configuration.md)."""

    failure_cost: float = 60.0  # seconds one failure stays counted
    max_per_user: int = 200  # failures counted for one (address, login) before refusing
    max_per_address: int = 2000  # failures counted for one address before refusing
    max_delay: float = 25.0  # longest wait before a secret is checked
    flow_starts_per_address: int = 100  # Login Flow v2 starts an address may make in a burst


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: ``login`` and its password or app password (HTTP Basic, a login
    form), or ``login=None`` and an app password alone (``Authorization: Bearer``)."""

    login: str | None
    secret: str

    @property
    def key(self) -> str:
        """The login as accounts are looked up (case folded), or a marker for bearer tokens."""
        return "\0bearer" if self.login is None else name_key(self.login)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of ``check`` when the secret must be verified: wait ``delay`` seconds first."""

    delay: float
    throttled: bool  # False for a credential this process verified before
    user_failures: bool  # the (address, login) counter had failures (a success deletes it)


def delay_for(failures: float, max_delay: float) -> float:
    """Seconds to wait before checking a secret after ``failures`` counted failures."""
    n = math.ceil(failures - 1e-9)
    if n <= 0:
        return 0.0
    return max_delay if n >= 64 else min(max_delay, FIRST_DELAY * 2.0**n)


@unit_of_work
def purge_counters(core: Core) -> int:
    """Delete the throttling counters that fell to zero (failures purge them too, at most once a
    decay period; the server's background job calls this when none come)."""
    with core.db.write() as tx:
        return counters.purge(tx, core.clock())


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()


class Authenticator:
    def __init__(self, core: Core, *, ttl: float = 60.0, policy: ThrottlePolicy | None = None) -> None:
        self.core = core
        self.ttl = ttl
        self.policy = policy or ThrottlePolicy()
        self._key = secrets.token_bytes(32)
        # cache key → (user id, auth_version, verified at (time.monotonic), principal)
        self._cache: dict[bytes, tuple[int, int, float, Principal]] = {}
        self._lock = threading.Lock()
        self._dummy_hash: str | None = None
        self._last_purge = 0.0
        self._argon2_slots = threading.BoundedSemaphore(ARGON2_AT_ONCE)
        # cache key -> [lock, users]: one verification per credential at a time (single flight)
        self._flights: dict[bytes, list] = {}  # type: ignore[type-arg]
        # HMAC(subject, password hash, secret) → when a link password was verified (secret_holds)
        self._secrets: dict[bytes, float] = {}

    # -- the two steps --------------------------------------------------------------------

    @property
    def inline(self) -> bool:
        """Whether ``cached`` may run on the event loop (MetaDB.inline_reads)."""
        return self.core.db.inline_reads

    def cached(self, cred: Credentials) -> Principal | None:
        """The Principal when the credential was verified less than ``ttl`` ago and its account
        has not changed since (one indexed lookup, no argon2); None means: call ``check``."""
        found = self._from_cache(cred)
        return found if isinstance(found, Principal) else None

    def _from_cache(self, cred: Credentials) -> Principal | bool:
        """The cached Principal if fresh; True if cached, still valid but older than ``ttl`` (verify
        again, without throttling); False if not cached, or no longer valid (dropped). Every
        request asks the database whether the account changed, so a password change, a revoked
        app password or a disabled account counts at once on every process and node: on the raw
        driver, as the hot path it is."""
        cache_key = self._cache_key(cred)
        entry = self._cache.get(cache_key)
        if entry is None:
            return False
        with self.core.db.fast_read() as raw:
            valid = self._still_valid(raw, cred, entry)
        if not valid:
            with self._lock:
                self._cache.pop(cache_key, None)
            return False
        return entry[3] if time.monotonic() - entry[2] < self.ttl else True

    def check(self, cred: Credentials, address: str) -> Principal | Attempt:
        """A cached Principal, or the Attempt to make (see the module docstring). Raises
        Throttled when a counter is at its cap."""
        found = self._from_cache(cred)
        if isinstance(found, Principal):
            return found
        if found:
            return Attempt(0.0, throttled=False, user_failures=False)
        with self.core.db.read(snapshot=False) as tx:
            now = self.core.clock()
            keys = self._counter_keys(cred, address)
            expiries = counters.expiries(tx, keys)
        user_count, address_count = (self._count(expiries.get(k), now) for k in keys)
        self._refuse_if_capped(user_count, address_count, expiries, keys, now)
        scaled = address_count * self.policy.max_per_user / self.policy.max_per_address
        return Attempt(delay_for(max(user_count, scaled), self.policy.max_delay), throttled=True,
                       user_failures=user_count > 0)

    def verify(self, cred: Credentials, address: str, attempt: Attempt) -> Principal:
        """Check the secret after the Attempt's delay; the Principal, or Unauthenticated (the
        failure is counted). Throttled if the counters filled up meanwhile (parallel guesses).
        Concurrent verifications of the same credential run one after the other, and a later
        one takes the result the first one cached (the desktop client opens several connections
        at once: one argon2 for all of them)."""
        with self._flight(self._cache_key(cred)):
            if not attempt.user_failures:
                hit = self.cached(cred)
                if hit is not None:
                    return hit
            return self._verify(cred, address, attempt)

    @contextmanager
    def _flight(self, key: bytes) -> Iterator[None]:
        with self._lock:
            entry = self._flights.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    self._flights.pop(key, None)

    def _verify(self, cred: Credentials, address: str, attempt: Attempt) -> Principal:
        keys = self._counter_keys(cred, address)
        with self.core.db.read(snapshot=False) as tx:
            if attempt.throttled:
                now = self.core.clock()
                expiries = counters.expiries(tx, keys)
                user_count, address_count = (self._count(expiries.get(k), now) for k in keys)
                self._refuse_if_capped(user_count, address_count, expiries, keys, now)
            rec, app_id = self._lookup(tx, cred)
        if not self._secret_holds(cred, rec, app_id):
            self._count_failure(keys, cred, address, rec)
            raise Unauthenticated("wrong user name or password")
        assert rec is not None
        if attempt.user_failures:
            # The address keeps its failures against other accounts.
            self.core.db.transact(lambda tx: counters.delete(tx, keys[0]))
        principal = principal_for(self.core, rec, app_id)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[self._cache_key(cred)] = (rec.id, rec.auth_version, time.monotonic(), principal)
        return principal

    def authenticate(self, login: str | None, secret: str, address: str = "") -> Principal:
        """Both steps, sleeping the delay in this thread: for callers outside an event loop
        (tests, tools). HTTP adapters use ``cartable.http.basic`` and wait asynchronously."""
        cred = Credentials(login, secret)
        found = self.check(cred, address)
        if isinstance(found, Principal):
            return found
        if found.delay:
            time.sleep(found.delay)
        return self.verify(cred, address, found)

    # -- passwords of public links (core/shares.py) ------------------------------------

    def secret_delay(self, subject: str, address: str) -> float:
        """Seconds to wait before checking a secret that guards ``subject`` (a link:
        ``"link:ID"``), throttled exactly as logins are: the (address, subject) counter and the
        address's own (shared with logins). Throttled when either is at its cap."""
        keys = self._subject_keys(subject, address)
        with self.core.db.read(snapshot=False) as tx:
            now = self.core.clock()
            expiries = counters.expiries(tx, keys)
        user_count, address_count = (self._count(expiries.get(k), now) for k in keys)
        self._refuse_if_capped(user_count, address_count, expiries, keys, now)
        scaled = address_count * self.policy.max_per_user / self.policy.max_per_address
        return delay_for(max(user_count, scaled), self.policy.max_delay)

    def secret_holds(self, subject: str, address: str, password_hash: str, secret: str) -> bool:
        """Whether ``secret`` matches the argon2 ``password_hash`` guarding ``subject``. A
        success is cached for ``ttl`` (keyed by the hash too: a new password drops it) and clears
        the (address, subject) counter; a failure is counted (the caller records the audit event)."""
        cache_key = hmac.new(self._key, f"{subject}\0{password_hash}\0{secret}".encode("utf-8", "surrogatepass"),
                             hashlib.sha256).digest()
        seen = self._secrets.get(cache_key)
        if seen is not None and time.monotonic() - seen < self.ttl:
            return True
        keys = self._subject_keys(subject, address)
        if not self._argon2(password_hash, secret):
            now, cost = self.core.clock(), self.policy.failure_cost

            def count(tx: Tx) -> None:
                for key in keys:
                    counters.add(tx, key, now, cost)

            self.core.db.transact(count)
            return False
        self.core.db.transact(lambda tx: counters.delete(tx, keys[0]))
        with self._lock:
            if len(self._secrets) >= _CACHE_MAX:
                self._secrets.clear()
            self._secrets[cache_key] = time.monotonic()
        return True

    def _subject_keys(self, subject: str, address: str) -> tuple[bytes, bytes]:
        where = _address_key(address)
        return _digest("secret", where, subject), _digest("address", where)

    # -- Login Flow v2 starts ------------------------------------------------------------

    @unit_of_work
    def count_flow_start(self, address: str) -> None:
        """Count a Login Flow v2 start from ``address``; Throttled (nothing counted) when the
        address already started ``flow_starts_per_address`` flows that have not leaked away
        (one every ``failure_cost`` seconds)."""
        key = _digest("flow", _address_key(address))
        cost, cap = self.policy.failure_cost, self.policy.flow_starts_per_address
        now = self.core.clock()
        with self.core.db.write() as tx:
            expires = counters.expiries(tx, [key]).get(key)
            if self._count(expires, now) >= cap:
                assert expires is not None
                wait = self._retry_after(expires, cap, now)
                raise Throttled(f"too many login requests from your address; try again in {wait} s",
                                retry_after=wait)
            counters.add(tx, key, now, cost)

    def purge(self) -> int:
        """Delete counters that fell to zero; returns how many."""
        return purge_counters(self.core)

    # -- helpers ------------------------------------------------------------------------

    def _cache_key(self, cred: Credentials) -> bytes:
        return hmac.new(self._key, f"{cred.key}\0{cred.secret}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def _counter_keys(self, cred: Credentials, address: str) -> tuple[bytes, bytes]:
        where = _address_key(address)
        return _digest("login", where, cred.key), _digest("address", where)

    def _count(self, expires: float | None, now: float) -> float:
        return 0.0 if expires is None else max(0.0, expires - now) / self.policy.failure_cost

    def _retry_after(self, expires: float, cap: int, now: float) -> int:
        """Whole seconds after which the count is below ``cap`` (if nothing else fails)."""
        return max(1, math.floor(expires - cap * self.policy.failure_cost - now) + 1)

    def _refuse_if_capped(self, user_count: float, address_count: float, expiries: dict[bytes, float],
                          keys: tuple[bytes, bytes], now: float) -> None:
        waits = [self._retry_after(expiries[key], cap, now)
                 for key, count, cap in ((keys[0], user_count, self.policy.max_per_user),
                                         (keys[1], address_count, self.policy.max_per_address))
                 if count >= cap]
        if waits:
            wait = max(waits)
            raise Throttled(f"too many failed logins from your address; try again in {wait} s",
                            retry_after=wait)

    def _still_valid(self, tx: Tx, cred: Credentials, cached: tuple[int, int, float, Principal]) -> bool:
        user_id, version, _, principal = cached
        rec = repo.user_by_id(tx, user_id) if cred.login is None else repo.user_by_name(tx, cred.key)
        if rec is None or rec.disabled or (rec.id, rec.auth_version) != (user_id, version):
            return False
        app_id = principal.app_password_id
        return app_id is None or repo.app_password_exists(tx, app_id)

    def _lookup(self, tx: Tx, cred: Credentials) -> tuple[UserRecord | None, int | None]:
        """The account the credentials name, and the app password id if the secret is one of
        its app passwords."""
        app = repo.app_password_by_hash(tx, app_token_hash(cred.secret)) if len(cred.secret) >= 32 else None
        if cred.login is None:
            rec = repo.user_by_id(tx, app[1]) if app is not None else None
            return rec, app[0] if app is not None else None
        rec = repo.user_by_name(tx, cred.key)
        if rec is not None and app is not None and app[1] == rec.id:
            return rec, app[0]
        return rec, None

    def _secret_holds(self, cred: Credentials, rec: UserRecord | None, app_id: int | None) -> bool:
        """True if the secret is right for an enabled account. Every failing password path pays
        one argon2 verification, so timing tells nothing about who exists or is disabled."""
        if cred.login is None:  # bearer: a SHA-256 lookup, no argon2 on either side
            return rec is not None and app_id is not None and not rec.disabled
        if rec is None or (rec.disabled and app_id is not None):
            self._argon2(self._dummy(), cred.secret)
            return False
        if app_id is not None:
            return True
        return self._argon2(rec.password_hash, cred.secret) and not rec.disabled

    def _argon2(self, password_hash: str, secret: str) -> bool:
        with self._argon2_slots:
            try:
                return bool(HASHER.verify(password_hash, secret))
            except (VerificationError, InvalidHashError):
                return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = HASHER.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _count_failure(self, keys: tuple[bytes, bytes], cred: Credentials, address: str,
                       rec: UserRecord | None) -> None:
        """Count the failure and record it in the audit log, in one transaction."""
        now = self.core.clock()
        cost = self.policy.failure_cost
        purge = now - self._last_purge > cost  # a few deletes a minute keep the table small

        def count(tx: Tx) -> None:
            for key in keys:
                counters.add(tx, key, now, cost)
            actor = audit.Actor(cred.login if cred.login is not None else "", address)
            if cred.login is None:
                detail = "bearer token"
            elif rec is None:
                detail = "unknown user"
            else:
                detail = "disabled account" if rec.disabled else "wrong password"
            audit.record_in(tx, self.core, "login", actor, object="" if rec is None else f"user:{rec.name}",
                            outcome=audit.FAILURE, detail=detail)
            if purge:
                counters.purge(tx, now)

        self.core.db.transact(count)
        if purge:
            self._last_purge = now
