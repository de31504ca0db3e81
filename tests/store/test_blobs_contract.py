# SPDX-License-Identifier: EUPL-1.2
"""The chunk store contract (store/blobs/base.py), written once and run on every backend: the local
folder (durable and not), Ceph RGW and OpenStack Swift's s3api (real servers started by
scripts/engines, a fresh bucket per test).

Behaviour that only one backend can show (inodes, syncfs, temporary files) lives in
test_blobs_local.py and test_blobs_s3.py.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from cartable.common.hashing import chunk_digest, digest_hex
from cartable.core import accounts, fsck, gc
from cartable.core.context import Core, Limits
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkMissing, ChunkStore
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta.engine import MetaDB, sqlite_url
from cartable.store.meta.migrate import upgrade
from tests.core.conftest import FakeClock, op_for
from tests.engines import S3_ENGINES, engine, new_bucket

# Runs every chunk store (folder, RGW, Swift) on its own engines, whatever the test backend: once is enough
# (tests/backend.py: local_only).
pytestmark = pytest.mark.local_only

BACKENDS = ["local-durable", "local-fast", *(pytest.param(f"s3-{e}", marks=pytest.mark.s3) for e in S3_ENGINES)]


@dataclass
class Backend:
    """A store plus raw access to its stored objects, for tests that damage or plant them."""

    name: str
    store: ChunkStore
    read_raw: Callable[[bytes], bytes]
    write_raw: Callable[[bytes, bytes], None]


def _local(root: Path, durable: bool) -> Backend:
    store = LocalChunkStore(root, durable=durable)

    def path(digest: bytes) -> Path:
        h = digest_hex(digest)
        return root / h[:2] / h[2:4] / h

    def write_raw(digest: bytes, blob: bytes) -> None:
        path(digest).parent.mkdir(parents=True, exist_ok=True)
        path(digest).write_bytes(blob)

    return Backend("local", store, lambda d: path(d).read_bytes(), write_raw)


def s3_store(name: str) -> ChunkStore:
    from cartable.store.blobs.s3 import S3ChunkStore, S3Config

    eng = engine(name)
    env = eng.env
    return S3ChunkStore(S3Config(env["S3_ENDPOINT_URL"], new_bucket(eng), env["AWS_ACCESS_KEY_ID"],
                                 env["AWS_SECRET_ACCESS_KEY"]))


def _s3(name: str) -> Backend:
    import obstore

    store = s3_store(name)
    raw = store._store  # type: ignore[attr-defined]
    key = store._key  # type: ignore[attr-defined]
    return Backend(f"s3-{name}", store, lambda d: bytes(obstore.get(raw, key(d)).bytes()),
                   lambda d, blob: obstore.put(raw, key(d), blob) and None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    if name.startswith("local"):
        return _local(tmp_path / "chunks", durable=name == "local-durable")
    return _s3(name.removeprefix("s3-"))


@pytest.fixture
def store(backend: Backend) -> ChunkStore:
    return backend.store


def item(data: bytes) -> tuple[bytes, bytes]:
    return chunk_digest(data), data


def test_round_trip(store: ChunkStore) -> None:
    rng = random.Random(1)
    datas = [b"", b"x", rng.randbytes(100_000), b"abc" * 50_000, rng.randbytes(3 * 1024 * 1024)]
    items = [item(d) for d in datas]
    sizes = store.put_many(items)
    assert len(sizes) == len(items)
    for (digest, data), size in zip(items, sizes):
        assert store.has(digest)
        assert store.get(digest) == data
        assert bytes(store.get_view(digest)) == data
        assert store.verify(digest)
        assert 0 < size <= len(data) + 1
    assert sizes[3] < len(datas[3]) // 10  # compressible: stored compressed
    assert sizes[2] == len(datas[2]) + 1  # random: stored raw behind its header byte


def test_a_digest_twice_in_one_call(store: ChunkStore) -> None:
    digest, data = item(b"twice" * 1000)
    a, b = store.put_many([(digest, data), (digest, memoryview(data))])
    assert a == b and store.get(digest) == data


def test_missing(store: ChunkStore) -> None:
    digest = chunk_digest(b"never stored")
    assert not store.has(digest)
    with pytest.raises(ChunkMissing) as info:
        store.get(digest)
    assert info.value.digest == digest and digest_hex(digest) in str(info.value)
    with pytest.raises(ChunkMissing):
        store.get_view(digest)
    with pytest.raises(ChunkMissing):
        store.get_range(digest, 0, 10)
    assert not store.verify(digest)
    store.delete(digest)  # missing is not an error
    store.delete_many([digest, chunk_digest(b"neither")])


def test_put_never_replaces_an_existing_chunk(backend: Backend) -> None:
    """A chunk another upload committed keeps its stored object: a second put with the same
    digest (here with other bytes, as a buggy or hostile writer would send) changes nothing."""
    store = backend.store
    digest, data = item(b"same content" * 100)
    first = store.put_many([(digest, data)])
    before = backend.read_raw(digest)
    other, other_data = item(b"another chunk" * 50)
    assert store.put_many([(digest, b"WRONG BYTES" * 100)]) == first
    assert store.put_many([(other, other_data), (digest, b"WRONG")])[1] == first[0]
    assert backend.read_raw(digest) == before
    assert store.get(digest) == data


def test_ranges(store: ChunkStore) -> None:
    rng = random.Random(4)
    raw_data = rng.randbytes(700_000)
    zipped_data = b"0123456789abcdef" * 40_000
    for digest, data in (item(raw_data), item(zipped_data)):
        store.put_many([(digest, data)])
        for start, end in [(0, 1), (0, len(data)), (1, 2), (12_345, 456_789), (len(data) - 1, len(data)),
                           (100, 100), (len(data) - 10, len(data) + 1000)]:
            assert store.get_range(digest, start, end) == data[start:end], (start, end)


def test_delete_and_delete_many(store: ChunkStore) -> None:
    items = [item(f"to delete {i}".encode() * 100) for i in range(5)]
    store.put_many(items)
    store.delete(items[0][0])
    assert not store.has(items[0][0])
    store.delete_many([d for d, _ in items[1:4]])
    assert [store.has(d) for d, _ in items] == [False, False, False, False, True]
    with pytest.raises(ChunkMissing):
        store.get(items[2][0])


def test_iter_digests_in_order_and_resumable(store: ChunkStore) -> None:
    items = [item(f"chunk {i}".encode()) for i in range(40)]
    store.put_many(items)
    listed = [d for d, _ in store.iter_digests()]
    assert listed == sorted(d for d, _ in items)
    now = time.time()
    assert all(now - 3600 < mtime < now + 3600 for _, mtime in store.iter_digests())
    # resume after any digest, including one that is not stored
    for cut in (listed[0], listed[17], listed[-1], chunk_digest(b"not stored")):
        assert [d for d, _ in store.iter_digests(after=cut)] == [d for d in listed if d > cut]
    # a walk that stops early
    walk = store.iter_digests()
    assert [next(walk)[0] for _ in range(3)] == listed[:3]


@pytest.mark.parametrize("batch", [1, 6])
def test_concurrent_put_of_the_same_digests(store: ChunkStore, batch: int) -> None:
    """Threads storing the same chunks at the same instant: each call returns only when the chunks
    are there, every one reads back whole."""
    rng = random.Random(7)
    items = [item(rng.randbytes(50_000 + i)) for i in range(batch)]
    barrier = threading.Barrier(8)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            sizes = store.put_many(items)
            for digest, data in items:
                assert store.get(digest) == data
            results.append(sizes)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert sorted(d for d, _ in store.iter_digests()) == sorted(d for d, _ in items)


def test_damaged_objects_are_detected(backend: Backend) -> None:
    store = backend.store
    flipped, flipped_data = item(bytes(range(256)) * 300)
    garbage, garbage_data = item(b"header")
    store.put_many([(flipped, flipped_data), (garbage, garbage_data)])
    blob = bytearray(backend.read_raw(flipped))
    blob[len(blob) // 2] ^= 0x01
    backend.write_raw(flipped, bytes(blob))
    backend.write_raw(garbage, b"\x07garbage")
    assert not store.verify(flipped) and not store.verify(garbage)
    with pytest.raises(ValueError):
        store.get(garbage)
    with pytest.raises(ValueError):
        store.get_view(garbage)
    if backend.name.startswith("s3"):
        with pytest.raises(ValueError):  # ChunkCorrupt: S3 reads are re-hashed
            store.get(flipped)


def test_an_interrupted_put_leaves_nothing_or_the_whole_chunk(backend: Backend) -> None:
    """A put that fails half way (the local store: a crash after its temporary file; S3: a request
    that times out while sending) leaves the chunk absent or whole, never partial, and a later put
    stores it."""
    store = backend.store
    digest, data = item(random.Random(9).randbytes(4 * 1024 * 1024))
    if backend.name == "local":
        from cartable.common.faults import SimulatedCrash, armed, crash

        with armed("blobs.put.file.after_temp", crash), pytest.raises(SimulatedCrash):
            store.put_many([(digest, data)])
    else:
        from cartable.store.blobs.base import StoreUnavailable
        from cartable.store.blobs.s3 import S3ChunkStore, S3Config

        cfg = store.config  # type: ignore[attr-defined]
        hasty = S3ChunkStore(S3Config(cfg.endpoint, cfg.bucket, cfg.access_key, cfg.secret_key,
                                      timeout_seconds=0.001, max_retries=0, retry_timeout_seconds=0.01))
        with pytest.raises(StoreUnavailable):
            hasty.put_many([(digest, data)])
    try:
        assert store.get(digest) == data
    except ChunkMissing:
        pass
    assert [d for d, _ in store.iter_digests()] in ([], [digest])
    store.put_many([(digest, data)])
    assert store.get(digest) == data


@pytest.fixture
def gc_core(backend: Backend, tmp_path: Path) -> Iterator[tuple[Core, FakeClock]]:
    clock = FakeClock(time.time())
    db = MetaDB(sqlite_url(tmp_path / "meta.db"))
    upgrade(db)
    core = Core(db, backend.store, Limits(write_batch_bytes=1, gc_grace_seconds=3600.0))
    core.clock = clock  # type: ignore[assignment]
    accounts.create_user(core, "alice", "alice-secret-pw")
    yield core, clock
    db.dispose()


def test_gc_protocol(gc_core: tuple[Core, FakeClock]) -> None:
    """The GC on this backend: released chunks go after the grace period, referenced ones stay,
    orphan objects (no row) are swept once older than the grace period; fsck is clean after."""
    from cartable.core import files, trash
    from cartable.core.writes import Upload

    core, clock = gc_core
    op = op_for(core)
    rng = random.Random(5)
    kept, dropped = rng.randbytes(300_000), rng.randbytes(200_000)
    for name, data in (("kept.bin", kept), ("dropped.bin", dropped)):
        up = Upload(core, op, (name,))
        up.write(data)
        up.commit()
    orphan, orphan_data = item(b"nobody references me" * 1000)
    core.blobs.put_many([(orphan, orphan_data)])
    files.delete(core, op, ("dropped.bin",))
    trash.empty(core, op)  # the trash held its chunks; purged, they are released
    before = {d for d, _ in core.blobs.iter_digests()}
    stats = gc.collect(core)
    assert stats.chunks_deleted == 0 and stats.orphans_deleted == 0  # all within the grace period
    clock.advance(3600 * 2)
    stats = gc.collect(core)
    assert stats.chunks_deleted > 0 and stats.orphans_deleted == 1
    after = {d for d, _ in core.blobs.iter_digests()}
    assert orphan not in after and after < before
    from cartable.core import reads

    assert reads.open_content(core, op.principal, ("kept.bin",)).read_all() == kept
    report = fsck.check(core, deep=True)
    assert report.ok, report.problems
    assert report.orphan_blobs == 0
    assert codec  # the framing module is part of what every backend stores
