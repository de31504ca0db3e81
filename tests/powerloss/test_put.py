# SPDX-License-Identifier: EUPL-1.2
"""Power cut at every step of a PUT: inline and chunked, new and overwrite, one chunk (the
one-file path of the chunk store) and several (its syncfs batch path, and its per-file path where
syncfs is not trusted), with renameat2 and with the link(2) fallback. See rig.py for what is
checked after each cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.core.writes import Upload
from tests.powerloss.contents import blob, multi, multi_edited
from tests.powerloss.rig import Case, Rig, Setup, run_case

pytestmark = pytest.mark.powerloss

KiB = 1024


def put(rig: Rig, name: str, data: bytes, *, piece: int = 256 * KiB, sized: bool = True) -> None:
    """One PUT through the core, as dav/write.py does it: the 2xx goes after commit() returns."""
    with rig.op({("f", name): data}):
        up = Upload(rig.core, rig.op_, (name,), length=len(data) if sized else None)
        for i in range(0, len(data), piece):
            up.write(data[i:i + piece])
        up.commit()


INLINE_OLD, INLINE_NEW = blob(1, 3000), blob(2, 5000)
ONE_OLD, ONE_NEW = blob(3, 100 * KiB), blob(4, 120 * KiB)
BATCH = Setup(write_batch_bytes=1024 * KiB, batch_sync=True)
PER_FILE = Setup(write_batch_bytes=1024 * KiB, batch_sync=False)

CASES: dict[str, Case] = {
    "inline-new": Case(lambda r, t: put(r, f"{t}a.txt", INLINE_NEW), must_include=("commit",)),
    "inline-overwrite": Case(lambda r, t: put(r, "old.txt", INLINE_NEW),
                             before=lambda r: put(r, "old.txt", INLINE_OLD)),
    "chunk-new": Case(lambda r, t: put(r, f"{t}b.bin", ONE_NEW),
                      must_include=("create", "fdatasync", "rename-noreplace", "fsync folder")),
    "chunk-new-link-fallback": Case(lambda r, t: put(r, f"{t}b.bin", ONE_NEW), setup=Setup(renameat2=False),
                                    must_include=("fdatasync", "link", "unlink")),
    "chunk-overwrite": Case(lambda r, t: put(r, "old.bin", ONE_NEW),
                            before=lambda r: put(r, "old.bin", ONE_OLD)),
    "chunk-overwrites-inline": Case(lambda r, t: put(r, "old.txt", ONE_NEW),
                                    before=lambda r: put(r, "old.txt", INLINE_OLD)),
    "inline-overwrites-chunk": Case(lambda r, t: put(r, "old.bin", INLINE_NEW),
                                    before=lambda r: put(r, "old.bin", ONE_OLD)),
    "chunk-unsized": Case(lambda r, t: put(r, f"{t}u.bin", ONE_NEW, sized=False)),
    "multi-new-batch": Case(lambda r, t: put(r, f"{t}m.bin", multi()), setup=BATCH,
                            must_include=("syncfs", "rename-noreplace")),
    "multi-new-per-file": Case(lambda r, t: put(r, f"{t}m.bin", multi()), setup=PER_FILE,
                               must_include=("fdatasync", "fsync folder")),
    "multi-overwrite-batch": Case(lambda r, t: put(r, "m.bin", multi_edited()), setup=BATCH,
                                  before=lambda r: put(r, "m.bin", multi())),
    "multi-overwrite-per-file-link": Case(lambda r, t: put(r, "m.bin", multi_edited()),
                                          setup=Setup(write_batch_bytes=1024 * KiB, batch_sync=False,
                                                      renameat2=False),
                                          before=lambda r: put(r, "m.bin", multi())),
    # Every chunk its own batch (write_batch_bytes=1): a claim and a put_many per chunk.
    "multi-new-chunk-by-chunk": Case(lambda r, t: put(r, f"{t}m.bin", multi())),
}


@pytest.mark.parametrize("name", list(CASES))
def test_power_cut_at_every_step_of_a_put(work: Path, name: str) -> None:
    run_case(work, name, CASES[name])
