# SPDX-License-Identifier: EUPL-1.2
"""Power cut at every step of the tree operations (MKCOL, COPY of a file and of a folder, MOVE,
DELETE, a COPY replacing a file) and of the garbage collector (mark, reap, sweep of an orphan
chunk file, removal of a stale temporary file, release of an abandoned upload)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cartable.common import fsutil
from cartable.common.fsutil import TEMP_PREFIX
from cartable.common.hashing import chunk_digest, digest_hex
from cartable.core import files, gc
from cartable.store.blobs import codec
from tests.powerloss.contents import blob, multi
from tests.powerloss.rig import ABSENT, FOLDER, GRACE, Case, Rig, Setup, run_case
from tests.powerloss.test_put import put
from tests.powerloss.test_uploads import begin, put_part

pytestmark = pytest.mark.powerloss

KiB = 1024
A, B, C = blob(31, 100 * KiB), blob(32, 2000), blob(33, 80 * KiB)


def tree_ops(rig: Rig, tag: str) -> None:
    core, op = rig.core, rig.op_
    put(rig, f"{tag}a.bin", A)
    put(rig, f"{tag}b.txt", B)
    with rig.op({("d", f"{tag}d"): FOLDER}):
        files.mkdir(core, op, (f"{tag}d",))
    with rig.op({("f", f"{tag}d", "a.bin"): A}):
        files.copy(core, op, (f"{tag}a.bin",), (f"{tag}d", "a.bin"))
    with rig.op({("d", f"{tag}e"): FOLDER, ("f", f"{tag}e", "a.bin"): A}):
        files.copy(core, op, (f"{tag}d",), (f"{tag}e",))  # a folder, with its file
    with rig.op({("f", f"{tag}b.txt"): ABSENT, ("f", f"{tag}d", "b.txt"): B}):
        files.move(core, op, (f"{tag}b.txt",), (f"{tag}d", "b.txt"))
    with rig.op({("f", f"{tag}a.bin"): ABSENT}):
        files.delete(core, op, (f"{tag}a.bin",))


def copy_replaces(rig: Rig, tag: str) -> None:
    """COPY onto an existing file: the old content's chunks are released in the same commit."""
    with rig.op({("f", "target.bin"): A}):
        files.copy(rig.core, rig.op_, ("src.bin",), ("target.bin",))
    with rig.op({("f", "target.bin"): C}):
        files.copy(rig.core, rig.op_, ("other.bin",), ("target.bin",))


def copy_sources(rig: Rig) -> None:
    put(rig, "src.bin", A)
    put(rig, "other.bin", C)
    put(rig, "target.bin", blob(34, 70 * KiB))


def garbage(rig: Rig) -> None:
    """Unreferenced chunks past their grace period, an orphan chunk file, a stale temporary file
    and an upload abandoned long ago, next to files that must survive."""
    put(rig, "keep.bin", A)
    put(rig, "gone.bin", multi())
    put(rig, "small.txt", B)
    with rig.op({("f", "gone.bin"): ABSENT}):
        files.delete(rig.core, rig.op_, ("gone.bin",))
    orphan = blob(35, 60 * KiB)
    h = digest_hex(chunk_digest(orphan))
    fsutil.atomic_write(rig.data / "chunks" / h[:2] / h[2:4] / h, codec.encode(orphan))
    stale = rig.data / "chunks" / h[:2] / f"{TEMP_PREFIX}0123456789abcdef"
    stale.write_bytes(b"half a chunk")
    old = time.time() - 10 * GRACE
    os.utime(stale, (old, old))
    begin(rig, "abandoned", None)
    put_part(rig, "abandoned", "1", C)
    rig.clock.advance(2 * 86400)  # past the grace period and the uploads' time to live


def collect(rig: Rig, tag: str) -> None:
    with rig.op({("u", "abandoned"): ABSENT, ("p", "abandoned", "1"): ABSENT}):
        gc.collect(rig.core)


CASES: dict[str, Case] = {
    "mkcol-copy-move-delete": Case(tree_ops),
    "copy-replaces-a-file": Case(copy_replaces, before=copy_sources),
    "gc-mark-reap-sweep": Case(collect, before=garbage, setup=Setup(write_batch_bytes=1024 * KiB),
                               must_include=("unlink", "commit")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_power_cut_at_every_step(work: Path, name: str) -> None:
    run_case(work, name, CASES[name])
