# SPDX-License-Identifier: EUPL-1.2
"""Groups and memberships in core: names, case, hostile input, membership changes, concurrency,
and the audit events each change leaves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cartable.core import accounts, audit, groups
from cartable.core.audit import Actor
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, InvalidInput, NotFound
from cartable.store.meta.schema import memberships
from tests.core.conftest import FakeClock, make_core

ADMIN = Actor("cli:root")


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    c = make_core(tmp_path, FakeClock())
    for name in ("alice", "bob"):
        accounts.create_user(c, name, f"{name}-secret-pw")
    yield c
    c.db.dispose()


def test_create_get_list_and_search(core: Core) -> None:
    info = groups.create_group(core, "profs", "Professeurs du lycée", actor=ADMIN)
    assert (info.name, info.display_name) == ("profs", "Professeurs du lycée")
    assert groups.create_group(core, "Eleves").display_name == "Eleves"  # the name by default
    assert groups.get_group(core, "PROFS") == info  # found without regard to case
    assert [g.name for g in groups.list_groups(core)] == ["Eleves", "profs"]  # case-blind order
    assert [g.name for g in groups.list_groups(core, limit=1, offset=1)] == ["profs"]
    assert [g.name for g in groups.search_groups(core, "LYCÉE")] == ["profs"]  # display name, Unicode case
    assert [g.name for g in groups.search_groups(core, " elev ")] == ["Eleves"]
    assert groups.search_groups(core, "_") == [] and groups.search_groups(core, "%") == []  # literal
    assert len(groups.search_groups(core, "")) == 2
    with pytest.raises(NotFound, match="no group named 'nope'"):
        groups.get_group(core, "nope")


def test_names_differing_only_by_case_are_one_group(core: Core) -> None:
    groups.create_group(core, "Profs")
    with pytest.raises(AlreadyExists) as exc:
        groups.create_group(core, "profs")
    assert str(exc.value) == "a group named 'Profs' already exists (group names are unique without regard to case)"
    with pytest.raises(AlreadyExists, match="^a group named 'Profs' already exists$"):
        groups.create_group(core, "Profs")
    assert [g.name for g in groups.list_groups(core)] == ["Profs"]


@pytest.mark.parametrize("name", ["", "a" * 65, "pro\x00fs", "../x", "x/y", " profs", "pro fs", "élèves", "-x",
                                  ".hidden", "profs\n", "a\u202eb", "groupe:x"])
def test_hostile_group_names_are_refused_and_change_nothing(core: Core, name: str) -> None:
    with pytest.raises(InvalidInput, match="must be 1-64 letters, digits or"):
        groups.create_group(core, name)
    assert groups.list_groups(core) == []
    assert audit.query(core, event="group.created") == []
    with pytest.raises(NotFound):
        groups.add_member(core, name, "alice")


@pytest.mark.parametrize("shown", ["\x00", "a\nb", "a\u202eb", "x" * 256, "tab\there"])
def test_hostile_display_names_are_refused(core: Core, shown: str) -> None:
    with pytest.raises(InvalidInput):
        groups.create_group(core, "profs", shown)
    assert groups.list_groups(core) == []
    groups.create_group(core, "profs", "Profs")
    with pytest.raises(InvalidInput):
        groups.set_display_name(core, "profs", shown)
    assert groups.get_group(core, "profs").display_name == "Profs"


def test_the_longest_name_and_display_name_are_accepted(core: Core) -> None:
    info = groups.create_group(core, "g" * 64, "É" * 255)
    assert groups.get_group(core, "G" * 64) == info


def test_members_are_added_and_removed(core: Core) -> None:
    groups.create_group(core, "profs")
    groups.create_group(core, "cdi")
    assert groups.add_member(core, "profs", "ALICE", actor=ADMIN) is True
    assert groups.add_member(core, "Profs", "alice", actor=ADMIN) is False  # already in: nothing changes
    assert groups.add_member(core, "cdi", "alice") is True
    assert groups.add_member(core, "profs", "bob") is True
    assert [m.name for m in groups.members(core, "profs")] == ["alice", "bob"]
    assert [g.name for g in groups.groups_of(core, "alice")] == ["cdi", "profs"]
    assert groups.remove_member(core, "profs", "bob", actor=ADMIN) is True
    assert groups.remove_member(core, "profs", "bob") is False
    assert [m.name for m in groups.members(core, "profs")] == ["alice"]
    with pytest.raises(NotFound, match="no user named 'carol'"):
        groups.add_member(core, "profs", "carol")
    with pytest.raises(NotFound, match="no group named 'nope'"):
        groups.remove_member(core, "nope", "alice")
    with pytest.raises(NotFound):
        groups.groups_of(core, "carol")
    # what shares will read inside their own transaction
    with core.db.read() as tx:
        profs = groups.group_named(tx, "PROFS")
        assert profs is not None
        alice = accounts.get_user(core, "alice").id
        assert groups.member_ids(tx, profs.id) == [alice]
        assert sorted(groups.group_ids_of_user(tx, alice)) == sorted(
            [profs.id, groups.get_group(core, "cdi").id])
        assert groups.group_named(tx, "bad name") is None


def test_deleting_a_group_or_a_user_deletes_their_memberships(core: Core) -> None:
    for g in ("profs", "cdi"):
        groups.create_group(core, g)
        groups.add_member(core, g, "alice")
        groups.add_member(core, g, "bob")
    groups.delete_group(core, "PROFS", actor=ADMIN)
    with pytest.raises(NotFound):
        groups.get_group(core, "profs")
    with pytest.raises(NotFound):
        groups.delete_group(core, "profs")
    accounts.delete_user(core, "bob")
    assert [m.name for m in groups.members(core, "cdi")] == ["alice"]
    with core.db.read() as tx:
        assert tx.execute(select(func.count()).select_from(memberships)).scalar_one() == 1
    # a group created again with the old name starts empty
    groups.create_group(core, "profs")
    assert groups.members(core, "profs") == []


def test_concurrent_adds_of_one_member_make_one_row(core: Core) -> None:
    groups.create_group(core, "profs")
    results: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        try:
            results.append(groups.add_member(core, "profs", "alice"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == [False] * 7 + [True]
    assert [m.name for m in groups.members(core, "profs")] == ["alice"]
    assert len(audit.query(core, event="group.member_added")) == 1


def test_every_change_is_in_the_audit_log(core: Core) -> None:
    groups.create_group(core, "profs", "Profs", actor=ADMIN)
    groups.set_display_name(core, "profs", "Professeurs", actor=ADMIN)
    groups.add_member(core, "profs", "alice", actor=ADMIN)
    groups.add_member(core, "profs", "alice", actor=ADMIN)  # no change, no event
    groups.remove_member(core, "profs", "alice", actor=ADMIN)
    groups.delete_group(core, "profs", actor=ADMIN)
    events = [(e.event, e.actor, e.object, e.detail) for e in reversed(audit.query(core, user="CLI:ROOT"))]
    assert events == [
        ("group.created", "cli:root", "group:profs", "Profs"),
        ("group.updated", "cli:root", "group:profs", "display name: Professeurs"),
        ("group.member_added", "cli:root", "group:profs", "user:alice"),
        ("group.member_removed", "cli:root", "group:profs", "user:alice"),
        ("group.deleted", "cli:root", "group:profs", ""),
    ]


def test_a_refused_change_leaves_no_event(core: Core) -> None:
    groups.create_group(core, "profs")
    with pytest.raises(AlreadyExists):
        groups.create_group(core, "PROFS", actor=ADMIN)
    with pytest.raises(NotFound):
        groups.add_member(core, "profs", "nobody", actor=ADMIN)
    assert audit.query(core, user="cli:root") == []
