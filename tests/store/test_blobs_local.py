# SPDX-License-Identifier: EUPL-1.2
"""Chunk store contract, run on the local folder backend (S3 joins by adding a fixture param)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cartable.common.fsutil import TEMP_PREFIX
from cartable.common.hashing import chunk_digest, digest_hex
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkMissing, ChunkStore
from cartable.store.blobs.local import LocalChunkStore

# Each backend: (build store, path of a stored object on disk or None when the test cannot reach it).
Backend = tuple[ChunkStore, Callable[[bytes], Path]]


@pytest.fixture(params=["local-durable", "local-fast"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    root = tmp_path / "chunks"
    store = LocalChunkStore(root, durable=request.param == "local-durable")

    def object_path(digest: bytes) -> Path:
        h = digest_hex(digest)
        return root / h[:2] / h[2:4] / h

    return store, object_path


@pytest.fixture
def store(backend: Backend) -> ChunkStore:
    return backend[0]


def item(data: bytes) -> tuple[bytes, bytes]:
    return chunk_digest(data), data


class TestChunkStoreContract:
    def test_round_trip(self, store: ChunkStore) -> None:
        rng = random.Random(1)
        datas = [b"", b"x", rng.randbytes(100_000), b"abc" * 50_000, rng.randbytes(3 * 1024 * 1024)]
        items = [item(d) for d in datas]
        sizes = store.put_many(items)
        assert len(sizes) == len(items)
        for digest, data in items:
            assert store.has(digest)
            assert store.get(digest) == data
            assert store.verify(digest)

    def test_memoryview_input(self, store: ChunkStore) -> None:
        data = b"view" * 1000
        store.put_many([(chunk_digest(data), memoryview(data))])
        assert store.get(chunk_digest(data)) == data

    def test_missing(self, store: ChunkStore) -> None:
        digest = chunk_digest(b"never stored")
        assert not store.has(digest)
        with pytest.raises(ChunkMissing) as info:
            store.get(digest)
        assert info.value.digest == digest
        assert digest_hex(digest) in str(info.value)
        assert not store.verify(digest)

    def test_put_is_idempotent_and_refreshes_mtime(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(b"same content" * 100)
        first = store.put_many([(digest, data)])
        past = time.time() - 86400
        os.utime(object_path(digest), (past, past))
        assert store.put_many([(digest, data), (digest, data)]) == first * 2
        assert store.get(digest) == data
        mtimes = dict(store.iter_digests())
        assert list(mtimes) == [digest]
        assert mtimes[digest] > past + 3600

    def test_delete(self, store: ChunkStore) -> None:
        digest, data = item(b"to delete")
        store.put_many([(digest, data)])
        store.delete(digest)
        assert not store.has(digest)
        store.delete(digest)  # missing is not an error
        with pytest.raises(ChunkMissing):
            store.get(digest)

    def test_compressible_data_is_stored_compressed(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(b"compress me please " * 10_000)
        [size] = store.put_many([(digest, data)])
        blob = object_path(digest).read_bytes()
        assert blob[0] == codec.ZSTD
        assert size == len(blob) < len(data) // 10

    def test_random_data_is_stored_raw(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(random.Random(2).randbytes(500_000))
        [size] = store.put_many([(digest, data)])
        blob = object_path(digest).read_bytes()
        assert blob[0] == codec.RAW
        assert size == len(blob) == len(data) + 1

    @pytest.mark.parametrize("payload", [b"compress me please " * 10_000, bytes(range(256)) * 3])
    def test_verify_detects_corruption(self, backend: Backend, payload: bytes) -> None:
        store, object_path = backend
        digest, data = item(payload)
        store.put_many([(digest, data)])
        path = object_path(digest)
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
        assert not store.verify(digest)

    def test_undecodable_object(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(b"header")
        store.put_many([(digest, data)])
        object_path(digest).write_bytes(b"\x07garbage")
        with pytest.raises(ValueError):
            store.get(digest)
        assert not store.verify(digest)

    def test_iter_digests_lists_chunks_only(self, backend: Backend) -> None:
        store, object_path = backend
        items = [item(f"chunk {i}".encode()) for i in range(20)]
        store.put_many(items)
        folder = object_path(items[0][0]).parent
        (folder / f"{TEMP_PREFIX}leftover").write_bytes(b"x")
        (folder / "not-a-digest").write_bytes(b"x")
        assert sorted(d for d, _ in store.iter_digests()) == sorted(d for d, _ in items)

    def test_concurrent_put_many(self, backend: Backend) -> None:
        store, object_path = backend
        rng = random.Random(3)
        pool = [
            item(rng.randbytes(rng.randint(1, 200_000)) if i % 2 else b"z" * (1000 + i)) for i in range(64)
        ]
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def worker(seed: int) -> None:
            local = random.Random(seed)
            try:
                barrier.wait()
                for _ in range(10):
                    batch = local.sample(pool, 12)
                    store.put_many(batch)
                    for digest, data in local.sample(batch, 3):
                        assert store.get(digest) == data
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        stored = {d for d, _ in store.iter_digests()}
        for digest, data in pool:
            if digest in stored:
                assert store.get(digest) == data and store.verify(digest)
        assert stored == {d for d, _ in pool}  # 8 threads x 10 batches x 12 of 64 covers all, seeded
        root = object_path(pool[0][0]).parents[2]
        assert [p for p in root.rglob(f"{TEMP_PREFIX}*")] == []

    def test_cleanup_temps(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(b"kept")
        store.put_many([(digest, data)])
        folder = object_path(digest).parent
        stale = folder / f"{TEMP_PREFIX}stale"
        fresh = folder / f"{TEMP_PREFIX}fresh"
        for p in (stale, fresh):
            p.write_bytes(b"partial")
        past = time.time() - 7200
        os.utime(stale, (past, past))
        assert store.cleanup_temps(3600) == 1
        assert not stale.exists() and fresh.exists()
        assert store.get(digest) == data
