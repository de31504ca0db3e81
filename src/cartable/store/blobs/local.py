# SPDX-License-Identifier: EUPL-1.2
"""A chunk store over a local folder (the embedded deployment).

Layout: the chunk with digest ``h`` (lowercase hex) is the file ``root/h[:2]/h[2:4]/h``, framed by
``codec``. Files are written with ``common.fsutil``: all temporary files of a ``put_many`` are written
and synced first, then renamed, then each distinct folder is synced once, so a large upload pays one
file sync per chunk and one folder sync per folder touched. Implements ``ChunkStore``; thread safe
(no shared mutable state: the file system arbitrates concurrent writers of the same digest, whose
content is identical).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from cartable.common.fsutil import (
    TEMP_PREFIX,
    commit_temps,
    ensure_dir,
    fsync_dir,
    fsync_file,
    remove_stale_temps,
    sync_filesystem,
    write_temp,
)
from cartable.common.hashing import DIGEST_SIZE, chunk_digest, digest_from_hex, digest_hex
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkMissing, StoreUnavailable

__all__ = ["LocalChunkStore"]


def _check_digest(digest: bytes) -> str:
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise ValueError(f"a chunk digest is {DIGEST_SIZE} bytes, got {digest!r:.80}")
    return digest_hex(digest)


class LocalChunkStore:
    """Content-addressed chunks in a folder. With ``durable=False`` nothing is synced (tests only)."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self._syncfs = True
        try:
            ensure_dir(self.root, durable=durable)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the chunk folder {self.root}: {exc.strerror}") from exc

    def _path(self, digest: bytes) -> Path:
        h = _check_digest(digest)
        return self.root / h[:2] / h[2:4] / h

    def put_many(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> list[int]:
        pairs: list[tuple[Path, Path]] = []
        sizes: list[int] = []
        try:
            # Batches of several chunks are made durable with one syncfs(2) after the renames,
            # instead of a fsync per file and per folder. Until it returns no manifest points at
            # them, so a crash in between leaves only unreferenced files for the GC.
            batch = self.durable and len(items) > 1 and self._syncfs
            per_file = self.durable and not batch
            for digest, data in items:
                final = self._path(digest)
                header, payload = codec.encode_parts(data)
                ensure_dir(final.parent, durable=per_file)
                pairs.append((write_temp(final.parent, (header, payload), durable=per_file), final))
                sizes.append(len(header) + len(payload))
            commit_temps(pairs, durable=per_file)
            if batch and not sync_filesystem(self.root):
                self._syncfs = False
                for _tmp, final in pairs:
                    fsync_file(final)
                for folder in {final.parent for _t, final in pairs}:
                    fsync_dir(folder)
        except BaseException as exc:
            for tmp, _ in pairs:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                where = exc.filename or self.root
                raise StoreUnavailable(f"cannot write chunks under {where}: {exc.strerror}") from exc
            raise
        return sizes

    def get(self, digest: bytes) -> bytes:
        path = self._path(digest)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise ChunkMissing(digest) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read chunk file {path}: {exc.strerror}") from exc
        return codec.decode(blob)

    def has(self, digest: bytes) -> bool:
        return self._path(digest).is_file()

    def delete(self, digest: bytes) -> None:
        # Not synced: if a crash undoes the deletion, the chunk is still unreferenced and GC removes it
        # again.
        path = self._path(digest)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete chunk file {path}: {exc.strerror}") from exc

    def iter_digests(self) -> Iterator[tuple[bytes, float]]:
        try:
            for level1 in _subdirs(self.root, 2):
                for level2 in _subdirs(level1, 2):
                    yield from _chunk_files(level2)
        except OSError as exc:
            raise StoreUnavailable(f"cannot list chunks under {self.root}: {exc.strerror}") from exc

    def verify(self, digest: bytes) -> bool:
        try:
            data = self.get(digest)
        except (ChunkMissing, ValueError):
            return False
        return chunk_digest(data) == digest

    def cleanup_temps(self, older_than_seconds: float) -> int:
        try:
            return remove_stale_temps(self.root, older_than_seconds)
        except OSError as exc:
            raise StoreUnavailable(f"cannot clean temporary files under {self.root}: {exc.strerror}") from exc


def _subdirs(folder: Path, name_len: int) -> list[Path]:
    """Fan-out folders of ``folder`` (hex names of ``name_len`` characters)."""
    try:
        with os.scandir(folder) as entries:
            return [
                Path(e.path)
                for e in entries
                if len(e.name) == name_len and not e.name.startswith(TEMP_PREFIX) and e.is_dir()
            ]
    except FileNotFoundError:
        return []


def _chunk_files(folder: Path) -> Iterator[tuple[bytes, float]]:
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if not e.name.startswith(TEMP_PREFIX) and e.is_file()]
    except FileNotFoundError:
        return
    for entry in found:
        try:
            digest = digest_from_hex(entry.name)
            mtime = entry.stat().st_mtime
        except (ValueError, FileNotFoundError):
            continue  # a foreign file, or deleted concurrently
        yield digest, mtime
