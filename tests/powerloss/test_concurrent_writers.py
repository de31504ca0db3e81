# SPDX-License-Identifier: EUPL-1.2
"""Two writers of the same content, and the power cut in between: writer A has published a chunk
file under its final name but not yet synced its folder when writer B finds the chunk present,
reuses it and commits. B's acknowledged file must survive the cut, so B makes the folder entry
durable itself (local.py: "a chunk found already present still gets its folder entry made
durable"); on the batch path the second syncfs does it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.common import faults
from tests.powerloss.contents import blob
from tests.powerloss.rig import Rig, Setup, prepare
from tests.powerloss.simfs import PowerCut
from tests.powerloss.test_put import put

pytestmark = pytest.mark.powerloss

DATA = blob(41, 150 * 1024)


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm_all()


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_a_chunk_found_present_is_made_durable_by_its_finder(work: Path, seed: int | None) -> None:
    base = prepare(work / "base", Setup(batch_sync=False))
    rig = Rig(base.data, base.setup, clock=base.clock)
    rig.power_on()
    renamed, release = threading.Event(), threading.Event()
    b_thread = threading.current_thread()  # B runs here, A in a thread of its own

    def hold_a() -> None:
        if threading.current_thread() is not b_thread:
            renamed.set()
            assert release.wait(30), "writer A was never released"

    a_outcome: list[BaseException] = []

    def writer_a() -> None:
        try:
            put(rig, "a.bin", DATA)
        except BaseException as exc:  # the power cut, below
            a_outcome.append(exc)

    faults.arm("blobs.put.file.after_rename", hold_a)
    a = threading.Thread(target=writer_a, daemon=True)
    a.start()
    assert renamed.wait(30), "writer A never published its chunk"
    put(rig, "b.bin", DATA)  # B: the same chunk, found present; acknowledged
    assert ("f", "b.bin") in rig.model
    assert rig.sim is not None
    rig.sim.cut_now()  # A has not synced its folder yet
    release.set()
    a.join(30)
    assert not a.is_alive() and len(a_outcome) == 1 and isinstance(a_outcome[0], PowerCut), a_outcome
    rig.inflight = {("f", "a.bin"): DATA}  # A never returned: its file may or may not be there
    rig.restart(seed)
    rig.check("after the cut")
    rig.close()
