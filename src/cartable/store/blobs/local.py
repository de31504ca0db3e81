# SPDX-License-Identifier: EUPL-1.2
"""A chunk store over a local folder (the embedded deployment).

Layout: the chunk with digest ``h`` (lowercase hex) is the file ``root/h[:2]/h[2:4]/h``, framed by
``codec``. Implements ``ChunkStore``; thread safe (no shared mutable state).

A file under a chunk's final name is always complete: its bytes are written to a temporary file in
the same folder and made durable BEFORE the file is published under the final name, with a
no-replace rename (``fsutil.link_no_replace``). An existing chunk file is never replaced, so two
writers of the same content cannot swap an unsynced inode over a chunk an upload already committed:
the loser drops its temporary file. A chunk found already present still gets its folder entry made
durable (its writer may not have synced it yet). ``put_many`` works in one of two modes:

- batch (several chunks, durable, and ``fsutil.syncfs_usable()``: Linux 5.8 or later): write every
  temporary file unsynced, one syncfs(2) (data durable), the no-replace renames, one more syncfs
  (names durable, including those of chunks found present);
- one file at a time (a single chunk, or no trustworthy syncfs): write the temporary file and
  fdatasync it, rename without replacing, fsync the folder (also for a chunk found present).

Deleting is one unlink, not synced: a deletion a crash undoes leaves a complete chunk with no row,
which the GC's sweep finds again. Every change to the file system goes through ``common.fsutil`` (its
``FS`` layer: tests/powerloss/ swaps it for a power-loss simulator).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from cartable.common import fsutil
from cartable.common.faults import hit
from cartable.common.fsutil import TEMP_PREFIX
from cartable.common.hashing import DIGEST_SIZE, chunk_digest, digest_from_hex, digest_hex
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkMissing, StoreUnavailable

__all__ = ["LocalChunkStore"]

_RAW_HEADER = bytes((codec.RAW,))
# Chunks smaller than this are read, not mapped: a map costs two system calls and a TLB flush.
_MAP_MIN = 256 * 1024
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def _check_digest(digest: bytes) -> str:
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise ValueError(f"a chunk digest is {DIGEST_SIZE} bytes, got {digest!r:.80}")
    return digest_hex(digest)


class LocalChunkStore:
    """Content-addressed chunks in a folder. With ``durable=False`` nothing is synced (tests only)."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        # Decided once: whether one syncfs may stand for many fdatasyncs (see the module doc).
        self.batch_sync = durable and fsutil.syncfs_usable()
        try:
            fsutil.ensure_dir(self.root, durable=durable)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the chunk folder {self.root}: {exc.strerror}") from exc

    def _path(self, digest: bytes) -> Path:
        h = _check_digest(digest)
        return self.root / h[:2] / h[2:4] / h

    def put_many(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> list[int]:
        first: dict[bytes, int] = {}  # a digest given twice is stored once
        for i, (digest, _data) in enumerate(items):
            first.setdefault(digest, i)
        uniq = [items[i] for i in first.values()]
        try:
            if self.batch_sync and len(uniq) > 1:
                stored = self._put_batch(uniq)
            else:
                stored = [self._put_one(digest, data) for digest, data in uniq]
        except OSError as exc:
            where = exc.filename or self.root
            raise StoreUnavailable(f"cannot write chunks under {where}: {exc.strerror}") from exc
        by_digest = {d: size for (d, _), size in zip(uniq, stored)}
        return [by_digest[d] for d, _ in items]

    def _put_one(self, digest: bytes, data: bytes | memoryview) -> int:
        final = self._path(digest)
        present = _size_of(final)
        while present is None:
            header, payload = codec.encode_parts(data)
            fsutil.ensure_dir(final.parent, durable=self.durable)
            tmp = fsutil.write_temp(final.parent, (header, payload), durable=self.durable)
            hit("blobs.put.file.after_temp")
            try:
                published = fsutil.link_no_replace(tmp, final)
            except Exception:
                fsutil.remove_file(tmp)
                raise
            hit("blobs.put.file.after_rename")
            # Not published: another writer was first (its file is complete); if it is already
            # gone again (deleted by a GC that outran the caller's claim), write it once more.
            present = len(header) + len(payload) if published else _size_of(final)
        if self.durable:
            fsutil.fsync_dir(final.parent)  # our rename, or another writer's not yet synced
        hit("blobs.put.file.after_dir_sync")
        return present

    def _put_batch(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> list[int]:
        sizes: list[int | None] = []
        temps: list[tuple[int, Path, Path, int]] = []  # (index, temporary, final, stored size)
        try:
            for i, (digest, data) in enumerate(items):
                final = self._path(digest)
                sizes.append(_size_of(final))
                if sizes[-1] is not None:
                    continue
                header, payload = codec.encode_parts(data)
                fsutil.ensure_dir(final.parent, durable=False)  # the syncfs below covers new folders
                tmp = fsutil.write_temp(final.parent, (header, payload), durable=False)
                temps.append((i, tmp, final, len(header) + len(payload)))
            hit("blobs.put.batch.after_temps")
            if temps:
                fsutil.sync_filesystem(self.root)  # every temporary file's data is durable
                hit("blobs.put.batch.after_data_sync")
            while temps:
                i, tmp, final, size = temps[0]
                published = fsutil.link_no_replace(tmp, final)
                temps.pop(0)
                sizes[i] = size if published else _size_of(final)
                hit("blobs.put.batch.after_rename")
            # Our names, and those of chunks found present whose writer may not have synced yet.
            fsutil.sync_filesystem(self.root)
            hit("blobs.put.batch.after_name_sync")
        except Exception:
            for _i, tmp, _final, _size in temps:
                fsutil.remove_file(tmp)
            raise
        # A chunk another writer published and something deleted since: write it on its own.
        return [size if size is not None else self._put_one(digest, data)
                for (digest, data), size in zip(items, sizes)]

    def _open(self, digest: bytes) -> tuple[int, Path]:
        """A read-only descriptor of the chunk's file; ChunkMissing or StoreUnavailable."""
        path = self._path(digest)
        try:
            return fsutil.open_read(path), path
        except FileNotFoundError:
            raise ChunkMissing(digest) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read chunk file {path}: {exc.strerror}") from exc

    @staticmethod
    def _read(fd: int, size: int) -> bytes:
        """The chunk's content from its open file of ``size`` bytes."""
        if size and os.pread(fd, 1, 0) == _RAW_HEADER:
            # Stored raw: the payload is read straight into the bytes returned (no copy of the
            # whole chunk to drop its header byte).
            return _pread_all(fd, size - 1, 1)
        return codec.decode(_pread_all(fd, size, 0))

    def get(self, digest: bytes) -> bytes:
        fd, path = self._open(digest)
        try:
            return self._read(fd, os.fstat(fd).st_size)
        except OSError as exc:
            raise StoreUnavailable(f"cannot read chunk file {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def get_view(self, digest: bytes) -> bytes | memoryview:
        """An uncompressed chunk as a read-only map of its file (MAP_POPULATE: mapped in one
        call, no page faults while it is sent). Safe to keep: a chunk file is never rewritten or
        truncated, only unlinked, and a map keeps its inode alive. A small or compressed chunk is
        read as by ``get``, from the same open file."""
        fd, path = self._open(digest)
        try:
            size = os.fstat(fd).st_size
            if size < _MAP_MIN or os.pread(fd, 1, 0) != _RAW_HEADER:
                return self._read(fd, size)
            mapped = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _MAP_POPULATE, prot=mmap.PROT_READ)
        except OSError as exc:
            raise StoreUnavailable(f"cannot read chunk file {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        mapped.madvise(mmap.MADV_SEQUENTIAL)
        return memoryview(mapped)[1:]

    def get_range(self, digest: bytes, start: int, end: int) -> bytes:
        path = self._path(digest)
        try:
            with open(path, "rb") as f:
                header = f.read(1)
                if header == bytes((codec.RAW,)):
                    # Stored raw: read only the slice (a Range request into a big chunk).
                    f.seek(1 + start)
                    return f.read(max(0, end - start))
        except FileNotFoundError:
            raise ChunkMissing(digest) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read chunk file {path}: {exc.strerror}") from exc
        if not header:
            raise ValueError(f"stored chunk object {digest_hex(digest)} is empty (no header byte)")
        return self.get(digest)[start:end]

    def has(self, digest: bytes) -> bool:
        return self._path(digest).is_file()

    def delete(self, digest: bytes) -> None:
        # Not synced: if a crash undoes the deletion, the chunk is still unreferenced and GC removes it
        # again.
        path = self._path(digest)
        try:
            fsutil.remove_file(path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete chunk file {path}: {exc.strerror}") from exc

    def delete_many(self, digests: Sequence[bytes]) -> None:
        for digest in digests:
            self.delete(digest)

    def iter_digests(self, after: bytes | None = None) -> Iterator[tuple[bytes, float]]:
        # Folder names are the digest's first hex characters, so walking them and their files in
        # name order walks the digests in order; folders wholly before `after` are not read.
        start = digest_hex(after) if after is not None else ""
        try:
            for level1 in _subdirs(self.root, 2):
                if level1.name < start[:2]:
                    continue
                for level2 in _subdirs(level1, 2):
                    if level1.name + level2.name < start[:4]:
                        continue
                    for digest, mtime in _chunk_files(level2):
                        if after is None or digest > after:
                            yield digest, mtime
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
            return fsutil.remove_stale_temps(self.root, older_than_seconds)
        except OSError as exc:
            raise StoreUnavailable(f"cannot clean temporary files under {self.root}: {exc.strerror}") from exc


def _subdirs(folder: Path, name_len: int) -> list[Path]:
    """Fan-out folders of ``folder`` (hex names of ``name_len`` characters)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                (Path(e.path) for e in entries
                 if len(e.name) == name_len and not e.name.startswith(TEMP_PREFIX) and e.is_dir()),
                key=lambda p: p.name)
    except FileNotFoundError:
        return []


def _chunk_files(folder: Path) -> Iterator[tuple[bytes, float]]:
    try:
        with os.scandir(folder) as entries:
            found = sorted((e for e in entries if not e.name.startswith(TEMP_PREFIX) and e.is_file()),
                           key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in found:
        try:
            digest = digest_from_hex(entry.name)
            mtime = entry.stat().st_mtime
        except (ValueError, FileNotFoundError):
            continue  # a foreign file, or deleted concurrently
        yield digest, mtime


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes of ``fd`` from ``offset`` (one read for a whole chunk file, as a rule)."""
    data = os.pread(fd, size, offset)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, offset + got)
        if not more:
            raise OSError(0, f"the file ended {size - got} bytes early")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _size_of(path: Path) -> int | None:
    """The size of a published chunk file, or None when there is none."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
