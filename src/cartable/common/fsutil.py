# SPDX-License-Identifier: EUPL-1.2
"""Durable file writes: the one helper every write path uses.

Contract:
- ``atomic_write`` makes ``path`` hold exactly ``data``, or leaves it as it was: it writes a temporary
  file named ``TEMP_PREFIX + random`` in the same folder, syncs it, renames it over ``path`` and syncs the
  folder. With ``durable=True`` (the default) the new content survives a crash once it returns.
  Missing parent folders are created, and each new folder's parent is synced.
- ``write_temp`` + ``commit_temps`` split that into two steps so that a caller writing many files pays
  one file sync per file and one folder sync per distinct folder.
- On any error the temporary files are removed and the error is re-raised. Temporary files left by a
  crash are removed by ``remove_stale_temps``.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "fsync_file",
    "sync_filesystem",
    "TEMP_PREFIX",
    "atomic_write",
    "commit_temps",
    "ensure_dir",
    "fsync_dir",
    "remove_stale_temps",
    "write_temp",
]

TEMP_PREFIX = ".tmp-"

# fdatasync skips the metadata the file's content does not need; not every OS has it.
_datasync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (creations, renames) to stable storage."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, *, durable: bool = True) -> None:
    """Create ``path`` and its missing parents; when durable, sync the parent of each new folder."""
    if path.is_dir():
        return
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # created by a concurrent caller, which syncs its parent itself
        if durable:
            fsync_dir(folder.parent)


def _temp_path(folder: Path) -> Path:
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"


def _write_file(tmp: Path, data: bytes | memoryview | Sequence[bytes | memoryview], *, durable: bool) -> None:
    pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            views = [memoryview(p) for p in pieces]
            while views:
                written = os.writev(fd, views)
                while views and written >= len(views[0]):
                    written -= len(views[0])
                    views.pop(0)
                if views and written:
                    views[0] = views[0][written:]
            if durable:
                _datasync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_temp(dir: Path, data: bytes | memoryview | Sequence[bytes | memoryview], *,
               durable: bool = True) -> Path:
    """Write ``data`` to a new temporary file in the existing folder ``dir``; sync it when durable."""
    tmp = _temp_path(dir)
    _write_file(tmp, data, durable=durable)
    return tmp


def commit_temps(pairs: list[tuple[Path, Path]], *, durable: bool = True) -> None:
    """Rename each (temp, final) pair, then sync each distinct parent folder once when durable.

    If a rename fails, the temporary files not yet renamed are removed and the error is re-raised.
    """
    for i, (tmp, final) in enumerate(pairs):
        try:
            os.replace(tmp, final)
        except BaseException:
            for rest, _ in pairs[i:]:
                rest.unlink(missing_ok=True)
            raise
    if durable:
        for folder in dict.fromkeys(final.parent for _, final in pairs):
            fsync_dir(folder)


def atomic_write(path: Path, data: bytes | memoryview, *, durable: bool = True) -> None:
    """Replace the content of ``path`` with ``data`` atomically (and durably unless told otherwise)."""
    ensure_dir(path.parent, durable=durable)
    tmp = write_temp(path.parent, data, durable=durable)
    commit_temps([(tmp, path)], durable=durable)


def _load_syncfs() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    return fn


_SYNCFS = _load_syncfs()


def sync_filesystem(path: Path) -> bool:
    """Flush everything dirty on the file system holding ``path`` (data, inodes and directory
    entries: renames included) with one syncfs(2). Returns False where syncfs is unavailable,
    so the caller falls back to syncing files one by one."""
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


def remove_stale_temps(root: Path, older_than_seconds: float) -> int:
    """Remove temporary files under ``root`` not modified for ``older_than_seconds``; return the count."""
    deadline = time.time() - older_than_seconds
    removed = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_mtime < deadline:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue  # removed or renamed concurrently
    return removed
