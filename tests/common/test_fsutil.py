# SPDX-License-Identifier: EUPL-1.2
"""The durability helper: atomic replace, temp cleanup, batched commits, and the FileOps layer
every change goes through."""

from __future__ import annotations

import ast
import errno
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from cartable.common import fsutil
from cartable.common.fsutil import (
    TEMP_PREFIX,
    OsFileOps,
    atomic_write,
    commit_temps,
    fsync_dir,
    remove_stale_temps,
    use_file_ops,
    write_temp,
)

# The local folder's durability helpers themselves (tests/backend.py: local_only).
pytestmark = pytest.mark.local_only


class Recording(OsFileOps):
    """The real operations, each recorded as (name, path relative to ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, str]] = []

    def _rec(self, name: str, path: Path) -> None:
        self.calls.append((name, os.path.relpath(path, self.root)))

    def write_new(self, path: Path, pieces: Sequence[bytes | bytearray | memoryview], *, sync: bool) -> None:
        self._rec("write+sync" if sync else "write", path)
        super().write_new(path, pieces, sync=sync)

    def sync_dir(self, path: Path) -> None:
        self._rec("sync_dir", path)
        super().sync_dir(path)

    def mkdir(self, path: Path, mode: int = 0o777) -> None:
        self._rec("mkdir", path)
        super().mkdir(path, mode)

    def replace(self, src: Path, dst: Path) -> None:
        self._rec("replace", dst)
        super().replace(src, dst)

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        self._rec("unlink", path)
        super().unlink(path, missing_ok=missing_ok)


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_creates_and_replaces(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"one", durable=durable)
    assert target.read_bytes() == b"one"
    atomic_write(target, memoryview(b"two!"), durable=durable)
    assert target.read_bytes() == b"two!"
    assert temps(tmp_path) == []


def test_atomic_write_creates_missing_parents_and_syncs_them(tmp_path: Path) -> None:
    ops = Recording(tmp_path)
    target = tmp_path / "a" / "b" / "c" / "f"
    with use_file_ops(ops):
        atomic_write(target, b"x")
    assert target.read_bytes() == b"x"
    tmp = next(p for n, p in ops.calls if n == "write+sync")
    # each new folder, then its parent's sync; the temporary file written and synced, renamed
    # over the target, and the target's folder synced
    assert ops.calls == [("mkdir", "a"), ("sync_dir", "."), ("mkdir", "a/b"), ("sync_dir", "a"),
                         ("mkdir", "a/b/c"), ("sync_dir", "a/b"), ("write+sync", tmp),
                         ("replace", "a/b/c/f"), ("sync_dir", "a/b/c")]
    assert tmp.startswith("a/b/c/" + TEMP_PREFIX)


def test_not_durable_means_no_sync_at_all(tmp_path: Path) -> None:
    ops = Recording(tmp_path)
    with use_file_ops(ops):
        atomic_write(tmp_path / "a" / "f", b"x", durable=False)
    assert [n for n, _ in ops.calls] == ["mkdir", "write", "replace"]


def test_atomic_write_failure_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    class Full(OsFileOps):
        def replace(self, src: Path, dst: Path) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    with use_file_ops(Full()), pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert temps(tmp_path) == []


def test_write_failure_removes_temp(tmp_path: Path) -> None:
    # The temp file exists when write() fails on data that is not bytes-like.
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", object())  # type: ignore[arg-type]
    assert temps(tmp_path) == []
    assert not (tmp_path / "f").exists()


def test_write_temp_and_commit_batch(tmp_path: Path) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    pairs = []
    for i in range(6):
        folder = tmp_path / ("d1" if i % 2 else "d2")
        tmp = write_temp(folder, f"data{i}".encode())
        assert tmp.parent == folder and tmp.name.startswith(TEMP_PREFIX)
        pairs.append((tmp, folder / f"f{i}"))
    ops = Recording(tmp_path)
    with use_file_ops(ops):
        commit_temps(pairs)
    assert [n for n, _ in ops.calls] == ["replace"] * 6 + ["sync_dir"] * 2
    assert sorted(p for n, p in ops.calls if n == "sync_dir") == ["d1", "d2"]  # one sync per distinct folder
    for i, (_, final) in enumerate(pairs):
        assert final.read_bytes() == f"data{i}".encode()
    assert temps(tmp_path) == []


def test_commit_failure_removes_remaining_temps(tmp_path: Path) -> None:
    ok = write_temp(tmp_path, b"a")
    bad = write_temp(tmp_path, b"b")
    later = write_temp(tmp_path, b"c")
    pairs = [(ok, tmp_path / "ok"), (bad, tmp_path / "missing-dir" / "x"), (later, tmp_path / "later")]
    with pytest.raises(FileNotFoundError):
        commit_temps(pairs)
    assert (tmp_path / "ok").read_bytes() == b"a"
    assert not (tmp_path / "later").exists()
    assert temps(tmp_path) == []


def test_fsync_dir_fsyncs_that_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync_dir calls fsync(2) once, on a descriptor of that very folder (opened as a folder),
    and closes it. (That a missing folder sync loses a rename is shown by tests/powerloss.)"""
    folder = tmp_path / "d"
    folder.mkdir()
    synced: list[tuple[int, int, bool]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino, stat.S_ISDIR(st.st_mode)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    before = len(os.listdir("/proc/self/fd"))
    fsync_dir(folder)
    assert synced == [(folder.stat().st_dev, folder.stat().st_ino, True)]
    assert len(os.listdir("/proc/self/fd")) == before, "the folder's descriptor was left open"
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "file")


def test_remove_stale_temps(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    old = [tmp_path / f"{TEMP_PREFIX}old", tmp_path / "sub" / "deeper" / f"{TEMP_PREFIX}old2"]
    fresh = tmp_path / "sub" / f"{TEMP_PREFIX}fresh"
    keep = tmp_path / "sub" / "old-but-not-temp"
    for p in [*old, fresh, keep]:
        p.write_bytes(b"x")
    past = time.time() - 3600
    for p in [*old, keep]:
        os.utime(p, (past, past))
    assert remove_stale_temps(tmp_path, 600) == 2
    assert not any(p.exists() for p in old)
    assert fresh.exists() and keep.exists()
    os.utime(fresh, (past + 3000, past + 3000))  # 10 minutes old
    assert remove_stale_temps(tmp_path, 300) == 1
    assert not fresh.exists()


# ---------------------------------------------------------------------------------------------
# OsFileOps, the production pass-through: each sync it is asked for reaches the kernel, on the
# right file. (The power-loss simulator replaces OsFileOps, so these tests are what proves that
# the real layer does what the simulator assumes.)

def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _spy(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    real = getattr(target, name)

    def spy(fd: int) -> object:
        seen.append(_identity(fd))
        return real(fd)

    monkeypatch.setattr(target, name, spy)
    return seen


def _id(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


@pytest.mark.parametrize("sync", [True, False])
def test_write_new_fdatasyncs_the_new_file_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       sync: bool) -> None:
    synced = _spy(monkeypatch, fsutil, "_datasync")
    target = tmp_path / "f"
    OsFileOps().write_new(target, [b"ab", memoryview(b"cd"), bytearray(b"e" * 100_000)], sync=sync)
    assert target.read_bytes() == b"abcd" + b"e" * 100_000
    assert synced == ([_id(target)] if sync else [])
    with pytest.raises(FileExistsError):
        OsFileOps().write_new(target, [b"x"], sync=sync)


def test_sync_file_fsyncs_or_fdatasyncs_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"x")
    data = _spy(monkeypatch, fsutil, "_datasync")
    full = _spy(monkeypatch, os, "fsync")
    fsutil.datasync_file(target)
    assert (data, full) == ([_id(target)], [])
    fsutil.fsync_file(target)
    assert (data, full) == ([_id(target)], [_id(target)])


def test_syncfs_is_called_on_that_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch, fsutil, "_SYNCFS")
    fsutil.sync_filesystem(tmp_path)
    assert seen == [_id(tmp_path)]


def test_rename_noreplace_and_link_never_replace(tmp_path: Path) -> None:
    ops = OsFileOps()
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    for do in (ops.rename_noreplace, ops.link):
        with pytest.raises(FileExistsError):
            do(tmp_path / "a", tmp_path / "b")
        assert (tmp_path / "b").read_bytes() == b"b" and (tmp_path / "a").exists()
    ops.rename_noreplace(tmp_path / "a", tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]
    ops.unlink(tmp_path / "missing", missing_ok=True)
    with pytest.raises(FileNotFoundError):
        ops.unlink(tmp_path / "missing")


# Direct changes that are not the data folder's content, each with its reason.
ALLOWED = {
    "startup.py os.open": "creates SQLite's (empty) database file with its mode: SQLite's files are SQLite's",
    "store/meta/engine.py os.open": "the SQLite writers' lock file beside the database (empty: only flocked)",
    "common/faults.py os.open": "crash tests only: the hit count that the workers of one server share",
}
# pathlib.Path methods that change files, with their number of positional arguments.
PATH_METHODS = {"mkdir": 0, "touch": 0, "unlink": 0, "rmdir": 0, "write_bytes": 1, "write_text": 1,
                "rename": 1, "replace": 1, "hardlink_to": 1, "symlink_to": 1}


def test_every_change_to_the_data_folder_goes_through_fsutil_fs() -> None:
    """No module of cartable, apart from fsutil's pass-through, calls an operation that changes
    files directly (SQLite's own files are SQLite's business)."""
    src = Path(__file__).parents[2] / "src" / "cartable"
    changing = {"open", "mkdir", "makedirs", "rename", "replace", "link", "symlink", "unlink", "remove",
                "rmdir", "removedirs", "fsync", "fdatasync", "write_bytes", "write_text", "touch", "rmtree",
                "copy", "copy2", "copyfile", "copytree", "move", "truncate", "writev", "write", "utime"}
    offenders = []
    for path in src.rglob("*.py"):
        if path.name == "fsutil.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if node.func.attr in changing and isinstance(owner, ast.Name) and owner.id in ("os", "shutil"):
                    offenders.append(f"{path.relative_to(src)}:{node.lineno} {owner.id}.{node.func.attr}")
                elif PATH_METHODS.get(node.func.attr) == len(node.args):  # pathlib's, by their arity
                    offenders.append(f"{path.relative_to(src)}:{node.lineno} .{node.func.attr}()")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                mode = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "mode"), None)
                if not (isinstance(mode, ast.Constant) and set(str(mode.value)) <= set("rbt")):
                    offenders.append(f"{path.relative_to(src)}:{node.lineno} open() not only for reading")
    offenders = [o for o in offenders if o.split(" ", 1)[0].rsplit(":", 1)[0] + " " + o.split(" ", 1)[1]
                 not in ALLOWED]
    assert offenders == [], "file changes outside fsutil.FS: " + ", ".join(offenders)
