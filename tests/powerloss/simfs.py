# SPDX-License-Identifier: EUPL-1.2
"""A power-loss simulator for the data folder, in the spirit of SQLite's crash-test VFS and
Syncthing's fake file systems.

``SimFS`` is a ``fsutil.FileOps``: every operation happens for real (the code under test sees a
normal folder), and is also recorded in a model of what the disk holds durably:

- a file's content becomes durable at its fdatasync/fsync (``write_new(sync=True)``,
  ``sync_file``);
- a change of a folder's entries (create, mkdir, rename, link, unlink) becomes durable at the
  fsync of that folder (``sync_dir``), in the order the changes were made;
- ``syncfs`` makes everything done before it durable.

Metadata commits are steps too (``db_commit``, called by the rig before each SQLite COMMIT).
Every step is numbered. With ``cut_at=k`` the power goes out just before step ``k``: that step and
every later one (in any thread) raise ``PowerCut``, a ``BaseException``, and do nothing, so no
cleanup code pretends to be the disk. ``cut_now`` cuts the power between two steps (after the last
one of a run). ``on_cut`` runs at the cut (the rig keeps a copy of the committed database then).

``recover(seed)`` then rewrites the real folder to a state a restarted machine may find:
- ``seed=None``: exactly what is durable; a file whose entry is durable but whose content was
  never synced is empty (ext4 ``data=ordered`` after a rename without fsync);
- a seed: what is durable, plus a seeded random subset of the changes that were not (in order,
  each applied only if what it renames or links is there), and for each file never synced its
  whole content, nothing, a prefix, or as many zero bytes (as a real disk may write some pages
  and not others).
Syncs are only recorded, never performed (the real disk does not need them to pass a test).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cartable.common.fsutil import OsFileOps

__all__ = ["PowerCut", "SimFS"]

Buffer = bytes | bytearray | memoryview
DIR = -1  # a namespace entry that is a folder (files are inode numbers >= 0)


class PowerCut(BaseException):
    """The power went out: raised at the cut, and by every file operation or commit after it."""


@dataclass
class _Inode:
    data: bytes
    synced: bool


@dataclass(frozen=True)
class _Change:
    folder: Path
    name: str
    target: int | None  # an inode, DIR, or None: the entry is removed


@dataclass(frozen=True)
class _Pending:
    folder: Path  # whose fsync makes the changes durable
    changes: tuple[_Change, ...]
    needs: tuple[Path, str] | None = None  # an entry that must exist for it to apply (rename, link)


Namespace = dict[Path, dict[str, int]]


class SimFS:
    """See the module doc. ``root``: the folder simulated (the data folder); ``untracked``: names
    relative to it that are not this layer's business (SQLite's files: the rig restores them)."""

    def __init__(self, root: Path, *, cut_at: int | None = None, renameat2: bool = True,
                 untracked: Iterable[str] = (), on_cut: Callable[[], None] | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self.cut_at = cut_at
        self.renameat2 = renameat2
        self.untracked = frozenset(untracked)
        self.on_cut = on_cut
        self.steps: list[str] = []  # what each step was, in order
        self.cut_before: str | None = None  # the step the power cut prevented
        self.dead = False
        self._os = OsFileOps()
        self._lock = threading.RLock()
        self._inodes: list[_Inode] = []
        self._current: dict[Path, int] = {}  # path -> inode, as the folder is now
        self._durable: Namespace = {}
        self._pending: list[_Pending] = []
        self._scan(self.root)

    # -- the model ------------------------------------------------------------------------------

    def _scan(self, folder: Path) -> None:
        entries = self._durable.setdefault(folder, {})
        for entry in os.scandir(folder):
            path = Path(entry.path)
            if self._rel(path) in self.untracked:
                continue
            if entry.is_dir(follow_symlinks=False):
                entries[entry.name] = DIR
                self._scan(path)
            else:
                ino = self._new_inode(path.read_bytes(), synced=True)
                entries[entry.name] = ino
                self._current[path] = ino

    def _rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def _tracked(self, path: Path) -> bool:
        p = os.path.abspath(path)
        return p.startswith(str(self.root) + os.sep) and self._rel(Path(p)) not in self.untracked

    def _new_inode(self, data: bytes, *, synced: bool) -> int:
        self._inodes.append(_Inode(data, synced))
        return len(self._inodes) - 1

    def _step(self, what: str) -> None:
        """Count one step (lock held); the cut, or a dead machine, raises PowerCut instead."""
        if self.dead:
            raise PowerCut(f"the power is off (cut before step {self.cut_at}: {self.cut_before})")
        if self.cut_at is not None and len(self.steps) == self.cut_at:
            self._die(what)
        self.steps.append(what)

    def _die(self, what: str) -> None:
        self.dead = True
        self.cut_before = what
        if self.on_cut is not None:
            self.on_cut()
        raise PowerCut(f"power cut before step {len(self.steps)}: {what}")

    def cut_now(self) -> None:
        """Cut the power between two steps (no step is running)."""
        with self._lock:
            if not self.dead:
                self.cut_at = len(self.steps)
                try:
                    self._die("(none: the run was over)")
                except PowerCut:
                    pass

    def _record(self, folder: Path, *changes: _Change, needs: tuple[Path, str] | None = None) -> None:
        self._pending.append(_Pending(folder, changes, needs))

    @staticmethod
    def _apply(ns: Namespace, pending: _Pending) -> bool:
        if pending.needs is not None and pending.needs[1] not in ns.get(pending.needs[0], {}):
            return False
        for ch in pending.changes:
            entries = ns.setdefault(ch.folder, {})
            if ch.target is None:
                entries.pop(ch.name, None)
            else:
                entries[ch.name] = ch.target
        return True

    # -- FileOps ----------------------------------------------------------------------------------

    def write_new(self, path: Path, pieces: Sequence[Buffer], *, sync: bool) -> None:
        if not self._tracked(path):
            return self._os.write_new(path, pieces, sync=sync)
        with self._lock:
            self._step(f"create {self._rel(path)}")
            data = b"".join(bytes(p) for p in pieces)
            self._os.write_new(path, [data], sync=False)
            ino = self._new_inode(data, synced=False)
            self._current[path] = ino
            self._record(path.parent, _Change(path.parent, path.name, ino))
            if sync:
                self._step(f"fdatasync {self._rel(path)}")
                self._inodes[ino].synced = True

    def sync_file(self, path: Path, *, data_only: bool) -> None:
        if not self._tracked(path):
            return self._os.sync_file(path, data_only=data_only)
        with self._lock:
            self._step(f"{'fdatasync' if data_only else 'fsync'} {self._rel(path)}")
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
            ino = self._current.get(path)
            if ino is not None:
                self._inodes[ino].synced = True

    def sync_dir(self, path: Path) -> None:
        path = Path(os.path.abspath(path))
        if path != self.root and not self._tracked(path):
            return self._os.sync_dir(path)
        with self._lock:
            self._step(f"fsync folder {self._rel(path)}")
            if not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
            keep: list[_Pending] = []
            for p in self._pending:
                if p.folder == path:
                    self._apply(self._durable, p)
                else:
                    keep.append(p)
            self._pending = keep

    def syncfs(self, path: Path) -> None:
        with self._lock:
            self._step(f"syncfs {self._rel(path)}")
            for p in self._pending:
                self._apply(self._durable, p)
            self._pending = []
            for ino in self._inodes:
                ino.synced = True

    def mkdir(self, path: Path, mode: int = 0o777) -> None:
        if not self._tracked(path):
            return self._os.mkdir(path, mode)
        with self._lock:
            self._step(f"mkdir {self._rel(path)}")
            os.mkdir(path, mode)
            self._record(path.parent, _Change(path.parent, path.name, DIR))

    def _move(self, src: Path, dst: Path, what: str, do: Callable[[Path, Path], None]) -> None:
        if src.parent != dst.parent:
            raise AssertionError(f"the simulator models renames inside one folder, not {src} -> {dst}")
        with self._lock:
            self._step(f"{what} {self._rel(src)} -> {dst.name}")
            do(src, dst)
            ino = self._current.pop(src)
            self._current[dst] = ino
            self._record(src.parent, _Change(src.parent, src.name, None), _Change(dst.parent, dst.name, ino),
                         needs=(src.parent, src.name))

    def replace(self, src: Path, dst: Path) -> None:
        if not self._tracked(dst):
            return self._os.replace(src, dst)
        self._move(src, dst, "rename", os.replace)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        if not self._tracked(dst):
            return self._os.rename_noreplace(src, dst)

        def do(s: Path, d: Path) -> None:
            if not self.renameat2:
                raise OSError(errno.EINVAL, "no RENAME_NOREPLACE on this (simulated) file system", str(d))
            self._os.rename_noreplace(s, d)

        self._move(src, dst, "rename-noreplace", do)

    def link(self, src: Path, dst: Path) -> None:
        if not self._tracked(dst):
            return self._os.link(src, dst)
        with self._lock:
            self._step(f"link {self._rel(src)} -> {dst.name}")
            os.link(src, dst)
            ino = self._current[src]
            self._current[dst] = ino
            self._record(dst.parent, _Change(dst.parent, dst.name, ino), needs=(src.parent, src.name))

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        if not self._tracked(path):
            return self._os.unlink(path, missing_ok=missing_ok)
        with self._lock:
            self._step(f"unlink {self._rel(path)}")
            try:
                os.unlink(path)
            except FileNotFoundError:
                if missing_ok:
                    return
                raise
            self._current.pop(path, None)
            self._record(path.parent, _Change(path.parent, path.name, None))

    def db_commit(self) -> None:
        """A metadata transaction is about to commit (a step like the others)."""
        with self._lock:
            self._step("commit a metadata transaction")

    def volatile(self) -> bool:
        """Whether anything done is not durable yet (else every variant of recover is the same)."""
        with self._lock:
            return bool(self._pending) or any(not ino.synced for ino in self._inodes)

    # -- after the cut ----------------------------------------------------------------------------

    def recover(self, seed: int | None, *, age: float = 2 * 86400.0) -> None:
        """Rewrite the real folder as the restarted machine finds it (see the module doc). Files
        get a modification time ``age`` seconds ago: the restarted process runs past the GC's
        grace period before its collector looks at them."""
        with self._lock:
            if not self.dead:
                raise AssertionError("recover() before the power was cut")
            rng = random.Random(seed) if seed is not None else None
            ns: Namespace = {folder: dict(entries) for folder, entries in self._durable.items()}
            if rng is not None:
                for p in self._pending:
                    if rng.random() < 0.5:
                        self._apply(ns, p)
            for entry in os.scandir(self.root):
                if entry.name in self.untracked:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            when = time.time() - age
            self._build(self.root, ns, rng, when)

    def _content(self, ino: int, rng: random.Random | None) -> bytes:
        node = self._inodes[ino]
        if node.synced:
            return node.data
        if rng is None:
            return b""
        data = node.data
        return rng.choice([data, b"", data[:rng.randrange(len(data) + 1)], bytes(len(data))])

    def _build(self, folder: Path, ns: Namespace, rng: random.Random | None, when: float) -> None:
        for name, target in sorted(ns.get(folder, {}).items()):
            path = folder / name
            if target == DIR:
                path.mkdir()
                self._build(path, ns, rng, when)
            else:
                path.write_bytes(self._content(target, rng))
                os.utime(path, (when, when))
