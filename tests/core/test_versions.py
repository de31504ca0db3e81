# SPDX-License-Identifier: EUPL-1.2
"""Versions (core/versions.py): every overwrite keeps the content it replaces (PUT, chunked
upload assembly, bulk upload), thinning by Nextcloud's schedule on a fake clock, list, download
and restore, the versions' share of the quota and the GC."""

from __future__ import annotations

import random

import pytest

from cartable.core import accounts, files, fsck, gc, reads, trash, uploads, versions
from cartable.core.bulk import BulkWriter
from cartable.core.context import Core
from cartable.core.errors import NotFound, QuotaExceeded
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.store.meta import journal
from cartable.store.meta import trash as trash_repo
from tests.core.conftest import FakeClock, op_for

DAY = 86400.0


def put(core: Core, op: Op, parts: tuple[str, ...], data: bytes) -> None:
    up = Upload(core, op, parts, length=len(data))
    up.write(data)
    up.commit()


def file_id(core: Core, op: Op, parts: tuple[str, ...]) -> int:
    return files.stat(core, op.principal, parts).id


def olds(core: Core, op: Op, parts: tuple[str, ...]) -> list[bytes]:
    """The file's old versions' contents, newest first."""
    fid = file_id(core, op, parts)
    _node, infos = versions.listing(core, op.principal, fid)
    return [versions.open_version(core, op.principal, fid, v.id)[2].read_all() for v in infos]


def counters(core: Core, op: Op) -> tuple[int, int]:
    with core.db.read() as tx:
        return trash_repo.counters(tx, op.principal.space_id)


def assert_clean(core: Core) -> None:
    report = fsck.check(core)
    assert report.ok, report.problems


@pytest.fixture
def op(small_core: Core) -> Op:
    return op_for(small_core)


def test_every_overwrite_keeps_the_previous_content(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    big1, big2 = random.Random(1).randbytes(300_000), random.Random(2).randbytes(300_000)
    put(core, op, ("f.bin",), b"one")
    clock.advance(DAY)
    put(core, op, ("f.bin",), big1)  # PUT
    clock.advance(DAY)
    uploads.begin(core, op.principal, "up1")  # chunked upload assembly
    uploads.put_part(core, op.principal, "up1", "00001", [big2[:150_000]])
    uploads.put_part(core, op.principal, "up1", "00002", [big2[150_000:]])
    uploads.assemble(core, op, "up1", ("f.bin",))
    clock.advance(DAY)
    bulk = BulkWriter(core, op)  # bulk upload
    done = bulk.submit(("f.bin",), b"four", mtime=1_700_000_000.0, checksum=None)
    bulk.flush()
    done.result(timeout=60)
    assert reads.open_content(core, op.principal, ("f.bin",)).read_all() == b"four"
    assert olds(core, op, ("f.bin",)) == [big2, big1, b"one"]
    assert counters(core, op) == (0, 300_000 + 300_000 + 3)
    fid = file_id(core, op, ("f.bin",))
    _node, infos = versions.listing(core, op.principal, fid)
    assert [i.created_at for i in infos] == [clock.now - DAY, clock.now - 2 * DAY, clock.now - 3 * DAY]
    assert infos[-1].mtime == clock.now - 3 * DAY  # the file's mtime while it held that content
    assert_clean(core)


# (age of each old version in seconds, newest first) -> ages kept. NOW is a multiple of 2, 10, 60
# and 3600 seconds, not of a day or a week: slots are aligned on the clock, not on NOW.
NOW = 1_800_000_000.0
THINNING = [
    ([0.5, 0.7, 1], [0.5, 0.7, 1]),  # every version of the last second
    ([2, 3, 4, 5], [2, 3, 5]),  # one per 2 s in the first 10 s
    ([11, 15, 21, 25], [11, 21]),  # one per 10 s in the first minute
    ([61, 90, 119, 121], [61, 121]),  # one per minute in the first hour
    ([3601, 5000, 7199, 7201], [3601, 7201]),  # one per hour in the first day
    ([DAY + 1, DAY + 20_000, DAY + 40_000, 3 * DAY], [DAY + 1, DAY + 40_000, 3 * DAY]),  # one per day
    ([31 * DAY, 33 * DAY, 38 * DAY, 40 * DAY], [31 * DAY, 38 * DAY]),  # one per week after 30 days
    ([364 * DAY, 366 * DAY], [364 * DAY]),  # none older than versions_max_age_days (365)
]


@pytest.mark.parametrize(("ages", "kept"), THINNING)
def test_thinning_schedule(ages: list[float], kept: list[float]) -> None:
    created = [(i, NOW - age) for i, age in enumerate(ages)]
    dropped = set(versions.to_drop(created, NOW, 365 * DAY))
    assert [age for i, age in enumerate(ages) if i not in dropped] == kept


def test_rapid_overwrites_are_thinned_and_ageing_thins_more(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    for i in range(12):  # one save a second
        put(core, op, ("f.txt",), b"v%02d" % i)
        clock.advance(1)
    kept = olds(core, op, ("f.txt",))
    # v10 is a second old, v09..v01 2 to 10 s old: one per 2-second slot (v00 shared v01's slot
    # when the last write thinned them).
    assert kept == [b"v10", b"v09", b"v07", b"v05", b"v03", b"v01"]
    clock.advance(2 * DAY)  # now all within one day of each other: one per day keeps the newest
    stats = gc.collect(core)
    assert stats.versions_expired == 5
    assert olds(core, op, ("f.txt",)) == [b"v10"]
    clock.advance(365 * DAY)
    assert gc.collect(core).versions_expired == 1
    assert olds(core, op, ("f.txt",)) == []
    assert counters(core, op) == (0, 0)
    assert_clean(core)


def test_restore_a_version(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    files.mkdir(core, op, ("d",))
    put(core, op, ("d", "f.txt"), b"first")
    clock.advance(DAY)
    put(core, op, ("d", "f.txt"), b"second, longer")
    folder_before = files.stat(core, op.principal, ("d",))
    fid = file_id(core, op, ("d", "f.txt"))
    _node, infos = versions.listing(core, op.principal, fid)
    with core.db.read() as tx:
        head = journal.head(tx)
    restored = versions.restore(core, op, fid, infos[0].id)
    assert restored.id == fid and restored.size == 5
    assert reads.open_content(core, op.principal, ("d", "f.txt")).read_all() == b"first"
    assert olds(core, op, ("d", "f.txt")) == [b"second, longer"]
    folder = files.stat(core, op.principal, ("d",))
    assert folder.etag != folder_before.etag and folder.size == 5
    with core.db.read() as tx:
        entries = journal.since(tx, op.principal.space_id, head, 10)
    assert [(e.op, e.node_id) for e in entries] == [("modify", fid)]
    with pytest.raises(NotFound):  # the current content is not an old version
        versions.restore(core, op, fid, restored.version_id or 0)
    versions.delete(core, op, fid, versions.listing(core, op.principal, fid)[1][0].id)
    assert olds(core, op, ("d", "f.txt")) == [] and counters(core, op) == (0, 0)
    assert_clean(core)


def test_a_version_restore_over_quota_is_refused(small_core: Core, op: Op) -> None:
    core = small_core
    put(core, op, ("f.bin",), b"x" * 3000)
    put(core, op, ("f.bin",), b"y" * 1000)
    accounts.set_quota(core, "alice", 2999)
    fid = file_id(core, op, ("f.bin",))
    old = versions.listing(core, op.principal, fid)[1]
    with pytest.raises(QuotaExceeded):
        versions.restore(core, op, fid, old[0].id)
    assert reads.open_content(core, op.principal, ("f.bin",)).read_all() == b"y" * 1000
    assert_clean(core)


def test_versions_are_held_to_their_share_of_the_quota(small_core: Core, op: Op, clock: FakeClock) -> None:
    """versions_quota_share (0.5): past half the quota the oldest versions of any file go."""
    core = small_core
    accounts.set_quota(core, "alice", 10_000)
    put(core, op, ("a.bin",), b"a" * 2000)
    clock.advance(DAY)
    put(core, op, ("a.bin",), b"A" * 2000)  # 2000 in versions
    clock.advance(DAY)
    put(core, op, ("b.bin",), b"b" * 2000)
    clock.advance(DAY)
    put(core, op, ("b.bin",), b"B" * 2000)  # 4000 in versions
    clock.advance(DAY)
    put(core, op, ("a.bin",), b"2" * 1500)  # 6000 > 5000: the oldest (a's first) goes
    assert olds(core, op, ("a.bin",)) == [b"A" * 2000]
    assert olds(core, op, ("b.bin",)) == [b"b" * 2000]
    assert counters(core, op) == (0, 4000)
    # Everything together within the quota: live 3500 + versions 4000 + a 3000-byte write.
    put(core, op, ("c.bin",), b"c" * 3000)  # 10500 > 10000: the oldest version goes
    assert counters(core, op) == (0, 2000)
    assert olds(core, op, ("b.bin",)) == [b"b" * 2000] and olds(core, op, ("a.bin",)) == []
    assert_clean(core)


def test_trash_goes_before_versions_when_the_quota_is_full(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    accounts.set_quota(core, "alice", 10_000)
    put(core, op, ("v.bin",), b"1" * 2000)
    put(core, op, ("v.bin",), b"2" * 2000)  # versions 2000
    put(core, op, ("t.bin",), b"t" * 3000)
    files.delete(core, op, ("t.bin",))  # trash 3000
    put(core, op, ("w.bin",), b"w" * 4000)  # live 6000 + 3000 + 2000 > 10000: the trash goes
    assert trash.items(core, op.principal) == [] and counters(core, op) == (0, 2000)
    put(core, op, ("x.bin",), b"x" * 3000)  # live 9000 + 2000: the version goes
    assert counters(core, op) == (0, 0)
    put(core, op, ("y.bin",), b"y" * 1000)  # exactly the quota
    with pytest.raises(QuotaExceeded):
        put(core, op, ("z.bin",), b"z")
    assert_clean(core)


def test_chunks_of_versions_and_trash_are_never_collected(small_core: Core, op: Op, clock: FakeClock) -> None:
    core = small_core
    first, second = random.Random(7).randbytes(300_000), random.Random(8).randbytes(300_000)
    put(core, op, ("f.bin",), first)
    put(core, op, ("f.bin",), second)
    files.delete(core, op, ("f.bin",))  # the trash holds second, and first as its old version
    clock.advance(3 * 3600)
    gc.collect(core)
    node = trash.items(core, op.principal)[0]
    assert trash.open_file(core, op.principal, node.name).read_all() == second
    trash.restore(core, op, node.name)
    assert olds(core, op, ("f.bin",)) == [first]  # versions come back with the file
    files.delete(core, op, ("f.bin",))
    assert counters(core, op) == (300_000, 300_000)
    trash.empty(core, op)
    assert counters(core, op) == (0, 0)
    clock.advance(3 * 3600)
    assert gc.collect(core).chunks_deleted >= 2 and list(core.blobs.iter_digests()) == []
    assert_clean(core)


def test_another_users_file_ids_are_not_found(small_core: Core, op: Op) -> None:
    core = small_core
    accounts.create_user(core, "bob", "bob-secret-pw")
    bob = op_for(core, "bob")
    put(core, op, ("f.txt",), b"1")
    put(core, op, ("f.txt",), b"2")
    fid = file_id(core, op, ("f.txt",))
    vid = versions.listing(core, op.principal, fid)[1][0].id
    for attempt in (lambda: versions.listing(core, bob.principal, fid),
                    lambda: versions.open_version(core, bob.principal, fid, vid),
                    lambda: versions.restore(core, bob, fid, vid),
                    lambda: versions.delete(core, bob, fid, vid),
                    lambda: versions.listing(core, op.principal, 10**9)):
        with pytest.raises(NotFound):
            attempt()
    files.delete(core, op, ("f.txt",))
    with pytest.raises(NotFound):  # a trashed file's versions wait in the trash with it
        versions.listing(core, op.principal, fid)


def test_versions_are_named_by_their_timestamp_as_nextcloud_does(small_core: Core, op: Op) -> None:
    core = small_core
    for body, mtime in ((b"a", 1_111_111_111.0), (b"b", 1_111_111_111.5), (b"c", 2_222_222_222.0), (b"d", None)):
        up = Upload(core, op, ("f.txt",), length=1, mtime=mtime)
        up.write(body)
        up.commit()
    fid = file_id(core, op, ("f.txt",))
    _node, infos = versions.listing(core, op.principal, fid)
    assert [i.name for i in infos] == ["2222222222", f"1111111111.{infos[1].id}", f"1111111111.{infos[2].id}"]
    assert versions.version_id(core, op.principal, fid, "2222222222") == infos[0].id
    with pytest.raises(NotFound):
        versions.version_id(core, op.principal, fid, "1111111111")  # two share it: give the id too
