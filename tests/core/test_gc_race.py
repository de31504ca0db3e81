# SPDX-License-Identifier: EUPL-1.2
"""GC safety: uploads that reuse existing chunks race the garbage collector; no manifest may
ever point at a missing chunk (the classic way deduplicating stores lose data)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from cartable.core import accounts, files, fsck, gc, reads
from cartable.core.context import Core
from cartable.core.errors import NotFound, StorageUnavailable
from cartable.core.writes import Upload
from tests.core.conftest import FakeClock, make_core, op_for, principal


def put(core: Core, op: object, parts: tuple[str, ...], data: bytes) -> None:
    up = Upload(core, op, parts)  # type: ignore[arg-type]
    for i in range(0, len(data), 1 << 20):
        up.write(data[i:i + (1 << 20)])
    up.commit()


def test_touched_chunk_survives_gc_until_commit(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(1).randbytes(600_000)
    put(small_core, op, ("a.bin",), data)
    files.delete(small_core, op, ("a.bin",))  # the chunk now has no reference
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
    files.delete(small_core, op, ("a.bin",))
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
    files.delete(small_core, op, ("a.bin",))
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
    files.delete(small_core, op, ("a.bin",))
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
                        files.delete(core, op, name)
                        with lock:
                            acked.pop(name, None)
                    except NotFound:
                        pass
                else:
                    data = pool[r.randrange(len(pool))]
                    put(core, op, name, data)
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
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert collected[0] > 0, "the GC never collected anything: the race was not exercised"
    for name, data in acked.items():
        assert reads.open_content(core, p, name).read_all() == data
    report = fsck.check(core, deep=True)
    assert report.ok, report.problems
