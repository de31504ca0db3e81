# SPDX-License-Identifier: EUPL-1.2
"""What only the local folder store can show: files, inodes, temporary files, syncfs and its fallback.
The contract every backend shares is test_blobs_contract.py."""

from __future__ import annotations

import ctypes
import errno
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cartable.common import fsutil
from cartable.common.fsutil import TEMP_PREFIX
from cartable.common.hashing import chunk_digest, digest_hex
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkStore, StoreUnavailable
from cartable.store.blobs.local import LocalChunkStore

# The local chunk folder itself (tests/backend.py: local_only).
pytestmark = pytest.mark.local_only

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


class TestLocalStore:
    def test_put_never_replaces_an_existing_chunk(self, backend: Backend) -> None:
        store, object_path = backend
        digest, data = item(b"same content" * 100)
        first = store.put_many([(digest, data)])
        path = object_path(digest)
        past = time.time() - 86400
        os.utime(path, (past, past))
        before = os.stat(path)
        other, other_data = item(b"another chunk" * 50)
        # alone (one file at a time), twice in one call, and within a batch of new chunks
        assert store.put_many([(digest, data)]) == first
        assert store.put_many([(digest, data), (digest, data)]) == first * 2
        assert store.put_many([(other, other_data), (digest, data)])[1] == first[0]
        after = os.stat(path)
        assert (after.st_ino, after.st_mtime, after.st_size) == (before.st_ino, before.st_mtime, before.st_size)
        assert store.get(digest) == data
        assert sorted(d for d, _ in store.iter_digests()) == sorted([digest, other])

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

    def test_a_present_chunk_is_reported_present_and_left_alone(self, backend: Backend) -> None:
        """Another writer's file (here stored raw although ours would be compressed) is kept as it
        is, and its stored size is what put_many reports."""
        store, object_path = backend
        digest, data = item(b"compress me please " * 10_000)
        planted = bytes((codec.RAW,)) + data
        path = object_path(digest)
        path.parent.mkdir(parents=True)
        path.write_bytes(planted)
        assert store.has(digest)
        new, new_data = item(b"fresh " * 5000)
        assert store.put_many([(digest, data)]) == [len(planted)]
        assert store.put_many([(new, new_data), (digest, data)])[1] == len(planted)
        assert path.read_bytes() == planted
        assert store.get(digest) == data



def _spy_syncs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the syncs the local store asks for (they still run)."""
    calls = {"datasync": 0, "syncfs": 0, "dir": 0}
    real_datasync, real_syncfs, real_dir = fsutil._datasync, fsutil.sync_filesystem, fsutil.fsync_dir

    def datasync(fd: int) -> None:
        calls["datasync"] += 1
        real_datasync(fd)

    def syncfs(path: Path) -> None:
        calls["syncfs"] += 1
        real_syncfs(path)

    def fsync_dir(path: Path) -> None:
        calls["dir"] += 1
        real_dir(path)

    monkeypatch.setattr(fsutil, "_datasync", datasync)
    monkeypatch.setattr(fsutil, "sync_filesystem", syncfs)
    monkeypatch.setattr(fsutil, "fsync_dir", fsync_dir)
    return calls


@pytest.mark.parametrize(("release", "usable"), [
    ("6.18.44-fc-v1045", True), ("5.8.0", True), ("5.10.0-28-amd64", True), ("5.7.19", False),
    ("4.19.0-27-amd64", False), ("3.10.0-1160.el7.x86_64", False), ("weird", False), ("", False),
])
def test_syncfs_is_trusted_only_from_linux_5_8(monkeypatch: pytest.MonkeyPatch, release: str,
                                               usable: bool) -> None:
    monkeypatch.setattr(fsutil, "_kernel_release", lambda: release)
    assert fsutil.syncfs_usable() is usable


def test_batches_use_two_syncfs_on_a_recent_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsutil, "_kernel_release", lambda: "6.1.0")
    store = LocalChunkStore(tmp_path / "chunks")
    assert store.batch_sync
    calls = _spy_syncs(monkeypatch)
    items = [item(f"chunk {i}".encode() * 1000) for i in range(5)]
    store.put_many(items)
    assert calls == {"datasync": 0, "syncfs": 2, "dir": 0}  # data, then names
    calls.update(datasync=0, syncfs=0, dir=0)
    store.put_many(items)  # all present: only their names are made durable
    assert calls == {"datasync": 0, "syncfs": 1, "dir": 0}


def test_old_kernel_falls_back_to_a_sync_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before Linux 5.8 syncfs returns 0 even when writeback failed: never rely on it there."""
    monkeypatch.setattr(fsutil, "_kernel_release", lambda: "5.4.0-150-generic")
    store = LocalChunkStore(tmp_path / "chunks")
    assert not store.batch_sync
    calls = _spy_syncs(monkeypatch)
    items = [item(f"chunk {i}".encode() * 1000) for i in range(5)]
    store.put_many(items)
    assert calls["syncfs"] == 0
    assert calls["datasync"] == 5  # every temporary file before its rename
    assert calls["dir"] >= 5  # every folder after its rename
    for digest, data in items:
        assert store.get(digest) == data


def test_a_syncfs_error_fails_the_batch_and_publishes_nothing(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsutil, "_kernel_release", lambda: "6.1.0")
    store = LocalChunkStore(tmp_path / "chunks")

    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(fsutil, "_SYNCFS", failing_syncfs)
    items = [item(f"chunk {i}".encode() * 1000) for i in range(3)]
    with pytest.raises(StoreUnavailable, match="Input/output error"):
        store.put_many(items)
    assert list(store.iter_digests()) == []
    assert [p for p in (tmp_path / "chunks").rglob(f"{TEMP_PREFIX}*")] == []


@pytest.mark.parametrize("renameat2", [True, False])
def test_link_no_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renameat2: bool) -> None:
    """renameat2(RENAME_NOREPLACE), or link(2) where it is missing: never replaces, drops the loser."""
    if not renameat2:
        monkeypatch.setattr(fsutil, "_RENAMEAT2", None)
    final = tmp_path / "final"
    first = fsutil.write_temp(tmp_path, b"first")
    assert fsutil.link_no_replace(first, final)
    inode = os.stat(final).st_ino
    second = fsutil.write_temp(tmp_path, b"second")
    assert not fsutil.link_no_replace(second, final)
    assert final.read_bytes() == b"first" and os.stat(final).st_ino == inode
    assert not first.exists() and not second.exists()


def test_renameat2_unsupported_by_the_file_system_falls_back_to_link(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def einval(*_args: object) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(fsutil, "_RENAMEAT2", einval)
    final = tmp_path / "final"
    assert fsutil.link_no_replace(fsutil.write_temp(tmp_path, b"a"), final)
    assert not fsutil.link_no_replace(fsutil.write_temp(tmp_path, b"b"), final)
    assert final.read_bytes() == b"a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_a_big_raw_chunk_is_viewed_in_place_and_outlives_its_deletion(tmp_path: Path) -> None:
    """get_view maps an uncompressed chunk file read-only (the download path copies it once,
    to the socket); a chunk deleted by the GC while a download holds its view still reads whole
    (the map keeps the inode)."""
    store = LocalChunkStore(tmp_path / "chunks", durable=False)
    big = random.Random(7).randbytes(1024 * 1024)
    small, zipped = b"tiny" * 10, b"0123456789" * 100_000
    items = [(chunk_digest(d), d) for d in (big, small, zipped)]
    store.put_many(items)
    view = store.get_view(items[0][0])
    assert isinstance(view, memoryview) and view.readonly and len(view) == len(big)
    store.delete(items[0][0])
    assert not store.has(items[0][0]) and bytes(view) == big
    assert store.get_view(items[1][0]) == small and store.get_view(items[2][0]) == zipped
