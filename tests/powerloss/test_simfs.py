# SPDX-License-Identifier: EUPL-1.2
"""The simulator itself: it keeps exactly what a sync made durable, no less and no more, so that
the power-loss tests can fail for the right reasons. (That every file operation of cartable goes
through fsutil.FS is checked by tests/common/test_fsutil.py, which walks the source.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cartable.common import fsutil
from tests.powerloss.simfs import PowerCut, SimFS

pytestmark = pytest.mark.powerloss

DATA = b"chunk bytes " * 100


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old").write_bytes(b"old content")  # there before: durable
    return tmp_path


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def crash(sim: SimFS, seed: int | None = None) -> None:
    sim.cut_now()
    sim.recover(seed)


def publish(folder: Path, name: str, data: bytes, *, sync_data: bool, sync_dir: bool) -> None:
    tmp = fsutil.write_temp(folder, data, durable=sync_data)
    assert fsutil.link_no_replace(tmp, folder / name)
    if sync_dir:
        fsutil.fsync_dir(folder)


@pytest.mark.parametrize(("sync_data", "sync_dir", "after"), [
    (True, True, {"d/old": b"old content", "d/new": DATA}),
    (False, True, {"d/old": b"old content", "d/new": b""}),  # the name is durable, the bytes not
    (True, False, {"d/old": b"old content"}),  # the bytes are durable, the name not
    (False, False, {"d/old": b"old content"}),
])
def test_a_write_is_durable_only_once_synced(root: Path, sync_data: bool, sync_dir: bool,
                                             after: dict[str, bytes]) -> None:
    sim = SimFS(root)
    with fsutil.use_file_ops(sim):
        publish(root / "d", "new", DATA, sync_data=sync_data, sync_dir=sync_dir)
    assert files(root) == {"d/old": b"old content", "d/new": DATA}  # the real operations happened
    crash(sim)
    assert files(root) == after


def test_syncfs_makes_everything_before_it_durable(root: Path) -> None:
    sim = SimFS(root)
    with fsutil.use_file_ops(sim):
        fsutil.ensure_dir(root / "d" / "e" / "f", durable=False)
        publish(root / "d" / "e" / "f", "new", DATA, sync_data=False, sync_dir=False)
        fsutil.remove_file(root / "d" / "old")
        fsutil.sync_filesystem(root)
        publish(root / "d", "later", DATA, sync_data=False, sync_dir=False)  # after: not durable
    crash(sim)
    assert files(root) == {"d/e/f/new": DATA}


def test_an_unsynced_unlink_or_mkdir_is_undone(root: Path) -> None:
    sim = SimFS(root)
    with fsutil.use_file_ops(sim):
        fsutil.remove_file(root / "d" / "old")
        fsutil.ensure_dir(root / "n" / "m", durable=False)
        publish(root / "n" / "m", "x", DATA, sync_data=True, sync_dir=True)  # its folder's entry is not
    crash(sim)
    assert files(root) == {"d/old": b"old content"}
    assert not (root / "n").exists()


def test_a_durable_mkdir_syncs_each_new_folders_parent(root: Path) -> None:
    sim = SimFS(root)
    with fsutil.use_file_ops(sim):
        fsutil.ensure_dir(root / "n" / "m")
        publish(root / "n" / "m", "x", DATA, sync_data=True, sync_dir=True)
    crash(sim)
    assert files(root) == {"d/old": b"old content", "n/m/x": DATA}


def test_the_cut_stops_every_later_step_and_does_nothing(root: Path) -> None:
    sim = SimFS(root, cut_at=2)
    with fsutil.use_file_ops(sim):
        tmp = fsutil.write_temp(root / "d", DATA)  # steps 0 (create) and 1 (fdatasync)
        with pytest.raises(PowerCut):
            fsutil.link_no_replace(tmp, root / "d" / "new")  # step 2: the power is off
        with pytest.raises(PowerCut):
            fsutil.remove_file(root / "d" / "old")
        with pytest.raises(PowerCut):
            sim.db_commit()
    assert sim.steps == [f"create d/{tmp.name}", f"fdatasync d/{tmp.name}"]
    assert sim.cut_before == f"rename-noreplace d/{tmp.name} -> new"
    assert (root / "d" / "old").exists() and not (root / "d" / "new").exists()  # nothing happened
    sim.recover(None)
    assert files(root) == {"d/old": b"old content"}  # the temporary file's name was never synced


def test_a_cut_in_write_temp_leaves_its_cleanup_to_the_restart(root: Path) -> None:
    """write_temp removes its temporary file on an error, but not after the power went out: that
    unlink would pretend to be the disk."""
    sim = SimFS(root, cut_at=1)
    with fsutil.use_file_ops(sim), pytest.raises(PowerCut):
        fsutil.write_temp(root / "d", DATA)
    assert [p.name for p in (root / "d").iterdir() if p.name.startswith(fsutil.TEMP_PREFIX)]


def test_random_variants_keep_some_unsynced_changes_and_mangle_unsynced_bytes(root: Path) -> None:
    kinds: Counter[str] = Counter()
    for seed in range(200):
        work = root / str(seed)
        (work / "d").mkdir(parents=True)
        sim = SimFS(work)
        with fsutil.use_file_ops(sim):
            publish(work / "d", "new", DATA, sync_data=False, sync_dir=False)
            publish(work / "d", "synced", DATA, sync_data=True, sync_dir=False)
        crash(sim, seed)
        got = files(work)
        assert got.get("d/synced", DATA) == DATA  # synced bytes are never mangled
        new = got.get("d/new")
        if new is None:
            kinds["absent"] += 1
        elif new == DATA:
            kinds["whole"] += 1
        elif new == b"":
            kinds["empty"] += 1
        elif new == bytes(len(DATA)):
            kinds["zeros"] += 1
        else:
            assert DATA.startswith(new)
            kinds["prefix"] += 1
    assert set(kinds) == {"absent", "whole", "empty", "zeros", "prefix"}, kinds


def test_link_fallback_when_the_file_system_has_no_renameat2(root: Path) -> None:
    sim = SimFS(root, renameat2=False)
    with fsutil.use_file_ops(sim):
        publish(root / "d", "new", DATA, sync_data=True, sync_dir=True)
        tmp = fsutil.write_temp(root / "d", b"other")
        assert not fsutil.link_no_replace(tmp, root / "d" / "new")  # never replaces
    assert [s.split(" ")[0] for s in sim.steps] == [
        "create", "fdatasync", "rename-noreplace", "link", "unlink", "fsync",
        "create", "fdatasync", "rename-noreplace", "link", "unlink"]
    crash(sim)
    assert files(root) == {"d/old": b"old content", "d/new": DATA}


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_a_durable_atomic_write_survives_a_cut_whole(root: Path, seed: int | None) -> None:
    """fsutil.atomic_write (no production write path uses it today: the fault-point marker writes
    with durable=False) keeps its promise, so that the next caller can trust it: once it returns,
    a cut keeps the new content whole, in a new folder (its entry synced by ensure_dir) and over
    an old file (the rename synced by commit_temps)."""
    sim = SimFS(root)
    with fsutil.use_file_ops(sim):
        fsutil.atomic_write(root / "n" / "m" / "new", DATA)
        fsutil.atomic_write(root / "d" / "old", DATA[:50])
    crash(sim, seed)
    assert files(root) == {"n/m/new": DATA, "d/old": DATA[:50]}
