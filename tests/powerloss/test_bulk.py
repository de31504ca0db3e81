# SPDX-License-Identifier: EUPL-1.2
"""Power cut at every step of a bulk upload (Nextcloud's POST /remote.php/dav/bulk), through the
core calls its adapter makes (core/bulk.py BulkWriter): a tiny file (inline), a file of one chunk,
a file of several chunks, and an overwrite, in two batches (each batch one commit). A file counts
as acknowledged when its batch committed (the adapter answers once all of them did: a stricter
check than the 200 alone)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cartable.core.bulk import BulkWriter
from tests.powerloss.contents import blob, multi
from tests.powerloss.rig import Case, Rig, Setup, run_case
from tests.powerloss.test_put import put

pytestmark = pytest.mark.powerloss

KiB = 1024
OLD = blob(51, 40 * KiB)


def bulk(rig: Rig, tag: str) -> None:
    """Two batches of two files (each batch one metadata transaction): a file's success is
    acknowledged when its batch committed (the adapter answers once every batch did)."""
    writer = BulkWriter(rig.core, rig.op_, batch_files=2)
    files = [(f"{tag}tiny.txt", blob(52, 2000)), (f"{tag}one.bin", blob(53, 120 * KiB)),
             (f"{tag}multi.bin", multi()), ("old.bin", blob(54, 30 * KiB))]
    for batch in (files[:2], files[2:]):
        with rig.op({("f", name): data for name, data in batch}):
            futures = [writer.submit((name,), data, mtime=1_700_000_000.0,
                                     checksum=f"MD5:{hashlib.md5(data).hexdigest()}") for name, data in batch]
            writer.flush()
            for fut in futures:
                fut.result()


CASES = {
    "bulk-batch": Case(bulk, before=lambda r: put(r, "old.bin", OLD),
                       setup=Setup(write_batch_bytes=1024 * KiB, batch_sync=True),
                       must_include=("syncfs", "fdatasync")),
    "bulk-per-file": Case(bulk, before=lambda r: put(r, "old.bin", OLD),
                          setup=Setup(write_batch_bytes=1024 * KiB, batch_sync=False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_power_cut_at_every_step_of_a_bulk_upload(work: Path, name: str) -> None:
    run_case(work, name, CASES[name])
