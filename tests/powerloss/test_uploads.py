# SPDX-License-Identifier: EUPL-1.2
"""Power cut at every step of a chunked upload (Nextcloud's /remote.php/dav/uploads/): the MKCOL,
each part, a part sent again, and the assembly (new file and overwrite), through the core calls
the adapter makes. After the restart a client resumes as the desktop client does (it lists the
parts, sends the missing ones, then assembles) and the whole file must read back byte for byte,
so every acknowledged part is proven intact, not only listed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cartable.core import uploads
from tests.powerloss.contents import blob, multi
from tests.powerloss.rig import ABSENT, UPLOAD, Case, Rig, Setup, Workload, run_case
from tests.powerloss.test_put import put

pytestmark = pytest.mark.powerloss

KiB = 1024
# Two parts of one chunk each, then a tiny one (stored inline, made a chunk at assembly).
PARTS = [("0000000000000001", blob(21, 100 * KiB)), ("0000000000000002", blob(22, 90 * KiB)),
         ("0000000000000003", blob(23, 3000))]
WHOLE = b"".join(d for _, d in PARTS)
SHA1 = hashlib.sha1(WHOLE).hexdigest()


def begin(rig: Rig, key: str, total: int | None = len(WHOLE)) -> None:
    with rig.op({("u", key): UPLOAD}):
        uploads.begin(rig.core, rig.principal, key, total)


def put_part(rig: Rig, key: str, name: str, data: bytes) -> None:
    with rig.op({("p", key, name): data}):
        uploads.put_part(rig.core, rig.principal, key, name, [data[i:i + 64 * KiB]
                                                             for i in range(0, len(data), 64 * KiB)],
                         length=len(data))


def assemble(rig: Rig, key: str, dst: str) -> None:
    parts = {k for k in rig.model if k[:2] == ("p", key)}
    whole = b"".join(rig.model[k] for k in sorted(parts))
    with rig.op({("f", dst): whole, ("u", key): ABSENT, **{k: ABSENT for k in parts}}):
        uploads.assemble(rig.core, rig.op_, key, (dst,), total_length=len(whole),
                         checksum=f"SHA1:{hashlib.sha1(whole).hexdigest()}")


def upload(rig: Rig, tag: str, dst: str = "") -> None:
    key = f"{tag}4242"
    begin(rig, key)
    for name, data in PARTS:
        put_part(rig, key, name, data)
    assemble(rig, key, dst or f"{tag}big.bin")


def resume(dst: str = "") -> Workload:
    """After the restart: if the upload exists, send the parts it does not list, then assemble."""

    def go(rig: Rig, tag: str) -> None:
        key = f"{tag}4242"
        if ("u", key) not in rig.model:
            return
        for name, data in PARTS:
            if ("p", key, name) not in rig.model:
                put_part(rig, key, name, data)
        assemble(rig, key, dst or f"{tag}big.bin")
        assert rig.model[("f", dst or f"{tag}big.bin")] == WHOLE

    return go


def staged(rig: Rig) -> None:
    """An upload with its first part staged."""
    begin(rig, "4242")
    put_part(rig, "4242", *PARTS[0])


def part_sent_again(rig: Rig, tag: str) -> None:
    if tag:  # the retry: a whole upload of its own
        upload(rig, tag)
        return
    put_part(rig, "4242", PARTS[0][0], blob(24, 110 * KiB))  # replaces the staged part


def multi_chunk_part(rig: Rig, tag: str) -> None:
    """An upload with no declared length and one part of several chunks."""
    begin(rig, f"{tag}9", None)
    put_part(rig, f"{tag}9", "1", multi())
    assemble(rig, f"{tag}9", f"{tag}m.bin")


CASES: dict[str, Case] = {
    "mkcol-parts-assembly": Case(upload, resume=resume(), must_include=("fdatasync", "commit")),
    "assembly-overwrites": Case(lambda r, t: upload(r, t, "old.bin"), resume=resume("old.bin"),
                                before=lambda r: put(r, "old.bin", blob(25, 150 * KiB))),
    "part-sent-again": Case(part_sent_again, before=staged),
    "multi-chunk-part": Case(multi_chunk_part, setup=Setup(write_batch_bytes=1024 * KiB, batch_sync=True),
                             must_include=("syncfs",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_power_cut_at_every_step_of_a_chunked_upload(work: Path, name: str) -> None:
    run_case(work, name, CASES[name])
