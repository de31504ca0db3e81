# SPDX-License-Identifier: EUPL-1.2
"""Authentication tried as an attacker would: guessing passwords must slow the attacker down and
never lock the account's owner out; counters live in the database (restarts, several nodes);
Retry-After tells the truth; Bearer app passwords; user names without regard to case."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cartable.core import accounts
from cartable.core.auth import Attempt, Authenticator, Credentials, ThrottlePolicy, delay_for
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, InvalidInput, Throttled, Unauthenticated
from cartable.core.model import Principal
from cartable.server import build_app, open_core
from cartable.store.meta.schema import login_counters
from tests.conftest import DAV, PASSWORD, make_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

A, B = "198.51.100.7", "203.0.113.9"
FAST = {"login_max_delay_seconds": 0.01}  # the delay's length is checked on the core, not waited for


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(core: Core) -> Clock:
    c = Clock()
    core.clock = c
    return c


@pytest.fixture
def make_client(core: Core, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Clients of one app (settings ``extra``) seen from a given address."""
    opened: list[TestClient] = []

    def make(address: str, **extra: Any) -> TestClient:
        app = build_app(make_settings(tmp_path / "data", **{**FAST, **extra}), core)
        tc = TestClient(app, base_url="http://testserver", client=(address, 40000))
        tc.__enter__()
        opened.append(tc)
        return tc

    yield make
    for tc in opened:
        tc.__exit__(None, None, None)


def fail(auth: Authenticator, login: str | None, secret: str, address: str) -> None:
    """One wrong guess through both steps, without sleeping the delay (tests check its length)."""
    cred = Credentials(login, secret)
    attempt = auth.check(cred, address)
    assert isinstance(attempt, Attempt)
    with pytest.raises(Unauthenticated):
        auth.verify(cred, address, attempt)


def propfind(tc: TestClient, auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None,
             path: str = DAV + "/") -> int:
    r = tc.request("PROPFIND", path, auth=auth, headers={"Depth": "0", **(headers or {})})
    return r.status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("guesses", [10, pytest.param(100, marks=pytest.mark.slow)])
def test_guessing_alices_password_does_not_lock_her_out(core: Core, make_client: Callable[..., TestClient],
                                                        guesses: int) -> None:
    token = accounts.create_app_password(core, "alice", "laptop")
    attacker, elsewhere = make_client(A), make_client(B)
    statuses = {propfind(attacker, ("alice", f"guess-{i}")) for i in range(guesses)}
    assert statuses == {401}, "below the cap every guess is answered, slowly, and none is refused"

    # From another address: at once (no delay at all), with the password, the app password and Bearer.
    auth = Authenticator(core)  # a fresh node: it only knows what the database holds
    found = auth.check(Credentials("alice", PASSWORD), B)
    assert isinstance(found, Attempt) and found.delay == 0
    assert propfind(elsewhere, ("alice", PASSWORD)) == 207
    assert propfind(elsewhere, ("alice", token)) == 207
    assert propfind(elsewhere, headers=bearer(token)) == 207

    # From the attacker's own address (a shared school network): after at most the delay.
    found = auth.check(Credentials("alice", PASSWORD), A)
    assert isinstance(found, Attempt) and 0 < found.delay <= ThrottlePolicy().max_delay
    assert propfind(attacker, ("alice", PASSWORD)) == 207
    assert propfind(attacker, ("alice", token)) == 207


def test_delay_grows_exponentially_and_is_capped() -> None:
    assert delay_for(0, 25) == 0
    assert [delay_for(n, 25) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert delay_for(7, 25) == pytest.approx(12.8)
    assert delay_for(8, 25) == delay_for(10, 25) == delay_for(10_000, 25) == 25
    assert delay_for(0.3, 25) == 0.2, "a partly forgotten failure still counts as one"


def test_ten_failures_cost_the_attacker_the_maximum_delay(core: Core, clock: Clock) -> None:
    auth = Authenticator(core)  # default policy: 0.1 s × 2^n, at most 25 s
    for i in range(10):
        attempt = auth.check(Credentials("alice", f"guess-{i}"), A)
        assert isinstance(attempt, Attempt) and attempt.delay == delay_for(i, 25.0)
        fail(auth, "alice", f"guess-{i}", A)
    found = auth.check(Credentials("alice", PASSWORD), A)
    assert isinstance(found, Attempt) and found.delay == 25.0
    assert isinstance(auth.verify(Credentials("alice", PASSWORD), A, found), Principal)
    # The success cleared alice's record from A, not A's record of failures.
    found = auth.check(Credentials("alice", PASSWORD + "x"), A)
    assert isinstance(found, Attempt) and found.delay == delay_for(10 * 200 / 2000, 25.0)


def test_a_cached_credential_skips_throttling(core: Core, clock: Clock,
                                             make_client: Callable[..., TestClient]) -> None:
    attacker = make_client(A, login_max_failures_per_user=5)
    assert propfind(attacker, ("alice", PASSWORD)) == 207  # alice's client, verified and cached
    statuses = [propfind(attacker, ("alice", f"guess-{i}")) for i in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert propfind(attacker, ("alice", PASSWORD)) == 207, "her running client is not locked out"


def test_only_a_counter_at_its_cap_refuses_and_retry_after_is_true(
        core: Core, clock: Clock, make_client: Callable[..., TestClient]) -> None:
    attacker = make_client(A, login_max_failures_per_user=3, login_failure_decay_seconds=30)
    for t in (0, 10, 20):  # counts leak one per 30 s: after these three, 2.33 at t=20
        clock.now += 10 if t else 0
        assert propfind(attacker, ("alice", f"guess-{t}")) == 401
    assert propfind(attacker, ("alice", "one-more")) == 401  # 3.33: the cap is reached now
    r = attacker.request("PROPFIND", DAV + "/", auth=("alice", PASSWORD), headers={"Depth": "0"})
    assert r.status_code == 429
    retry_after = int(r.headers["retry-after"])
    assert retry_after == 11  # the count falls from 3.33 to below 3 in 10 s
    assert "try again in 11 s" in r.text
    start = clock.now
    clock.now = start + retry_after / 2  # half-way: still refused, and told the rest only
    r = attacker.request("PROPFIND", DAV + "/", auth=("alice", PASSWORD), headers={"Depth": "0"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) < retry_after
    clock.now = start + retry_after - 1.01
    assert propfind(attacker, ("alice", PASSWORD)) == 429
    clock.now = start + retry_after
    assert propfind(attacker, ("alice", PASSWORD)) == 207, "Retry-After later, the right password passes"


def test_the_address_cap_refuses_only_that_address(core: Core, clock: Clock,
                                                  make_client: Callable[..., TestClient]) -> None:
    attacker, elsewhere = make_client(A, login_max_failures_per_address=8), make_client(B)
    statuses = [propfind(attacker, (f"user{i}", "wrong-password")) for i in range(10)]
    assert statuses == [401] * 8 + [429] * 2
    r = attacker.request("PROPFIND", DAV + "/", auth=("somebody-new", "pw"), headers={"Depth": "0"})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
    assert propfind(elsewhere, ("alice", PASSWORD)) == 207


def test_failures_against_other_accounts_delay_but_do_not_refuse(core: Core, clock: Clock) -> None:
    auth = Authenticator(core, policy=ThrottlePolicy(max_per_user=10, max_per_address=24))
    for i in range(12):
        fail(auth, f"user{i}", "wrong-password", A)
    found = auth.check(Credentials("alice", PASSWORD), A)
    assert isinstance(found, Attempt) and found.delay == delay_for(12 * 10 / 24, 25.0) == 3.2
    assert auth.verify(Credentials("alice", PASSWORD), A, found).name == "alice"


def test_counters_survive_a_restart_and_are_shared_by_nodes(core: Core, tmp_path: Path, clock: Clock,
                                                            make_client: Callable[..., TestClient]) -> None:
    node1 = make_client(A, login_max_failures_per_user=4)
    other_core = open_core(make_settings(tmp_path / "data"))  # a second node on the same database
    other_core.clock = clock
    try:
        node2 = TestClient(build_app(make_settings(tmp_path / "data", login_max_failures_per_user=4, **FAST),
                                     other_core), client=(A, 40001))
        assert [propfind(node1, ("alice", "g1")), propfind(node2, ("alice", "g2")),
                propfind(node1, ("alice", "g3")), propfind(node2, ("alice", "g4"))] == [401] * 4
        assert propfind(node1, ("alice", "g5")) == 429
        assert propfind(node2, ("alice", "g5")) == 429
        restarted = Authenticator(other_core, policy=ThrottlePolicy(max_per_user=4))
        with pytest.raises(Throttled):
            restarted.check(Credentials("alice", PASSWORD), A)
        assert isinstance(restarted.check(Credentials("alice", PASSWORD), B), Attempt)
    finally:
        other_core.db.dispose()


def test_a_success_does_not_wipe_failures_against_other_accounts(core: Core, clock: Clock) -> None:
    accounts.create_user(core, "bob", "bob-password-1")
    policy = ThrottlePolicy(max_per_user=3, max_per_address=1000)
    auth = Authenticator(core, policy=policy)
    for i in range(3):
        for user in ("alice", "bob"):
            fail(auth, user, f"guess-{i}", A)
    with pytest.raises(Throttled):
        auth.check(Credentials("bob", "bob-password-1"), A)
    with pytest.raises(Throttled):
        auth.check(Credentials("alice", PASSWORD), A)
    clock.now += 61  # alice's and bob's counts fall below 3, both still have failures
    assert auth.authenticate("alice", PASSWORD, A).name == "alice"
    found = auth.check(Credentials("bob", "bob-password-1"), A)
    assert isinstance(found, Attempt) and found.user_failures and found.delay > 0
    found = auth.check(Credentials("alice", PASSWORD + "-not-cached"), A)
    assert isinstance(found, Attempt) and not found.user_failures


def rows(core: Core) -> int:
    with core.db.read() as tx:
        return int(tx.execute(select(func.count()).select_from(login_counters)).scalar_one())


def test_random_user_names_cost_rows_that_are_purged(core: Core, clock: Clock) -> None:
    auth = Authenticator(core, policy=ThrottlePolicy(failure_cost=60.0))
    for i in range(12):
        fail(auth, f"random-{i}-" + "x" * 200, "wrong-password", A)
    assert rows(core) == 13  # one per (address, name) and one for the address; keys are fixed-size hashes
    assert auth._cache == {}, "failures keep nothing in process memory"
    clock.now += 60 * 12 + 1  # the address counter (12 failures) has leaked away too
    assert auth.purge() == 13
    assert rows(core) == 0
    fail(auth, "somebody", "wrong-password", A)
    clock.now += 61 + 60
    fail(auth, "somebody-else", "wrong-password", A)  # purges expired rows on its way (once a decay period)
    assert rows(core) == 2


class CountingHasher:
    """The real argon2 hasher, counting verifications."""

    def __init__(self, real: Any) -> None:
        self.real, self.verifications = real, 0

    def verify(self, password_hash: str, secret: str) -> bool:
        self.verifications += 1
        return bool(self.real.verify(password_hash, secret))

    def hash(self, secret: str) -> str:
        return str(self.real.hash(secret))


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "disabled, right password",
                                  "disabled, wrong password", "disabled, app password", "right password"])
def test_every_password_check_costs_one_argon2(core: Core, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    import cartable.core.auth as auth_module

    token = accounts.create_app_password(core, "alice", "laptop")
    if case.startswith("disabled"):
        accounts.set_disabled(core, "alice", True)
    login, secret = {"wrong password": ("alice", "wrong-password"), "unknown user": ("nobody", PASSWORD),
                     "disabled, right password": ("alice", PASSWORD),
                     "disabled, wrong password": ("alice", "wrong-password"),
                     "disabled, app password": ("alice", token), "right password": ("alice", PASSWORD)}[case]
    counting = CountingHasher(auth_module.HASHER)
    monkeypatch.setattr(auth_module, "HASHER", counting)
    auth = Authenticator(core)
    auth._dummy()  # the dummy hash is made once per process, not per attempt
    if case == "right password":
        assert auth.authenticate(login, secret, A).name == "alice"
    else:
        with pytest.raises(Unauthenticated):
            auth.authenticate(login, secret, A)
    assert counting.verifications == 1


def test_bearer_app_password_works_wherever_basic_does(core: Core, make_client: Callable[..., TestClient]) -> None:
    token = accounts.create_app_password(core, "alice", "laptop")
    tc = make_client(A)
    assert propfind(tc, headers=bearer(token)) == 207
    assert tc.put(DAV + "/b.txt", content=b"bearer", headers=bearer(token)).status_code == 201
    assert tc.get(DAV + "/b.txt", headers=bearer(token)).content == b"bearer"
    assert tc.request("PROPFIND", "/remote.php/webdav/", headers={"Depth": "0", **bearer(token)}).status_code == 207
    r = tc.get("/ocs/v2.php/cloud/user?format=json", headers={"OCS-APIRequest": "true", **bearer(token)})
    assert r.status_code == 200 and r.json()["ocs"]["data"]["id"] == "alice"
    assert tc.request("MKCOL", "/remote.php/dav/uploads/alice/u1", headers=bearer(token)).status_code == 201
    r = tc.put("/remote.php/dav/uploads/alice/u1/00001", content=b"chunk", headers=bearer(token))
    assert r.status_code == 201
    r = tc.request("MOVE", "/remote.php/dav/uploads/alice/u1/.file",
                   headers={"Destination": DAV + "/assembled.txt", **bearer(token)})
    assert r.status_code in (201, 204), r.text
    assert tc.get(DAV + "/assembled.txt", headers=bearer(token)).content == b"chunk"


def test_bearer_for_bulk_upload_and_search(core: Core, make_client: Callable[..., TestClient]) -> None:
    from tests.nextcloud.davhelp import bulk_body, bulk_part, cmp, names, search_body

    token = accounts.create_app_password(core, "alice", "laptop")
    tc = make_client(A)
    body = bulk_body(bulk_part("/bulk-a.txt", b"A"), bulk_part("/bulk-b.txt", b"B"))
    r = tc.post("/remote.php/dav/bulk", content=body,
                headers={"Content-Type": "multipart/related; boundary=boundary_azertyuiop", **bearer(token)})
    assert r.status_code == 200, r.text
    assert tc.get(DAV + "/bulk-b.txt", headers=bearer(token)).content == b"B"
    query = search_body(cmp("like", "<d:displayname/>", "bulk-%"))
    r = tc.request("SEARCH", "/remote.php/dav/", content=query,
                   headers={"Content-Type": "text/xml", **bearer(token)})
    assert r.status_code == 207 and sorted(names(r)) == ["bulk-a.txt", "bulk-b.txt"]
    r = tc.request("SEARCH", "/remote.php/dav/", content=query,
                   headers={"Content-Type": "text/xml", **bearer("y" * 72)})
    assert r.status_code == 401


@pytest.mark.parametrize("token", ["", "not-an-app-password", PASSWORD, "x" * 72])
def test_bearer_needs_an_app_password(core: Core, make_client: Callable[..., TestClient], token: str) -> None:
    tc = make_client(A)
    r = tc.request("PROPFIND", DAV + "/", headers={"Depth": "0", "Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")


def test_a_revoked_bearer_token_stops_at_once(core: Core, make_client: Callable[..., TestClient]) -> None:
    token = accounts.create_app_password(core, "alice", "laptop")
    tc = make_client(A)
    assert propfind(tc, headers=bearer(token)) == 207  # cached now
    (rec,) = accounts.list_app_passwords(core, "alice")
    accounts.revoke_app_password(core, "alice", rec.id)
    assert propfind(tc, headers=bearer(token)) == 401
    accounts.create_app_password(core, "alice", "phone")
    accounts.set_disabled(core, "alice", True)
    assert propfind(tc, headers=bearer(token)) == 401


def test_wrong_bearer_tokens_are_throttled_like_passwords(core: Core, clock: Clock,
                                                          make_client: Callable[..., TestClient]) -> None:
    token = accounts.create_app_password(core, "alice", "laptop")
    attacker, elsewhere = make_client(A, login_max_failures_per_user=4), make_client(B)
    statuses = [propfind(attacker, headers=bearer("guess" * 10 + str(i))) for i in range(6)]
    assert statuses == [401] * 4 + [429] * 2
    assert propfind(elsewhere, headers=bearer(token)) == 207


def test_user_names_are_unique_without_regard_to_case(core: Core, make_client: Callable[..., TestClient]) -> None:
    with pytest.raises(AlreadyExists, match="'alice' already exists"):
        accounts.create_user(core, "Alice", "another-password")
    with pytest.raises(AlreadyExists, match="'alice' already exists"):
        accounts.create_user(core, "ALICE", "another-password")
    tc = make_client(A)
    for login in ("alice", "ALICE", "Alice"):
        r = tc.get("/ocs/v2.php/cloud/user?format=json", auth=(login, PASSWORD), headers={"OCS-APIRequest": "true"})
        assert r.status_code == 200 and r.json()["ocs"]["data"]["id"] == "alice", "the name stays canonical"
    assert tc.put(DAV + "/a.txt", content=b"a", auth=("ALICE", PASSWORD)).status_code == 201
    # The files URL names the account in its canonical spelling; another spelling is nobody's
    # tree (404, saying where the files are), never a silently shifted path.
    r = tc.get("/remote.php/dav/files/ALICE/a.txt", auth=("ALICE", PASSWORD))
    assert r.status_code == 404 and "/remote.php/dav/files/alice/" in r.text
    assert accounts.get_user(core, "ALICE").name == "alice"
    # Another account never reaches alice's files, whatever the spelling.
    accounts.create_user(core, "bob", "bob-password-1")
    for spelling in ("alice", "ALICE", "Alice", "%41lice"):
        r = tc.get(f"/remote.php/dav/files/{spelling}/a.txt", auth=("bob", "bob-password-1"))
        assert r.status_code == 403, spelling
        r = tc.request("MKCOL", f"/remote.php/dav/uploads/{spelling}/u2", auth=("bob", "bob-password-1"))
        assert r.status_code == 403, spelling
    # A non-ASCII look-alike never folds onto an ASCII name (K is the Kelvin sign).
    accounts.create_user(core, "kim", "kim-password-1")
    assert propfind(tc, ("\u212aim", "kim-password-1"), path="/remote.php/dav/files/kim/") == 401


@pytest.mark.parametrize("name", ["", "a" * 65, "-alice", ".alice", "al ice", "alice\n", "élodie", "al/ice",
                                  "al:ice", "\u212aim"])
def test_login_names_follow_the_documented_rule(core: Core, name: str) -> None:
    with pytest.raises(InvalidInput, match="letters, digits"):
        accounts.create_user(core, name, "long-enough-pw")


def test_display_names_may_have_accents(core: Core, make_client: Callable[..., TestClient]) -> None:
    accounts.create_user(core, "elodie", "elodie-password", display_name="  E\u0301lodie Dupré-Ørsted  ")
    assert accounts.get_user(core, "elodie").display_name == "Élodie Dupré-Ørsted"  # NFC, trimmed
    r = make_client(A).get("/ocs/v1.php/cloud/user?format=json", auth=("elodie", "elodie-password"))
    assert r.json()["ocs"]["data"]["displayname"] == "Élodie Dupré-Ørsted"
    for bad in ("a\nb", "evil\u202egnp.exe", "x" * 256):
        with pytest.raises(InvalidInput, match="display name"):
            accounts.create_user(core, "other", "other-password", display_name=bad)


def test_basic_credentials_of_every_kind_are_parsed() -> None:
    from cartable.http.basic import parse_authorization

    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert parse_authorization(basic("alice:pw:with:colons")) == Credentials("alice", "pw:with:colons")
    assert parse_authorization("bearer  abc ") == Credentials(None, "abc")
    for header in (None, "", "Bearer", "Bearer   ", "Digest x", basic("nocolon"), basic(":pw")):
        with pytest.raises(Unauthenticated):
            parse_authorization(header)


def test_many_connections_with_one_new_credential_cost_one_argon2(core: Core,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A desktop client opens several connections at once after a restart: the first
    verification runs argon2, the others wait for it and take its cached result. Found by the
    bench: 16 connections of one user took 1 GiB (64 MiB per argon2) and seconds before this."""
    import threading

    import cartable.core.auth as auth_module

    counting = CountingHasher(auth_module.HASHER)
    monkeypatch.setattr(auth_module, "HASHER", counting)
    auth = Authenticator(core)
    cred = Credentials("alice", PASSWORD)
    start = threading.Barrier(16)
    names: list[str] = []

    def connect() -> None:
        attempt = auth.check(cred, A)
        assert isinstance(attempt, Attempt)
        start.wait()
        names.append(auth.verify(cred, A, attempt).name)

    threads = [threading.Thread(target=connect) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert names == ["alice"] * 16
    assert counting.verifications == 1


def test_argon2_runs_at_most_a_few_at_once(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """Different wrong passwords in parallel: each pays argon2, never more than ARGON2_AT_ONCE
    at the same time (each holds 64 MiB)."""
    import threading
    import time

    import cartable.core.auth as auth_module

    running, most = [0], [0]
    lock = threading.Lock()

    class Slow(CountingHasher):
        def verify(self, password_hash: str, secret: str) -> bool:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return super().verify(password_hash, secret)

    monkeypatch.setattr(auth_module, "HASHER", Slow(auth_module.HASHER))
    auth = Authenticator(core, policy=ThrottlePolicy(max_per_user=1000, max_per_address=1000))

    def guess(i: int) -> None:
        with pytest.raises(Unauthenticated):
            auth.verify(Credentials("alice", f"guess-{i}"), A, Attempt(0.0, throttled=False, user_failures=False))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most[0] <= auth_module.ARGON2_AT_ONCE
