# SPDX-License-Identifier: EUPL-1.2
"""The audit log: what is recorded (and what is not, on the hot path), queries, hostile text,
atomicity with the change, and retention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cartable.core import accounts, audit, login_flow
from cartable.core.audit import Actor
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, Unauthenticated
from cartable.store.meta.schema import audit_events
from tests.core.conftest import FakeClock, make_core

DAY = 86400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(tmp_path: Path, clock: FakeClock) -> Iterator[Core]:
    c = make_core(tmp_path, clock, audit_retention_days=30.0)
    accounts.create_user(c, "alice", "alice-secret-pw")
    yield c
    c.db.dispose()


def rows(core: Core) -> int:
    with core.db.read() as tx:
        return int(tx.execute(select(func.count()).select_from(audit_events)).scalar_one())


def test_record_and_query_by_user_event_outcome_and_time(core: Core, clock: FakeClock) -> None:
    t0 = clock.now
    audit.record(core, "login", Actor("Alice", "192.0.2.1"), object="user:alice", outcome=audit.FAILURE,
                 detail="wrong password")
    clock.advance(60)
    audit.record(core, "login", Actor("bob", "192.0.2.2"), outcome=audit.FAILURE)
    clock.advance(60)
    audit.record(core, "group.created", Actor("cli:root"), object="group:profs")
    assert [e.event for e in audit.query(core)] == ["group.created", "login", "login", "user.created"]
    assert [e.actor for e in audit.query(core, user="ALICE")] == ["Alice"]  # ASCII case ignored
    first = audit.query(core, user="alice")[0]
    assert (first.at, first.event, first.address, first.object, first.outcome, first.detail) == \
        (t0, "login", "192.0.2.1", "user:alice", "failure", "wrong password")
    assert [e.actor for e in audit.query(core, event="login")] == ["bob", "Alice"]
    assert len(audit.query(core, outcome="failure")) == 2
    assert [e.actor for e in audit.query(core, event="login", since=t0 + 60)] == ["bob"]
    assert [e.actor for e in audit.query(core, event="login", until=t0 + 60)] == ["Alice"]  # until: exclusive
    assert [e.actor for e in audit.query(core, event="login", limit=1)] == ["bob"]  # the most recent


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"event": "nope"}, "unknown event 'nope'"),
    ({"outcome": "maybe"}, "unknown outcome 'maybe'"),
    ({"limit": 0}, "the limit must be between 1 and 100000"),
    ({"limit": 100_001}, "the limit must be between 1 and 100000"),
    ({"since": 10.0, "until": 10.0}, "the end of the period must come after its start"),
])
def test_bad_queries_are_refused(core: Core, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        audit.query(core, **kwargs)  # type: ignore[arg-type]


def test_unknown_events_are_a_programming_error(core: Core) -> None:
    with pytest.raises(ValueError, match="add it to core.audit.EVENTS"):
        audit.record(core, "share.created.typo", Actor("alice"))
    with pytest.raises(ValueError, match="unknown audit outcome"):
        audit.record(core, "login", Actor("alice"), outcome="ok")


def test_hostile_text_is_cut_and_cannot_drive_a_terminal(core: Core) -> None:
    before = rows(core)
    audit.record(core, "login", Actor("\x1b[2J\x1b[31mroot\r\n" + "x" * 1000, "::1\x00" + "9" * 100),
                 object="o" * 5000, outcome=audit.FAILURE, detail="\u202eevil\x07" + "d" * 5000)
    e = audit.query(core, event="login")[0]
    assert rows(core) == before + 1
    assert len(e.actor) == 255 and e.actor.startswith("\ufffd[2J\ufffd[31mroot\ufffd\ufffd")
    assert "\x1b" not in e.actor and "\x00" not in e.address and len(e.address) == 64
    assert len(e.object) == 1024 and len(e.detail) == 2048 and e.detail.startswith("\ufffdevil\ufffd")


def test_an_event_recorded_in_a_transaction_that_fails_is_not_kept(core: Core) -> None:
    before = rows(core)
    with pytest.raises(RuntimeError):
        with core.db.write() as tx:
            audit.record_in(tx, core, "group.created", Actor("cli:root"), object="group:x")
            raise RuntimeError("the change failed")
    assert rows(core) == before


def test_failed_logins_are_recorded_and_cached_successes_write_nothing(core: Core) -> None:
    auth = Authenticator(core)
    auth.policy = type(auth.policy)(max_delay=0.0)  # no throttling wait in this test
    with pytest.raises(Unauthenticated):
        auth.authenticate("ALICE", "wrong-password", "203.0.113.7")
    with pytest.raises(Unauthenticated):
        auth.authenticate("nobody\x1b", "whatever-pw", "203.0.113.8")
    with pytest.raises(Unauthenticated):
        auth.authenticate(None, "x" * 72, "203.0.113.9")  # a bearer token that is no app password
    failures = [(e.actor, e.address, e.object, e.detail) for e in reversed(audit.query(core, event="login"))]
    assert failures == [("ALICE", "203.0.113.7", "user:alice", "wrong password"),
                        ("nobody\ufffd", "203.0.113.8", "", "unknown user"),
                        ("", "203.0.113.9", "", "bearer token")]
    assert all(e.outcome == "failure" for e in audit.query(core, event="login"))
    before = rows(core)
    auth.authenticate("alice", "alice-secret-pw", "203.0.113.7")  # verified: no event (see core/audit.py)
    for _ in range(20):
        auth.authenticate("alice", "alice-secret-pw", "203.0.113.7")  # served from the cache
    assert rows(core) == before
    accounts.set_disabled(core, "alice", True)
    with pytest.raises(Unauthenticated):
        auth.authenticate("alice", "alice-secret-pw", "203.0.113.7")
    assert audit.query(core, event="login", limit=1)[0].detail == "disabled account"


def test_logins_that_create_access_are_recorded(core: Core) -> None:
    auth = Authenticator(core)
    alice = auth.authenticate("alice", "alice-secret-pw", "198.51.100.4")
    token, _poll = login_flow.start(core, "Nextcloud desktop")
    login_flow.grant(core, token, alice, "198.51.100.4")
    events = [(e.event, e.actor, e.address, e.detail) for e in reversed(audit.query(core, user="alice"))]
    assert events[0] == ("login", "alice", "198.51.100.4", "login flow v2")
    assert events[1][:3] == ("app_password.created", "alice", "198.51.100.4")
    assert events[1][3] == "user:alice device:Nextcloud desktop"
    pw = accounts.create_app_password(core, "alice", "phone", actor=Actor("alice", "198.51.100.5"), login=True)
    assert len(pw) == 72
    app_id = accounts.list_app_passwords(core, "alice")[-1].id
    accounts.revoke_app_password(core, "alice", app_id, actor=Actor("alice", "198.51.100.5"))
    last = [(e.event, e.object) for e in audit.query(core, user="alice", limit=3)]
    assert last == [("app_password.revoked", f"app_password:{app_id}"),
                    ("app_password.created", f"app_password:{app_id}"), ("login", "user:alice")]


def test_retention_purges_old_events_only(core: Core, clock: FakeClock) -> None:
    audit.record(core, "login", Actor("old"), outcome=audit.FAILURE)  # with user.created, at day 0
    clock.advance(29 * DAY)
    audit.record(core, "login", Actor("recent"), outcome=audit.FAILURE)
    assert audit.purge_audit(core) == 0  # retention is 30 days: nothing is that old yet
    clock.advance(2 * DAY)
    assert audit.purge_audit(core) == 2
    assert [e.actor for e in audit.query(core)] == ["recent"]
    clock.advance(30 * DAY)
    assert audit.purge_audit(core) == 1 and audit.query(core) == []
    assert audit.purge_audit(core) == 0


def test_retention_zero_keeps_everything(tmp_path: Path, clock: FakeClock) -> None:
    core = make_core(tmp_path, clock, audit_retention_days=0.0)
    try:
        audit.record(core, "login", Actor("x"), outcome=audit.FAILURE)
        clock.advance(10_000 * DAY)
        assert audit.purge_audit(core) == 0 and len(audit.query(core)) == 1
    finally:
        core.db.dispose()
