# SPDX-License-Identifier: EUPL-1.2
"""Groups, the sharee search and the audit log on PostgreSQL: the same rules as on SQLite
(case-blind unique names, ON CONFLICT memberships, literal LIKE patterns, Unicode case folding,
retention)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.core import accounts, audit, directory, groups
from cartable.core.audit import Actor
from cartable.core.auth import Authenticator
from cartable.core.context import Core, Limits
from cartable.core.errors import AlreadyExists
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta.engine import MetaDB
from cartable.store.meta.migrate import upgrade
from tests.core.conftest import FakeClock
from tests.engines import drop_database, engine, new_database

pytestmark = pytest.mark.pg


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    pg = engine("postgres")
    url = new_database(pg)
    db = MetaDB(url)
    upgrade(db)
    c = Core(db, LocalChunkStore(tmp_path / "chunks"), Limits(audit_retention_days=30.0))
    c.clock = FakeClock()  # type: ignore[assignment]
    for name, shown in (("alice", "Alice Martin"), ("bob", "Bob Élève")):
        accounts.create_user(c, name, f"{name}-secret-pw", display_name=shown)
    try:
        yield c
    finally:
        db.dispose()
        drop_database(pg, url)


def test_groups_memberships_and_search_on_postgresql(core: Core) -> None:
    groups.create_group(core, "Profs", "Professeurs du LYCÉE")
    with pytest.raises(AlreadyExists, match="unique without regard to case"):
        groups.create_group(core, "profs")
    groups.create_group(core, "eleves", "Élèves")
    results: list[bool] = []
    start = threading.Barrier(6)

    def add() -> None:
        start.wait()
        results.append(groups.add_member(core, "profs", "bob"))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert [m.name for m in groups.members(core, "PROFS")] == ["bob"]
    assert [g.name for g in groups.search_groups(core, "lycée")] == ["Profs"]  # Unicode case folding
    assert groups.search_groups(core, "%") == [] and groups.search_groups(core, "_") == []
    accounts.delete_user(core, "bob")
    assert groups.members(core, "profs") == []
    groups.delete_group(core, "profs")
    assert [g.name for g in groups.list_groups(core)] == ["eleves"]


def test_sharees_and_audit_on_postgresql(core: Core) -> None:
    alice = Authenticator(core).authenticate("alice", "alice-secret-pw", "192.0.2.1")
    found = directory.search_sharees(core, alice, "ÉLÈ")
    assert [s.name for s in found.users] == ["bob"] and [s.name for s in found.groups] == []
    assert directory.search_sharees(core, alice, "%").users == []
    assert [s.name for s in directory.search_sharees(core, alice, "BOB").exact_users] == ["bob"]
    audit.record(core, "login", Actor("Mallory\x1b", "192.0.2.9"), outcome=audit.FAILURE)
    assert [e.actor for e in audit.query(core, user="mallory\ufffd")] == ["Mallory\ufffd"]
    core.clock.advance(31 * 86400)  # type: ignore[attr-defined]
    assert audit.purge_audit(core) == 3  # two user.created, one login
    assert audit.query(core) == []
