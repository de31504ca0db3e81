# SPDX-License-Identifier: EUPL-1.2
"""Durable file writes, and the one layer every file operation of the data folder goes through.

Every change cartable makes to its data folder (the chunk store; SQLite's own files excepted: SQLite
syncs them itself) is one call on ``FS``, an object implementing ``FileOps``: create-and-write,
file sync, directory sync, syncfs, mkdir, rename (replacing or not), link, unlink. In production
``FS`` is ``OsFileOps``, a thin pass-through to the system calls. Tests swap it with
``use_file_ops`` for a simulator that records what a power cut would keep (tests/powerloss/).
Reads (stat, listing, reading a file) do not go through it: they change nothing.

Contract of the helpers built on it:
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
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "FS",
    "TEMP_PREFIX",
    "FileOps",
    "OsFileOps",
    "atomic_write",
    "commit_temps",
    "datasync_file",
    "ensure_dir",
    "fsync_dir",
    "fsync_file",
    "link_no_replace",
    "open_read",
    "remove_file",
    "remove_stale_temps",
    "sync_filesystem",
    "syncfs_usable",
    "use_file_ops",
    "write_temp",
]

TEMP_PREFIX = ".tmp-"

Buffer = bytes | bytearray | memoryview

# fdatasync skips the metadata the file's content does not need; not every OS has it.
_datasync = getattr(os, "fdatasync", os.fsync)


class FileOps(Protocol):
    """The file-system operations cartable performs on its data folder, one method per step that
    matters for durability. Each behaves like its system call: errors are OSError subclasses
    (FileExistsError, FileNotFoundError...), and nothing is synced unless the method says so."""

    def write_new(self, path: Path, pieces: Sequence[Buffer], *, sync: bool) -> None:
        """Create ``path`` (FileExistsError if it exists), write the pieces in order, fdatasync the
        file when ``sync``, close it. On an error the file may exist with part of the data."""

    def sync_file(self, path: Path, *, data_only: bool) -> None:
        """fdatasync (``data_only``) or fsync an existing file."""

    def sync_dir(self, path: Path) -> None:
        """fsync a folder: the entries created, renamed or removed in it become durable."""

    def syncfs(self, path: Path) -> None:
        """syncfs(2) on the file system holding the folder ``path``: everything written to it
        before becomes durable. OSError when it reports a lost write (or does not exist)."""

    def mkdir(self, path: Path, mode: int = 0o777) -> None:
        """Create one folder (FileExistsError if it exists; ``mode`` as for os.mkdir, the umask
        applies); its entry is not synced."""

    def replace(self, src: Path, dst: Path) -> None:
        """rename(2): ``src`` takes the name ``dst``, replacing what was there."""

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        """renameat2(RENAME_NOREPLACE): FileExistsError when ``dst`` exists (nothing changes);
        OSError with errno ENOSYS, EINVAL or EOPNOTSUPP when the kernel or the file system has no
        such rename (nothing changes: use ``link``)."""

    def link(self, src: Path, dst: Path) -> None:
        """link(2): a second name for ``src``'s file; FileExistsError when ``dst`` exists."""

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        """unlink(2); a missing file is FileNotFoundError unless ``missing_ok``."""


class OsFileOps:
    """``FileOps`` by the system calls themselves (production)."""

    def write_new(self, path: Path, pieces: Sequence[Buffer], *, sync: bool) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            views = [memoryview(p) for p in pieces]
            while views:
                written = os.writev(fd, views)
                while views and written >= len(views[0]):
                    written -= len(views[0])
                    views.pop(0)
                if views and written:
                    views[0] = views[0][written:]
            if sync:
                _datasync(fd)
        finally:
            os.close(fd)

    def sync_file(self, path: Path, *, data_only: bool) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            (_datasync if data_only else os.fsync)(fd)
        finally:
            os.close(fd)

    def sync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def syncfs(self, path: Path) -> None:
        if _SYNCFS is None:
            raise OSError(errno.ENOSYS, "syncfs is not available", str(path))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(path))
        finally:
            os.close(fd)

    def mkdir(self, path: Path, mode: int = 0o777) -> None:
        os.mkdir(path, mode)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        global _RENAMEAT2
        if _RENAMEAT2 is None:
            raise OSError(errno.ENOSYS, "renameat2 is not available", str(dst))
        rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            _RENAMEAT2 = None  # the kernel has none: do not ask again
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        raise OSError(err, os.strerror(err), str(dst))

    def link(self, src: Path, dst: Path) -> None:
        os.link(src, dst)

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not missing_ok:
                raise


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
_SYNCFS = _libc_function("syncfs", [ctypes.c_int])

# The file operations in use: the system calls, unless a test swapped them (``use_file_ops``).
FS: FileOps = OsFileOps()


@contextmanager
def use_file_ops(ops: FileOps) -> Iterator[FileOps]:
    """Route every file operation of this module through ``ops`` inside the block (tests: a
    power-loss simulator). Process-wide: not for concurrent tests in one process."""
    global FS
    previous, FS = FS, ops
    try:
        yield ops
    finally:
        FS = previous


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (creations, renames, removals) to stable storage."""
    FS.sync_dir(path)


def fsync_file(path: Path) -> None:
    """fsync an existing file (its data and all its metadata)."""
    FS.sync_file(path, data_only=False)


def datasync_file(path: Path) -> None:
    """fdatasync an existing file (its data and the metadata needed to read it back)."""
    FS.sync_file(path, data_only=True)


def ensure_dir(path: Path, *, durable: bool = True, mode: int = 0o777) -> None:
    """Create ``path`` (with ``mode``, as os.mkdir) and its missing parents (default mode); when
    durable, sync the parent of each new folder."""
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
            FS.mkdir(folder, mode if folder == path else 0o777)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # created by a concurrent caller, which syncs its parent itself
        if durable:
            FS.sync_dir(folder.parent)


def _temp_path(folder: Path) -> Path:
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"


def write_temp(dir: Path, data: Buffer | Sequence[Buffer], *, durable: bool = True) -> Path:
    """Write ``data`` to a new temporary file in the existing folder ``dir``; sync it when durable.
    On an error the temporary file is removed."""
    tmp = _temp_path(dir)
    pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)
    try:
        FS.write_new(tmp, pieces, sync=durable)
    except BaseException:
        FS.unlink(tmp, missing_ok=True)
        raise
    return tmp


def commit_temps(pairs: list[tuple[Path, Path]], *, durable: bool = True) -> None:
    """Rename each (temp, final) pair, then sync each distinct parent folder once when durable.

    If a rename fails, the temporary files not yet renamed are removed and the error is re-raised.
    """
    for i, (tmp, final) in enumerate(pairs):
        try:
            FS.replace(tmp, final)
        except BaseException:
            for rest, _ in pairs[i:]:
                FS.unlink(rest, missing_ok=True)
            raise
    if durable:
        for folder in dict.fromkeys(final.parent for _, final in pairs):
            FS.sync_dir(folder)


def atomic_write(path: Path, data: bytes | memoryview, *, durable: bool = True) -> None:
    """Replace the content of ``path`` with ``data`` atomically (and durably unless told otherwise)."""
    ensure_dir(path.parent, durable=durable)
    tmp = write_temp(path.parent, data, durable=durable)
    commit_temps([(tmp, path)], durable=durable)


def remove_file(path: Path) -> None:
    """Unlink ``path``; a missing file is not an error. Not synced (see the callers)."""
    FS.unlink(path, missing_ok=True)


def link_no_replace(tmp: Path, final: Path) -> bool:
    """Publish the temporary file ``tmp`` under ``final`` unless ``final`` exists. Returns True if
    it was published, False if ``final`` already existed (then ``tmp`` is removed). Atomic: another
    process sees either no ``final`` or the complete file. Does not sync anything: the caller makes
    the data durable before and the name durable after. On another error, ``tmp`` is left in place
    for the caller to remove."""
    try:
        FS.rename_noreplace(tmp, final)
        return True
    except FileExistsError:
        FS.unlink(tmp)
        return False
    except OSError as exc:
        if exc.errno not in _NO_RENAMEAT2:
            raise
    try:
        FS.link(tmp, final)
    except FileExistsError:
        FS.unlink(tmp)
        return False
    FS.unlink(tmp)
    return True


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
    FS.syncfs(path)


def remove_stale_temps(root: Path, older_than_seconds: float) -> int:
    """Remove temporary files under ``root`` not modified for ``older_than_seconds``; return the count."""
    deadline = time.time() - older_than_seconds
    removed = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = Path(folder, name)
            try:
                if os.lstat(path).st_mtime < deadline:
                    FS.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue  # removed or renamed concurrently
    return removed


def open_read(path: Path) -> int:
    """A read-only descriptor of ``path`` (close it). Reads change nothing, so they do not go
    through ``FS``: this only keeps every ``os.open`` of the data folder in this module."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
