# SPDX-License-Identifier: EUPL-1.2
"""The trash (core/trash.py): one row per deletion whatever its size, restore to the place, beside
it, or the root, purge, retention on a fake clock, the journal, search, and the quota rule
(core/retention.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from cartable.core import accounts, files, fsck, gc, reads, search, trash
from cartable.core.context import Core
from cartable.core.errors import NotFound, QuotaExceeded
from cartable.core.tree import Op
from cartable.core.writes import PendingVersion, Upload, Written, commit_versions
from cartable.store.meta import journal
from cartable.store.meta import trash as trash_repo
from tests.core.conftest import FakeClock, op_for

DAY = 86400.0


def put(core: Core, op: Op, parts: tuple[str, ...], data: bytes) -> None:
    up = Upload(core, op, parts, length=len(data))
    up.write(data)
    up.commit()


def read(core: Core, op: Op, parts: tuple[str, ...]) -> bytes:
    return reads.open_content(core, op.principal, parts).read_all()


def exists(core: Core, op: Op, parts: tuple[str, ...]) -> bool:
    try:
        files.stat(core, op.principal, parts)
    except NotFound:
        return False
    return True


def the_item(core: Core, op: Op, name: str) -> trash.TrashItem:
    found = [i for i in trash.items(core, op.principal) if i.record.name == name]
    assert len(found) == 1, [i.name for i in trash.items(core, op.principal)]
    return found[0]


def assert_clean(core: Core) -> None:
    report = fsck.check(core)
    assert report.ok, report.problems


@contextmanager
def statements(core: Core) -> Iterator[list[str]]:
    """Every SQL statement the core's engine runs meanwhile."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(core.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(core.db.engine, "before_cursor_execute", count)


def make_folder(core: Core, op: Op, name: str, n: int) -> None:
    """A folder of n small files (half of them in a sub-folder), in one batch."""
    files.mkdir(core, op, (name,))
    files.mkdir(core, op, (name, "sub"))
    items = [PendingVersion((name, "sub", f"f{i}.txt") if i % 2 else (name, f"f{i}.txt"),
                            Written(4, inline=b"%04d" % i)) for i in range(n)]
    results = commit_versions(core, op, items)
    assert all(not isinstance(r, Exception) for r in results)


@pytest.fixture
def op(small_core: Core) -> Op:
    return op_for(small_core)


def test_deleting_5000_files_costs_what_deleting_one_does(small_core: Core, op: Op) -> None:
    """One row, not a walk: the statements of a delete (and of its restore) do not grow with the
    subtree, and no row below the deleted folder is written."""
    core = small_core
    make_folder(core, op, "one", 1)
    make_folder(core, op, "many", 5000)
    with statements(core) as one:
        files.delete(core, op, ("one",))
    with statements(core) as many:
        files.delete(core, op, ("many",))
    writes = [s for s in many if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(many) == len(one), (len(many), len(one))
    assert len(writes) <= 8, writes  # detach, trash row, counters, locks, ancestors, journal
    with core.db.read() as tx:
        rows = trash_repo.of_space(tx, op.principal.space_id)
    assert {r.name: r.size for r in rows} == {"one": 4, "many": 5000 * 4}
    assert files.usage(core, op.principal).used == 0
    one_name, many_name = the_item(core, op, "one").name, the_item(core, op, "many").name
    with statements(core) as back_one:
        trash.restore(core, op, one_name)
    with statements(core) as back_many:
        trash.restore(core, op, many_name)
    assert len(back_many) == len(back_one)
    assert read(core, op, ("many", "sub", "f4999.txt")) == b"4999"
    assert files.usage(core, op.principal).used == 5001 * 4
    assert_clean(core)


def test_restore_to_its_place_then_beside_then_at_the_root(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    files.mkdir(core, op, ("docs",))
    put(core, op, ("docs", "cv.txt"), b"first")
    files.delete(core, op, ("docs", "cv.txt"))
    assert not exists(core, op, ("docs", "cv.txt"))
    item = the_item(core, op, "cv.txt")
    assert item.record.location == "docs/cv.txt" and item.name == f"cv.txt.d{int(clock.now)}"
    node, path = trash.restore(core, op, item.name)
    assert path == ("docs", "cv.txt") and read(core, op, path) == b"first"
    assert node.id == item.node.id  # the same file id comes back
    # Its place is taken: beside it, "NAME (restored).EXT", then "(restored 2)".
    files.delete(core, op, ("docs", "cv.txt"))
    put(core, op, ("docs", "cv.txt"), b"newer")
    clock.advance(1)
    _node, path = trash.restore(core, op, the_item(core, op, "cv.txt").name)
    assert path == ("docs", "cv (restored).txt") and read(core, op, path) == b"first"
    files.delete(core, op, ("docs", "cv (restored).txt"))
    put(core, op, ("docs", "cv (restored).txt"), b"taken too")
    _node, path = trash.restore(core, op, the_item(core, op, "cv (restored).txt").name)
    assert path == ("docs", "cv (restored) (restored).txt")
    put(core, op, ("docs", "x.txt"), b"x")
    files.delete(core, op, ("docs", "x.txt"))
    put(core, op, ("docs", "x.txt"), b"1")
    put(core, op, ("docs", "x (restored).txt"), b"2")
    _node, path = trash.restore(core, op, the_item(core, op, "x.txt").name)
    assert path == ("docs", "x (restored 2).txt") and read(core, op, path) == b"x"
    # Its parent is gone (itself in the trash): at the root.
    put(core, op, ("docs", "y.txt"), b"y")
    files.delete(core, op, ("docs", "y.txt"))
    files.delete(core, op, ("docs",))
    _node, path = trash.restore(core, op, the_item(core, op, "y.txt").name)
    assert path == ("y.txt",) and read(core, op, ("y.txt",)) == b"y"
    # ... or purged for good.
    trash.restore(core, op, the_item(core, op, "docs").name)
    put(core, op, ("docs", "z.txt"), b"z")
    files.delete(core, op, ("docs", "z.txt"))
    files.delete(core, op, ("docs",))
    trash.purge(core, op, the_item(core, op, "docs").name)
    _node, path = trash.restore(core, op, the_item(core, op, "z.txt").name)
    assert path == ("z.txt",)
    assert_clean(core)


def test_restore_follows_a_renamed_or_moved_parent(small_core: Core, op: Op) -> None:
    core = small_core
    files.mkdir(core, op, ("a",))
    files.mkdir(core, op, ("a", "b"))
    put(core, op, ("a", "b", "f.txt"), b"f")
    files.delete(core, op, ("a", "b", "f.txt"))
    files.move(core, op, ("a", "b"), ("renamed",))
    _node, path = trash.restore(core, op, the_item(core, op, "f.txt").name)
    assert path == ("renamed", "f.txt") and read(core, op, path) == b"f"
    # A trashed folder comes back whole, below a parent whose size and etag move.
    before = files.stat(core, op.principal, ("renamed",))
    files.delete(core, op, ("a",))
    _node, path = trash.restore(core, op, the_item(core, op, "a").name)
    assert path == ("a",)
    after = files.stat(core, op.principal, ("renamed",))
    assert after.etag == before.etag  # untouched: it was not below "a"
    assert_clean(core)


def test_the_journal_sees_a_delete_then_a_create(small_core: Core, op: Op) -> None:
    core = small_core
    files.mkdir(core, op, ("d",))
    put(core, op, ("d", "f.txt"), b"f")
    with core.db.read() as tx:
        head = journal.head(tx)
    files.delete(core, op, ("d",))
    trash.restore(core, op, the_item(core, op, "d").name)
    with core.db.read() as tx:
        entries = journal.since(tx, op.principal.space_id, head, 100)
    assert [(e.op, e.name, e.kind) for e in entries] == [("delete", "d", "d"), ("create", "d", "d")]
    assert entries[0].parent_id == entries[1].parent_id == op.principal.root_id


def test_names_in_the_trash_are_unique_per_second(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    for body in (b"1", b"2", b"3"):
        put(core, op, ("same.txt",), body)
        files.delete(core, op, ("same.txt",))
    names = sorted(i.name for i in trash.items(core, op.principal))
    stamp = int(clock.now)
    assert names == [f"same.txt.d{stamp}", f"same.txt.d{stamp + 1}", f"same.txt.d{stamp + 2}"]
    with pytest.raises(NotFound):
        trash.restore(core, op, "same.txt.d1")
    with pytest.raises(NotFound):
        trash.purge(core, op, "no suffix")


def test_purge_and_empty_release_chunks_to_the_gc(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    data = random.Random(3).randbytes(300_000)
    other = random.Random(4).randbytes(300_000)
    put(core, op, ("a.bin",), data)
    put(core, op, ("b.bin",), other)
    files.delete(core, op, ("a.bin",))
    files.delete(core, op, ("b.bin",))
    clock.advance(2 * 3600)
    stats = gc.collect(core)
    assert stats.chunks_deleted == 0  # the trash references them
    trash.purge(core, op, the_item(core, op, "a.bin").name)
    assert [i.record.name for i in trash.items(core, op.principal)] == ["b.bin"]
    assert trash.empty(core, op) == 1 and trash.items(core, op.principal) == []
    clock.advance(2 * 3600)
    stats = gc.collect(core)
    assert stats.chunks_deleted >= 2
    assert list(core.blobs.iter_digests()) == []
    assert_clean(core)


def test_retention_purges_on_the_fake_clock(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    put(core, op, ("old.txt",), b"old")
    files.delete(core, op, ("old.txt",))
    clock.advance(10 * DAY)
    put(core, op, ("young.txt",), b"young")
    files.delete(core, op, ("young.txt",))
    clock.advance(20 * DAY - 1)  # "old" is 30 days old less a second
    assert gc.collect(core).trash_expired == 0
    clock.advance(2)
    stats = gc.collect(core)
    assert stats.trash_expired == 1
    assert [i.record.name for i in trash.items(core, op.principal)] == ["young.txt"]
    assert_clean(core)


def test_trash_is_invisible_to_search_and_paths(small_core: Core, op: Op) -> None:
    core = small_core
    files.mkdir(core, op, ("gone",))
    put(core, op, ("gone", "needle.txt"), b"n")
    put(core, op, ("needle2.txt",), b"n")
    files.delete(core, op, ("gone",))
    found = search.search(core, op.principal, (), where=search.Compare("name", "like", "needle%"))
    assert [p for _n, p in found] == [("needle2.txt",)]
    with pytest.raises(NotFound):
        files.stat(core, op.principal, ("gone", "needle.txt"))


def test_move_and_copy_onto_an_existing_target_put_it_in_the_trash(small_core: Core, op: Op) -> None:
    core = small_core
    put(core, op, ("a.txt",), b"a")
    put(core, op, ("b.txt",), b"b")
    put(core, op, ("c.txt",), b"c")
    files.move(core, op, ("a.txt",), ("b.txt",))
    files.copy(core, op, ("c.txt",), ("b.txt",))
    assert read(core, op, ("b.txt",)) == b"c"
    olds = sorted(read_item(core, op, i) for i in trash.items(core, op.principal))
    assert olds == [b"a", b"b"]
    assert_clean(core)


def read_item(core: Core, op: Op, item: trash.TrashItem) -> bytes:
    return trash.open_file(core, op.principal, item.name).read_all()


def test_a_full_quota_purges_the_oldest_trash_first(small_core: Core, op: Op, clock: FakeClock) -> None:
    """Trash lives in the free part of the quota: a write that needs the room purges the oldest
    items first; live files alone are held to the quota, exactly."""
    core = small_core
    accounts.set_quota(core, "alice", 10_000)
    for i, name in enumerate(("first.bin", "second.bin", "third.bin")):
        put(core, op, (name,), bytes([i]) * 3000)
        files.delete(core, op, (name,))
        clock.advance(1)
    with core.db.read() as tx:
        assert trash_repo.counters(tx, op.principal.space_id) == (9000, 0)
    put(core, op, ("live.bin",), b"l" * 2500)  # 2500 + 9000 > 10000: "first" goes
    assert [i.record.name for i in trash.items(core, op.principal)] == ["third.bin", "second.bin"]
    put(core, op, ("live2.bin",), b"m" * 4500)  # 7000 + 6000: "second" goes too
    assert [i.record.name for i in trash.items(core, op.principal)] == ["third.bin"]
    with core.db.read() as tx:
        assert trash_repo.counters(tx, op.principal.space_id) == (3000, 0)
    # Exactly at the quota is accepted (the last trash item goes), one byte over is refused.
    put(core, op, ("exact.bin",), b"e" * 3000)
    assert trash.items(core, op.principal) == [] and files.usage(core, op.principal).used == 10_000
    with pytest.raises(QuotaExceeded):
        put(core, op, ("over.bin",), b"o")
    assert_clean(core)


def test_a_restore_over_quota_is_refused_and_changes_nothing(small_core: Core, op: Op) -> None:
    core = small_core
    put(core, op, ("c.bin",), b"c" * 1000)
    files.delete(core, op, ("c.bin",))
    put(core, op, ("d.bin",), b"d" * 4000)
    name = the_item(core, op, "c.bin").name
    accounts.set_quota(core, "alice", 4999)  # live 4000 + the item's 1000 would be 5000
    with pytest.raises(QuotaExceeded):
        trash.restore(core, op, name)
    assert not exists(core, op, ("c.bin",)) and the_item(core, op, "c.bin").name == name
    accounts.set_quota(core, "alice", 5000)
    trash.restore(core, op, name)  # exactly at the quota
    assert files.usage(core, op.principal).used == 5000 and read(core, op, ("c.bin",)) == b"c" * 1000
    assert_clean(core)


def test_another_users_trash_is_out_of_reach(small_core: Core, op: Op) -> None:
    core = small_core
    accounts.create_user(core, "bob", "bob-secret-pw")
    bob = op_for(core, "bob")
    put(core, op, ("secret.txt",), b"s")
    files.delete(core, op, ("secret.txt",))
    name = the_item(core, op, "secret.txt").name
    assert trash.items(core, bob.principal) == []
    for attempt in (lambda: trash.restore(core, bob, name), lambda: trash.purge(core, bob, name),
                    lambda: trash.open_file(core, bob.principal, name)):
        with pytest.raises(NotFound):
            attempt()
    assert the_item(core, op, "secret.txt").name == name


def test_deleting_the_account_purges_its_trash(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    accounts.create_user(core, "bob", "bob-secret-pw")
    bob = op_for(core, "bob")
    put(core, bob, ("b.bin",), random.Random(5).randbytes(200_000))
    files.delete(core, bob, ("b.bin",))
    accounts.delete_user(core, "bob")
    assert_clean(core)
    clock.advance(2 * 3600)
    gc.collect(core)
    assert list(core.blobs.iter_digests()) == []


def test_conflict_names_are_kept_apart() -> None:
    assert trash.restored_name("a.txt", 1, False) == "a (restored).txt"
    assert trash.restored_name("a.txt", 3, False) == "a (restored 3).txt"
    assert trash.restored_name("folder.d", 1, True) == "folder.d (restored)"
    assert trash.restored_name(".bashrc", 1, False) == ".bashrc (restored)"
    assert trash.restored_name("archive.tar.gz", 2, False) == "archive.tar (restored 2).gz"


@pytest.mark.parametrize("point", ["trash.delete.before_commit", "trash.restore.before_commit",
                                   "trash.purge.before_commit"])
def test_a_crash_before_the_commit_changes_nothing(tmp_path, point: str) -> None:  # type: ignore[no-untyped-def]
    """A delete to the trash, a restore and a purge are each one transaction: a process dying
    just before its commit leaves the state before it, whole (fsck clean, content intact)."""
    from cartable.common import faults
    from tests.core.conftest import make_core

    clock = FakeClock()
    core = make_core(tmp_path, clock)
    accounts.create_user(core, "alice", "alice-secret-pw")
    op = op_for(core)
    data = random.Random(9).randbytes(300_000)
    files.mkdir(core, op, ("d",))
    put(core, op, ("d", "f.bin"), data)
    steps = {
        "trash.delete.before_commit": lambda: files.delete(core, op, ("d",)),
        "trash.restore.before_commit": lambda: trash.restore(core, op, the_item(core, op, "d").name),
        "trash.purge.before_commit": lambda: trash.purge(core, op, the_item(core, op, "d").name),
    }
    if point != "trash.delete.before_commit":
        files.delete(core, op, ("d",))
    try:
        with faults.armed(point), pytest.raises(faults.SimulatedCrash):
            steps[point]()
    finally:
        faults.disarm_all()
    core.db.dispose()
    core = make_core(tmp_path, clock)  # a restarted process
    op = op_for(core)
    assert_clean(core)
    if point == "trash.delete.before_commit":
        assert read(core, op, ("d", "f.bin")) == data and trash.items(core, op.principal) == []
    else:
        assert not exists(core, op, ("d",))
        assert trash.open_file(core, op.principal, the_item(core, op, "d").name, ("f.bin",)).read_all() == data
    core.db.dispose()


def test_a_restore_racing_a_write_of_the_same_name(small_core: Core, op: Op) -> None:
    """Writers are serialised by the space lock: whichever commits first takes the name, the
    other lands beside it; both are acknowledged and both are there."""
    import threading

    core = small_core
    put(core, op, ("r.txt",), b"trashed")
    files.delete(core, op, ("r.txt",))
    name = the_item(core, op, "r.txt").name
    errors: list[BaseException] = []

    def run(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lambda: trash.restore(core, op, name),)),
               threading.Thread(target=run, args=(lambda: put(core, op, ("r.txt",), b"written"),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = {read(core, op, ("r.txt",)), read(core, op, ("r (restored).txt",))} if exists(
        core, op, ("r (restored).txt",)) else {read(core, op, ("r.txt",))}
    # The write either came first (restore beside it) or overwrote the restored file (kept as a
    # version).
    if got == {b"written"}:
        from cartable.core import versions

        fid = files.stat(core, op.principal, ("r.txt",)).id
        _n, old = versions.listing(core, op.principal, fid)
        assert [versions.open_version(core, op.principal, fid, v.id)[2].read_all() for v in old] == [b"trashed"]
    else:
        assert got == {b"trashed", b"written"}
    assert_clean(core)


def test_fsck_checks_the_trash_and_the_counts(small_core: Core, op: Op) -> None:
    """fsck knows the new rows: a node detached without a trash row, a trash row whose node is
    back in the tree, and a space's trash or versions count that disagrees with its rows are
    problems; old versions' chunks are expected references (a clean state is clean)."""
    from sqlalchemy import text

    core = small_core
    put(core, op, ("v.bin",), random.Random(1).randbytes(200_000))
    put(core, op, ("v.bin",), random.Random(2).randbytes(200_000))
    put(core, op, ("t.bin",), b"t" * 100)
    files.delete(core, op, ("t.bin",))
    put(core, op, ("live.txt",), b"l")
    assert_clean(core)
    with core.db.engine.connect() as conn:
        saved = {"spaces": conn.execute(text("SELECT id, trash_bytes, versions_bytes FROM spaces")).all(),
                 "live": conn.execute(text("SELECT parent_id FROM nodes WHERE name = 'live.txt'")).scalar_one(),
                 "trash": conn.execute(text("SELECT size FROM trash")).scalar_one()}
    undo = [f"UPDATE spaces SET trash_bytes = {t}, versions_bytes = {v} WHERE id = {i}" for i, t, v in saved["spaces"]]
    undo += [f"UPDATE nodes SET parent_id = {saved['live']} WHERE name = 'live.txt'",
             "UPDATE nodes SET parent_id = NULL WHERE name = 't.bin'", f"UPDATE trash SET size = {saved['trash']}"]
    tampering = [
        ("UPDATE spaces SET trash_bytes = trash_bytes + 1", "bytes of trash"),
        ("UPDATE spaces SET versions_bytes = 0", "bytes of old versions"),
        ("UPDATE nodes SET parent_id = NULL WHERE name = 'live.txt'", "detached from its tree but not in the trash"),
        ("UPDATE nodes SET parent_id = (SELECT root_id FROM spaces) WHERE name = 't.bin'", "is still in the tree"),
        ("UPDATE trash SET size = 7", "says 7 bytes"),
    ]
    for statement, message in tampering:
        with core.db.engine.begin() as conn:
            conn.execute(text(statement))
        problems = fsck.check(core).problems
        with core.db.engine.begin() as conn:
            for back in undo:
                conn.execute(text(back))
        assert any(message in p for p in problems), (statement, problems)
        assert_clean(core)


def test_a_part_of_a_trashed_folder_is_restored_alone(small_core: Core, op: Op) -> None:
    core = small_core
    files.mkdir(core, op, ("d",))
    files.mkdir(core, op, ("d", "sub"))
    put(core, op, ("d", "sub", "a.txt"), b"aaaa")
    put(core, op, ("d", "b.txt"), b"bb")
    files.delete(core, op, ("d",))
    name = the_item(core, op, "d").name
    _node, path = trash.restore(core, op, name, ("sub", "a.txt"))
    assert path == ("a.txt",) and read(core, op, path) == b"aaaa"  # its folder is in the trash
    item = the_item(core, op, "d")
    assert item.record.size == item.node.size == 2
    _item, sub, kids = trash.lookup(core, op.principal, name, ("sub",))
    assert sub.size == 0 and kids == []
    assert files.usage(core, op.principal).used == 4
    assert_clean(core)
