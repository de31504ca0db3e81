# SPDX-License-Identifier: EUPL-1.2
"""Power cut at every step of the trash and versions write paths: a delete into the trash, a
restore, a purge (and the GC that follows it), an overwrite kept as a version, a version restore
and a version deleted. After each cut the rig checks that every acknowledged file reads back,
nothing half-done is visible and fsck (which checks the trash rows and the space's trash and
versions counts) is clean; then the workload runs again and a full GC reclaims everything
unreferenced."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.core import files, gc, trash, versions
from tests.powerloss.contents import blob
from tests.powerloss.rig import ABSENT, FOLDER, Case, Rig, Setup, run_case
from tests.powerloss.test_put import put

pytestmark = pytest.mark.powerloss

KiB = 1024
A, B, C = blob(41, 100 * KiB), blob(42, 2000), blob(43, 80 * KiB)


def _item(rig: Rig, name: str) -> str:
    return next(i.name for i in trash.items(rig.core, rig.principal) if i.record.name == name)


def trash_ops(rig: Rig, tag: str) -> None:
    core, op = rig.core, rig.op_
    d = f"{tag}d"
    with rig.op({("d", d): FOLDER}):
        files.mkdir(core, op, (d,))
    with rig.op({("f", d, "a.bin"): A}):
        files.copy(core, op, (f"{tag}src.bin",), (d, "a.bin"))
    with rig.op({("d", d): ABSENT, ("f", d, "a.bin"): ABSENT}):
        files.delete(core, op, (d,))  # into the trash: one row
    with rig.op({("d", d): FOLDER, ("f", d, "a.bin"): A}):
        trash.restore(core, op, _item(rig, d))
    with rig.op({("d", d): ABSENT, ("f", d, "a.bin"): ABSENT}):
        files.delete(core, op, (d,))
    with rig.op({}):
        trash.purge(core, op, _item(rig, d))  # its chunk references released


def sources(rig: Rig) -> None:
    put(rig, "src.bin", A)
    put(rig, "again-src.bin", A)


def version_ops(rig: Rig, tag: str) -> None:
    core, op = rig.core, rig.op_
    name = f"{tag}v.bin"
    # Two hours apart: the versions stay in distinct slots of the thinning schedule through the
    # rig's full GC (an hour later), so the GC it runs has none to thin (a version it dropped
    # would wait out a grace period, unreferenced).
    put(rig, name, A)
    rig.clock.advance(2 * 3600)
    put(rig, name, C)  # A is kept as an old version
    rig.clock.advance(2 * 3600)
    put(rig, name, B)  # C too (inline content replacing chunked)
    fid = files.stat(core, op.principal, (name,)).id
    olds = versions.listing(core, op.principal, fid)[1]
    with rig.op({("f", name): A}):
        versions.restore(core, op, fid, next(v.id for v in olds if v.size == len(A)))
    with rig.op({}):
        versions.delete(core, op, fid, next(v.id for v in olds if v.size == len(C)))


def purge_then_collect(rig: Rig, tag: str) -> None:
    with rig.op({}):
        trash.empty(rig.core, rig.op_)
    rig.clock.advance(2 * 86400)
    with rig.op({}):
        gc.collect(rig.core)


def trashed(rig: Rig) -> None:
    put(rig, "keep.bin", A)
    put(rig, "gone.bin", C)
    with rig.op({("f", "gone.bin"): ABSENT}):
        files.delete(rig.core, rig.op_, ("gone.bin",))


CASES: dict[str, Case] = {
    "delete-restore-purge": Case(trash_ops, before=sources),
    "overwrite-keeps-version-restore-delete": Case(version_ops),
    "empty-trash-then-gc": Case(purge_then_collect, before=trashed, setup=Setup(write_batch_bytes=1024 * KiB),
                                must_include=("unlink", "commit")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_power_cut_at_every_step(work: Path, name: str) -> None:
    run_case(work, name, CASES[name])
