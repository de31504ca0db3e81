# SPDX-License-Identifier: EUPL-1.2
"""A crash at every fault point of the write path, the chunk store and the GC (issue 10:
"acknowledged data must never point at missing bytes").

A workload that goes through every step (a multi-chunk PUT through the batch put path, a one-chunk
PUT through the one-file path, a delete to the trash, a restore, a delete and the trash emptied, an
orphan chunk file, a GC that marks, reaps and sweeps, then the same contents uploaded again, an
overwrite kept as a version and that version restored) runs once unarmed to count how often each fault point is
reached; then, for each point in turn and for each time it is reached, the workload runs again
with a crash there. After the crash a fresh Core is opened on the same data folder (a restarted
process) and:
- fsck is clean (unreferenced or dying chunks are not problems: the GC reclaims them) and every
  acknowledged file reads back byte for byte;
- the workload runs again to completion (the same contents uploaded again: a dying row left
  without bytes must be written again, never trusted), with the same checks after each step,
  then the GC runs to completion;
- fsck is clean (deep: every chunk re-hashed), every acknowledged file reads back, and the GC
  reclaimed everything: no unreferenced row, no dying row, no chunk file without a row.

The fast run crashes at the first hit of every point; the slow run at every hit of every point.
The chunks are in the local folder on every test backend (its fault points are the folder's own);
the metadata database is the backend's.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cartable.common import faults
from cartable.common.fsutil import atomic_write
from cartable.common.hashing import chunk_digest, digest_hex
from cartable.core import accounts, files, fsck, gc, reads, trash, versions
from cartable.core.context import Core
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.store.blobs import codec
from cartable.store.meta import content
from tests.core.conftest import FakeClock, make_core, op_for

MIB = 1 << 20
GRACE = 3600.0
BIG = random.Random(11).randbytes(5 * MIB)  # several chunks in one batch: the batch put path
SMALL = random.Random(12).randbytes(300_000)  # one chunk: the one-file put path
ORPHAN = random.Random(13).randbytes(400_000)  # a chunk file with no row (left by a crash)
OTHER = random.Random(14).randbytes(700_000)

Name = tuple[str, ...]


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm_all()


@dataclass
class World:
    """A data folder that outlives the Cores opened on it, its clock and what was acknowledged."""

    tmp: Path
    clock: FakeClock = field(default_factory=FakeClock)
    acked: dict[Name, bytes] = field(default_factory=dict)
    inflight: tuple[Name, bytes] | None = None  # a put whose commit had not returned yet
    trashed: dict[str, bytes] = field(default_factory=dict)
    check_each_step: bool = False
    core: Core = field(init=False)
    op: Op = field(init=False)

    def __post_init__(self) -> None:
        self.core = make_core(self.tmp, self.clock, local_blobs=True, gc_grace_seconds=GRACE)
        accounts.create_user(self.core, "alice", "alice-secret-pw")
        self.op = op_for(self.core)

    def restart(self) -> None:
        """What a crashed process leaves is on disk; a new process opens it."""
        self.core.db.dispose()
        self.core = make_core(self.tmp, self.clock, local_blobs=True, gc_grace_seconds=GRACE)
        self.op = op_for(self.core)

    def put(self, name: str, data: bytes) -> None:
        up = Upload(self.core, self.op, (name,))
        for i in range(0, len(data), MIB):
            up.write(data[i:i + MIB])
        self.inflight = ((name,), data)
        up.commit()
        self.acked[(name,)] = data
        self.inflight = None
        if self.check_each_step:
            check_acked(self)

    def delete(self, name: str) -> None:
        files.delete(self.core, self.op, (name,))
        self.trashed[name] = self.acked.pop((name,))
        if self.check_each_step:
            check_acked(self)

    def restore(self, name: str) -> None:
        """Restore the most recent trashed item of that name (back to the root)."""
        item = next(i for i in trash.items(self.core, self.op.principal) if i.record.name == name)
        trash.restore(self.core, self.op, item.name)
        self.acked[(name,)] = self.trashed.pop(name)
        if self.check_each_step:
            check_acked(self)

    def empty_trash(self) -> None:
        trash.empty(self.core, self.op)
        self.trashed.clear()
        if self.check_each_step:
            check_acked(self)

    def restore_version(self, name: str, data: bytes) -> None:
        """Make the old version of name holding data current again."""
        node, old = versions.listing(self.core, self.op.principal,
                                     files.stat(self.core, self.op.principal, (name,)).id)
        wanted = next(v for v in old if v.size == len(data))
        versions.restore(self.core, self.op, node.id, wanted.id)
        self.acked[(name,)] = data
        if self.check_each_step:
            check_acked(self)

    def plant_orphan(self, data: bytes) -> None:
        """A complete chunk file with no row, as a crash of an earlier version could leave."""
        digest = chunk_digest(data)
        if not self.core.blobs.has(digest):
            h = digest_hex(digest)
            atomic_write(self.tmp / "chunks" / h[:2] / h[2:4] / h, codec.encode(data))

    def collect(self) -> gc.GcStats:
        stats = gc.collect(self.core)
        if self.check_each_step:
            check_acked(self)
        return stats


def workload(w: World, tag: str) -> None:
    w.put(f"{tag}big.bin", BIG)
    w.put(f"{tag}small.bin", SMALL)
    w.delete(f"{tag}big.bin")  # to the trash: its chunks stay referenced
    w.restore(f"{tag}big.bin")  # back in place
    w.delete(f"{tag}big.bin")
    w.empty_trash()  # purged: its chunks lose their last reference
    w.plant_orphan(ORPHAN)
    w.clock.advance(GRACE + 10)
    w.collect()  # marks and reaps the big file's chunks, sweeps the orphan
    w.put(f"{tag}again.bin", BIG)  # the collected chunks are written again
    w.put(f"{tag}orphan.bin", ORPHAN)  # the swept content is written again
    w.put(f"{tag}small.bin", OTHER)  # an overwrite keeps SMALL as an old version
    w.restore_version(f"{tag}small.bin", SMALL)  # SMALL current again, OTHER an old version


def check_acked(w: World, *, deep: bool = False) -> fsck.Report:
    report = fsck.check(w.core, deep=deep)
    assert report.ok, report.problems
    for name, data in w.acked.items():
        got = reads.open_content(w.core, w.op.principal, name).read_all()
        assert got == data, f"{name} does not read back ({len(got)} bytes, {len(data)} expected)"
    return report


def check_fully_collected(w: World) -> None:
    """After a GC past the grace period: every row is referenced, every file has a row."""
    with w.core.db.read() as tx:
        rows = {d: rc for d, _size, _stored, rc in content.iter_chunks(tx)}
        dying = list(content.iter_dying(tx))
    assert dying == []
    assert all(rc > 0 for rc in rows.values()), "an unreferenced chunk row survived a full GC"
    assert {d for d, _ in w.core.blobs.iter_digests()} == set(rows)


def count_hits(tmp: Path) -> Counter[str]:
    hits: Counter[str] = Counter()
    for name in faults.POINTS:
        faults.arm(name, lambda name=name: hits.update([name]))  # type: ignore[misc]
    try:
        workload(World(tmp), "")
    finally:
        faults.disarm_all()
    return hits


@pytest.fixture(scope="module")
def hit_counts(tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    return count_hits(tmp_path_factory.mktemp("dry-run"))


def test_the_workload_reaches_every_fault_point(hit_counts: Counter[str]) -> None:
    assert [p for p in faults.POINTS if hit_counts[p] == 0] == []


def test_every_fault_point_is_placed_in_the_source() -> None:
    src = Path(__file__).parents[2] / "src" / "cartable"
    text = "".join(p.read_text() for p in src.rglob("*.py") if p.name != "faults.py")
    assert [p for p in faults.POINTS if f'"{p}"' not in text] == []


def crash_and_recover(tmp: Path, point: str, nth: int) -> None:
    w = World(tmp)
    faults.arm(point, _crash_at(nth))
    with pytest.raises(faults.SimulatedCrash):
        workload(w, "")
    faults.disarm_all()
    w.restart()
    if w.inflight is not None and point == "writes.commit.after_commit":
        # the crash came after the commit, before the answer: the new content is there, unacknowledged
        name, data = w.inflight
        if reads.open_content(w.core, w.op.principal, name).read_all() == data:
            w.acked[name] = data
    check_acked(w)
    w.check_each_step = True
    workload(w, "r-")  # the same contents again, on whatever the crash left
    w.clock.advance(GRACE + 10)
    w.collect()
    check_acked(w, deep=True)
    check_fully_collected(w)


def _crash_at(nth: int) -> Callable[[], None]:
    seen = [0]

    def action() -> None:
        seen[0] += 1
        if seen[0] == nth:
            faults.crash()

    return action


@pytest.mark.parametrize("point", faults.POINTS)
def test_crash_at_first_hit(tmp_path: Path, point: str, hit_counts: Counter[str]) -> None:
    assert hit_counts[point] >= 1
    crash_and_recover(tmp_path, point, 1)


@pytest.mark.slow
@pytest.mark.parametrize("point", faults.POINTS)
def test_crash_at_every_hit(tmp_path: Path, point: str, hit_counts: Counter[str]) -> None:
    for nth in range(2, hit_counts[point] + 1):
        (tmp_path / str(nth)).mkdir()
        crash_and_recover(tmp_path / str(nth), point, nth)


# ---------------------------------------------------------------------------------------------
# The exact scenarios of the issue, each on its own.

def test_gc_crash_between_deleting_bytes_and_commit_then_same_content_uploaded(tmp_path: Path) -> None:
    """Issue 10 (i): the GC deleted the bytes and crashed before its commit. Before any other GC
    runs, an upload of the same content must write the bytes again, not trust the dying rows."""
    w = World(tmp_path)
    w.put("a.bin", BIG)
    w.delete("a.bin")
    w.empty_trash()
    w.clock.advance(GRACE + 10)
    with faults.armed("gc.reap.after_delete_bytes"), pytest.raises(faults.SimulatedCrash):
        w.collect()
    w.restart()
    with w.core.db.read() as tx:
        dying = [d for d, _rc in content.iter_dying(tx)]
    assert dying and not any(w.core.blobs.has(d) for d in dying)  # rows left, bytes gone
    w.put("b.bin", BIG)
    check_acked(w, deep=True)
    w.clock.advance(GRACE + 10)
    w.collect()
    check_acked(w, deep=True)
    check_fully_collected(w)


def test_a_crash_mid_batch_never_publishes_a_partial_chunk_file(tmp_path: Path) -> None:
    """Crash after the temporary files were written but before they were synced and renamed:
    no chunk file exists under its final name (a final name always holds a complete chunk)."""
    w = World(tmp_path)
    with faults.armed("blobs.put.batch.after_temps"), pytest.raises(faults.SimulatedCrash):
        w.put("a.bin", BIG)
    w.restart()
    assert list(w.core.blobs.iter_digests()) == []
    check_acked(w)
