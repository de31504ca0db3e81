# SPDX-License-Identifier: EUPL-1.2
"""The durability helper: atomic replace, temp cleanup, batched commits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cartable.common import fsutil
from cartable.common.fsutil import (
    TEMP_PREFIX,
    atomic_write,
    commit_temps,
    fsync_dir,
    remove_stale_temps,
    write_temp,
)


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


def test_atomic_write_creates_missing_parents_and_syncs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = fsutil.fsync_dir

    def spy(path: Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(fsutil, "fsync_dir", spy)
    target = tmp_path / "a" / "b" / "c" / "f"
    atomic_write(target, b"x")
    assert target.read_bytes() == b"x"
    # each new folder's parent, then the target's folder after the rename
    assert synced == [tmp_path, tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]


def test_atomic_write_failure_leaves_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert temps(tmp_path) == []


def test_write_failure_removes_temp(tmp_path: Path) -> None:
    # The temp file exists when write() fails on data that is not bytes-like.
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", object())  # type: ignore[arg-type]
    assert temps(tmp_path) == []
    assert not (tmp_path / "f").exists()


def test_write_temp_and_commit_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    pairs = []
    for i in range(6):
        folder = tmp_path / ("d1" if i % 2 else "d2")
        tmp = write_temp(folder, f"data{i}".encode())
        assert tmp.parent == folder and tmp.name.startswith(TEMP_PREFIX)
        pairs.append((tmp, folder / f"f{i}"))
    synced: list[Path] = []
    monkeypatch.setattr(fsutil, "fsync_dir", lambda p: synced.append(p))
    commit_temps(pairs)
    assert sorted(synced) == [tmp_path / "d1", tmp_path / "d2"]  # one sync per distinct folder
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


def test_fsync_dir_runs(tmp_path: Path) -> None:
    fsync_dir(tmp_path)


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
