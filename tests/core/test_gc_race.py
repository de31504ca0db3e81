# SPDX-License-Identifier: EUPL-1.2
"""GC safety: uploads that reuse existing chunks race the garbage collector; no manifest may
ever point at a missing chunk (the classic way deduplicating stores lose data).

The interleavings of issue 10 are made deterministic with fault points (common/faults.py): an
action armed at a step of one party runs the other party's step right there, in the same thread
or in the writer's background thread, never by sleeping. The threaded tests at the end use the real
clock and a short grace period, and check only outcomes that do not depend on timing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.common import faults
from cartable.common.hashing import chunk_digest, digest_hex
from cartable.core import accounts, files, fsck, gc, reads
from cartable.core.context import Core
from cartable.core.errors import DataMissing, NotFound, StorageUnavailable
from cartable.core.manifest import unpack
from cartable.core.writes import Upload
from cartable.store.meta import content
from tests.core.conftest import FakeClock, delete_for_good, make_core, op_for, principal


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm_all()


def put(core: Core, op: object, parts: tuple[str, ...], data: bytes) -> None:
    up = Upload(core, op, parts)  # type: ignore[arg-type]
    for i in range(0, len(data), 1 << 20):
        up.write(data[i:i + (1 << 20)])
    up.commit()


def put_or_retry_later(core: Core, op: object, parts: tuple[str, ...], data: bytes) -> bool:
    """put, as a client does it: under load an upload can outlast a very short grace period, and
    its commit then fails with StorageUnavailable ("retry"); the write was not acknowledged."""
    try:
        put(core, op, parts, data)
    except DataMissing:
        raise
    except StorageUnavailable:
        return False
    return True


def test_touched_chunk_survives_gc_until_commit(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(1).randbytes(600_000)
    put(small_core, op, ("a.bin",), data)
    delete_for_good(small_core, op, ("a.bin",))  # the chunk now has no reference
    clock.advance(7200)  # ...for longer than the grace period
    up = Upload(small_core, op, ("b.bin",))
    up.write(data)  # flushes: finds the idle chunk and claims it (touch)
    up._finish()
    clock.advance(10)
    stats = gc.collect(small_core)
    assert stats.chunks_deleted == 0
    up.commit()
    assert reads.open_content(small_core, op.principal, ("b.bin",)).read_all() == data
    assert fsck.check(small_core, deep=True).ok


def test_gc_first_then_upload_rewrites_the_chunk(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(2).randbytes(700_000)
    put(small_core, op, ("a.bin",), data)
    delete_for_good(small_core, op, ("a.bin",))
    clock.advance(7200)
    assert gc.collect(small_core).chunks_deleted == 1
    assert list(small_core.blobs.iter_digests()) == []
    put(small_core, op, ("b.bin",), data)
    assert reads.open_content(small_core, op.principal, ("b.bin",)).read_all() == data
    assert fsck.check(small_core, deep=True).ok


def test_upload_slower_than_grace_fails_instead_of_dangling(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(3).randbytes(500_000)
    put(small_core, op, ("a.bin",), data)
    delete_for_good(small_core, op, ("a.bin",))
    up = Upload(small_core, op, ("b.bin",))
    up.write(data)
    up._finish()  # reused the idle chunk (touched now)
    clock.advance(7200)  # the upload stalls longer than the grace period
    assert gc.collect(small_core).chunks_deleted == 1
    with pytest.raises(StorageUnavailable):
        up.commit()
    with pytest.raises(NotFound):
        files.stat(small_core, op.principal, ("b.bin",))
    assert fsck.check(small_core).ok


def test_referenced_chunk_is_kept(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(4).randbytes(400_000)
    put(small_core, op, ("a.bin",), data)
    put(small_core, op, ("copy.bin",), data)
    delete_for_good(small_core, op, ("a.bin",))
    clock.advance(10**6)
    assert gc.collect(small_core).chunks_deleted == 0
    assert reads.open_content(small_core, op.principal, ("copy.bin",)).read_all() == data


@pytest.mark.slow
def test_concurrent_uploads_deletes_and_gc(tmp_path: Path) -> None:
    """Real threads and the real clock: 4 writers upload and delete files drawn from a small pool
    of contents (so chunks keep going from referenced to unreferenced and back) while the GC
    runs in a loop with a short grace. Every acknowledged file must read back intact."""
    core = make_core(tmp_path, gc_grace_seconds=0.3)
    accounts.create_user(core, "alice", "alice-secret-pw")
    p = principal(core)
    op = op_for(core)
    rng = random.Random(5)
    pool = [rng.randbytes(rng.randrange(300_000, 2_500_000)) for _ in range(12)]
    stop = threading.Event()
    errors: list[BaseException] = []
    acked: dict[tuple[str, ...], bytes] = {}
    lock = threading.Lock()
    collected = [0]
    written = [0]
    real_put_many = core.blobs.put_many

    def counting_put_many(items):  # type: ignore[no-untyped-def]
        with lock:
            written[0] += len(items)
        return real_put_many(items)

    core.blobs.put_many = counting_put_many  # type: ignore[method-assign]

    def writer(wid: int) -> None:
        r = random.Random(100 + wid)
        try:
            n = 0
            while not stop.is_set():
                name = (f"w{wid}-{n % 6}.bin",)
                n += 1
                if r.random() < 0.4:
                    try:
                        delete_for_good(core, op, name)
                        with lock:
                            acked.pop(name, None)
                    except NotFound:
                        pass
                else:
                    data = pool[r.randrange(len(pool))]
                    if put_or_retry_later(core, op, name, data):
                        with lock:
                            acked[name] = data
                time.sleep(r.random() * 0.05)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def collector() -> None:
        try:
            while not stop.is_set():
                collected[0] += gc.collect(core, grace=0.3).chunks_deleted
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=collector))
    for t in threads:
        t.start()
    # Six seconds of race, then more until the GC has collected something (a loaded machine can
    # take longer to let a chunk outlive the grace period): the guard below fails only if a minute
    # was not enough.
    time.sleep(6)
    deadline = time.monotonic() + 60
    while collected[0] == 0 and not errors and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert collected[0] > 0, "the GC never collected anything: the race was not exercised"
    for name, data in acked.items():
        assert reads.open_content(core, p, name).read_all() == data
    report = fsck.check(core, deep=True)
    assert report.ok, report.problems


def chunk_path(core: Core, digest: bytes) -> Path:
    h = digest_hex(digest)
    return core.blobs.root / h[:2] / h[2:4] / h  # type: ignore[attr-defined]


def digests_of(core: Core, name: str) -> list[bytes]:
    with core.db.read() as tx:
        node = files.stat(core, principal(core), (name,))
        ver = content.get_version(tx, node.version_id)  # type: ignore[arg-type]
    assert ver is not None
    return [e.digest for e in unpack(ver.manifest)]


def plant_orphan(core: Core, data: bytes) -> bytes:
    """A complete chunk with no row (as a crashed upload of an earlier version left them), in
    whichever chunk store the test backend has."""
    digest = chunk_digest(data)
    core.blobs.put_many([(digest, data)])
    return digest


def test_sweep_during_an_upload_keeps_the_file_it_just_wrote(small_core: Core, clock: FakeClock) -> None:
    """Issue 10 (ii): the upload has written its chunk file and not committed yet; a whole GC
    (mark, reap, sweep of files with no row) runs right then. The claim made before the bytes
    were written is a row, so the sweep leaves the file alone."""
    op = op_for(small_core)
    data = random.Random(20).randbytes(600_000)
    clock.advance(7200)
    ran: list[gc.GcStats] = []
    faults.arm("writes.after_put", lambda: ran.append(gc.collect(small_core)), times=1)
    put(small_core, op, ("b.bin",), data)
    assert len(ran) == 1 and ran[0].orphans_deleted == 0 and ran[0].chunks_deleted == 0
    assert reads.open_content(small_core, op.principal, ("b.bin",)).read_all() == data
    assert fsck.check(small_core, deep=True).ok


@pytest.mark.parametrize("point", ["gc.mark.after_commit", "gc.sweep.after_commit", "gc.sweep.reap.after_commit"])
def test_an_upload_of_an_orphan_content_during_the_sweep(small_core: Core, point: str) -> None:
    """Issue 10 (ii): a chunk file with no row is being swept while an upload of the same content
    runs, at each step of the sweep: before it (the claim inserts a live row, the sweep skips the
    file), after its dying row committed (the claim revives the row, the reap skips it), after
    the reap (the claim inserts a row and the bytes are written again). The file reads back."""
    op = op_for(small_core)
    data = random.Random(21).randbytes(500_000)
    digest = plant_orphan(small_core, data)
    faults.arm(point, lambda: put(small_core, op, ("o.bin",), data), times=1)
    stats = gc.collect(small_core)
    assert stats.orphans_deleted == (1 if point == "gc.sweep.reap.after_commit" else 0)
    assert small_core.blobs.has(digest)
    assert reads.open_content(small_core, op.principal, ("o.bin",)).read_all() == data
    assert fsck.check(small_core, deep=True).ok


@pytest.mark.parametrize("size", [400_000, 5 << 20], ids=["one-file-path", "batch-path"])
def test_two_writers_of_the_same_content_never_replace_the_committed_file(tmp_path: Path, clock: FakeClock,
                                                                          size: int) -> None:
    """Issue 10 (iii): the second writer claimed the chunks, then the first writer wrote and
    committed them; the second then stores the same chunks: the committed files keep their inode
    (nothing is renamed over them) and both files read back. Inodes: the local folder, whatever
    the test backend's database."""
    core = make_core(tmp_path, clock, local_blobs=True)
    accounts.create_user(core, "alice", "alice-secret-pw")
    op = op_for(core)
    data = random.Random(22).randbytes(size)
    inodes: dict[bytes, int] = {}

    def first_writer() -> None:
        put(core, op, ("first.bin",), data)
        inodes.update((d, chunk_path(core, d).stat().st_ino) for d in digests_of(core, "first.bin"))

    faults.arm("writes.after_claim", first_writer, times=1)
    put(core, op, ("second.bin",), data)
    assert inodes, "the first writer did not run"
    assert {d: chunk_path(core, d).stat().st_ino for d in inodes} == inodes
    for name in ("first.bin", "second.bin"):
        assert reads.open_content(core, op.principal, (name,)).read_all() == data
    assert fsck.check(core, deep=True).ok
    core.db.dispose()


def test_a_claim_whose_writer_died_before_writing_is_not_trusted(small_core: Core) -> None:
    """A writer claimed a chunk (row live, no reference) and crashed before writing its bytes;
    the next writer of that content finds the row live but must still store the bytes."""
    op = op_for(small_core)
    data = random.Random(23).randbytes(500_000)
    with faults.armed("writes.after_claim", times=1), pytest.raises(faults.SimulatedCrash):
        put(small_core, op, ("dead.bin",), data)
    assert list(small_core.blobs.iter_digests()) == []
    put(small_core, op, ("alive.bin",), data)
    assert reads.open_content(small_core, op.principal, ("alive.bin",)).read_all() == data
    assert fsck.check(small_core, deep=True).ok


def test_a_commit_fails_when_its_chunk_row_was_collected_and_claimed_again(small_core: Core,
                                                                           clock: FakeClock) -> None:
    """A slow upload claimed and wrote a chunk; it outlasted the grace period, the GC collected
    the chunk, and another writer claimed the same digest again and died before writing it. The
    row is live again but is not the one the slow upload claimed: its commit must fail."""
    op = op_for(small_core)
    data = random.Random(24).randbytes(500_000)
    slow = Upload(small_core, op, ("slow.bin",))
    slow.write(data)
    slow._finish()  # claimed and written
    clock.advance(7200)
    assert gc.collect(small_core).chunks_deleted == 1
    with faults.armed("writes.after_claim", times=1), pytest.raises(faults.SimulatedCrash):
        put(small_core, op, ("dead.bin",), data)
    with pytest.raises(StorageUnavailable):
        slow.commit()
    with pytest.raises(NotFound):
        files.stat(small_core, op.principal, ("slow.bin",))
    assert fsck.check(small_core).ok


@pytest.mark.slow
def test_get_racing_overwrites_and_the_collector(tmp_path: Path) -> None:
    """Issue 10 (iv): readers GET two files while a writer overwrites them back and forth and the
    GC runs with a short grace period. A read returns one version whole, never an empty, partial
    or mixed body, and never DataMissing. A chunked read may fail with StorageUnavailable only if
    the GC collected the old version while it was being read (the read outlasted the grace)."""
    core = make_core(tmp_path, gc_grace_seconds=0.2)
    accounts.create_user(core, "alice", "alice-secret-pw")
    p = principal(core)
    op = op_for(core)
    rng = random.Random(25)
    small = [rng.randbytes(6000), rng.randbytes(7000)]  # inline
    big = [rng.randbytes(300_000), rng.randbytes(900_000)]  # chunks
    put(core, op, ("small.txt",), small[0])
    put(core, op, ("big.bin",), big[0])
    done = threading.Event()
    errors: list[BaseException] = []
    outcomes: dict[str, int] = {"whole": 0, "collected": 0}
    lock = threading.Lock()

    last = {("small.txt",): small[0], ("big.bin",): big[0]}

    def writer() -> None:
        try:
            for i in range(150):
                for name, versions in ((("small.txt",), small), (("big.bin",), big)):
                    if put_or_retry_later(core, op, name, versions[(i + 1) % 2]):
                        last[name] = versions[(i + 1) % 2]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                for name, versions in ((("small.txt",), small), (("big.bin",), big)):
                    node, body = reads.lookup(core, p, name)
                    assert body is not None
                    try:
                        got = body.read_all()
                    except DataMissing:
                        raise
                    except StorageUnavailable:
                        assert name == ("big.bin",)
                        with lock:
                            outcomes["collected"] += 1
                        continue
                    assert got in versions, f"{name}: a body of {len(got)} bytes is no version"
                    assert len(got) == node.size
                    with lock:
                        outcomes["whole"] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def collector() -> None:
        try:
            while not done.is_set():
                gc.collect(core, grace=0.2)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=collector),
               *(threading.Thread(target=reader) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert outcomes["whole"] > 0
    for name, data in last.items():
        assert reads.open_content(core, p, name).read_all() == data
    assert fsck.check(core, deep=True).ok
    core.db.dispose()
