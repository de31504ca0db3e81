# SPDX-License-Identifier: EUPL-1.2
"""Durable file writes: the one helper every write path uses.

Contract:
- ``atomic_write`` makes ``path`` hold exactly ``data``, or leaves it as it was: it writes a temporary
  file named ``TEMP_PREFIX + random`` in the same folder, syncs it, renames it over ``path`` and syncs the
  folder. With ``durable=True`` (the default) the new content survives a crash once it returns.
  Missing parent folders are created, and each new folder's parent is synced.
- ``write_temp`` + ``commit_temps`` split that into two steps so that a caller writing many files pays
  one file sync per file and one folder sync per distinct folder.
- ``link_no_replace`` is the other way to publish a temporary file: it never replaces an existing
  file (the content-addressed chunk store must never swap the inode of a chunk that may already be
  referenced). It uses renameat2(RENAME_NOREPLACE) where the kernel and file system have it, and
  falls back to link(2) + unlink of the temporary file, which is just as atomic.
- ``sync_filesystem`` is one syncfs(2) for a whole batch of files. ``syncfs_usable`` says whether to
  rely on it: only on Linux 5.8 and later does syncfs report writeback errors; elsewhere the caller
  syncs file by file.
- On any error the temporary files are removed and the error is re-raised. Temporary files left by a
  crash are removed by ``remove_stale_temps``.

Every change the chunk store makes to the file system goes through the few functions here
(``ensure_dir``, ``write_temp``, ``link_no_replace``, ``remove_file``, the syncs), so a test layer
that simulates power loss can later wrap exactly these.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "commit_temps",
    "datasync_file",
    "ensure_dir",
    "fsync_dir",
    "fsync_file",
    "link_no_replace",
    "remove_file",
    "remove_stale_temps",
    "sync_filesystem",
    "syncfs_usable",
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


def datasync_file(path: Path) -> None:
    """fdatasync an existing file (its data and the metadata needed to read it back)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _datasync(fd)
    finally:
        os.close(fd)


def remove_file(path: Path) -> None:
    """Unlink ``path``; a missing file is not an error. Not synced (see the callers)."""
    path.unlink(missing_ok=True)


def _libc_function(name: str, argtypes: list[Any]) -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAMEAT2 = _libc_function("renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_uint])
# Errors meaning "this kernel or file system has no renameat2 flags": use link(2) instead.
_NO_RENAMEAT2 = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def link_no_replace(tmp: Path, final: Path) -> bool:
    """Publish the temporary file ``tmp`` under ``final`` unless ``final`` exists. Returns True if
    it was published, False if ``final`` already existed (then ``tmp`` is removed). Atomic: another
    process sees either no ``final`` or the complete file. Does not sync anything: the caller makes
    the data durable before and the name durable after. On another error, ``tmp`` is left in place
    for the caller to remove."""
    global _RENAMEAT2
    if _RENAMEAT2 is not None:
        rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(final), _RENAME_NOREPLACE)
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            os.unlink(tmp)
            return False
        if err not in _NO_RENAMEAT2:
            raise OSError(err, os.strerror(err), str(final))
        if err == errno.ENOSYS:
            _RENAMEAT2 = None  # the kernel has none: do not ask again
    try:
        os.link(tmp, final)
    except FileExistsError:
        os.unlink(tmp)
        return False
    os.unlink(tmp)
    return True


_SYNCFS = _libc_function("syncfs", [ctypes.c_int])


def _kernel_release() -> str:
    return os.uname().release


def _kernel_at_least(release: str, want: tuple[int, int]) -> bool:
    nums: list[int] = []
    for piece in release.split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            return False
        nums.append(int(digits))
    return len(nums) == 2 and (nums[0], nums[1]) >= want


def syncfs_usable() -> bool:
    """Whether ``sync_filesystem`` may stand for per-file syncs: syncfs(2) exists and reports
    writeback errors (Linux 5.8 and later; before, it returned 0 even when data was lost)."""
    return _SYNCFS is not None and sys.platform.startswith("linux") and _kernel_at_least(_kernel_release(),
                                                                                         (5, 8))


def sync_filesystem(path: Path) -> None:
    """Flush everything dirty on the file system holding ``path`` (data, inodes and directory
    entries: renames included) with one syncfs(2). Call only when ``syncfs_usable()``; raises
    OSError when syncfs reports an error (a write to that file system was lost)."""
    if _SYNCFS is None:
        raise OSError(errno.ENOSYS, "syncfs is not available", str(path))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


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
