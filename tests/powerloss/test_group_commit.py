# SPDX-License-Identifier: EUPL-1.2
"""A power cut inside SQLite's group commit (store/meta/engine.py, _GroupCommit): units of work
of several threads share one transaction, each in its savepoint, and the last one commits for
all. Whatever the cut interrupts, no unit is half visible after the restart, no caller is told
its unit committed when it did not, and nobody is left waiting for a commit that never comes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cartable.common import faults, fsutil
from cartable.store.meta import journal
from cartable.store.meta.engine import BatchFailed
from tests.powerloss.rig import Rig, Setup, prepare
from tests.powerloss.simfs import PowerCut

pytestmark = pytest.mark.powerloss


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


def kv(rig: Rig, *names: str) -> dict[str, str | None]:
    with rig.core.db.read() as tx:
        return {n: journal.get_kv(tx, n) for n in names}


class UnitA(threading.Thread):
    """A unit of work that finishes while another writer is queued: it hands the commit over
    and waits for it. ``outcome`` is "committed" or the exception its caller got."""

    def __init__(self, rig: Rig) -> None:
        super().__init__(daemon=True)
        self.rig = rig
        self.inside = threading.Event()
        self.outcome: object = None

    def run(self) -> None:
        db = self.rig.core.db
        try:
            with db.write() as tx:
                journal.set_kv(tx, "a1", "1")
                journal.set_kv(tx, "a2", "1")
                self.inside.set()
                wait_for(lambda: db._batch is not None and db._batch.waiting >= 1, "unit B is queued")
            self.outcome = "committed"
        except BaseException as exc:
            self.outcome = exc


@pytest.fixture
def rig(work: Path) -> Rig:
    base = prepare(work / "base", Setup())
    return Rig(base.data, base.setup, clock=base.clock)


def start_a(rig: Rig) -> UnitA:
    a = UnitA(rig)
    a.start()
    assert a.inside.wait(10)
    return a


def finish(a: UnitA) -> object:
    a.join(10)
    assert not a.is_alive(), "a unit waiting for the group commit was never told how it ended"
    return a.outcome


def test_cut_inside_a_unit_while_another_waits_for_the_batch(rig: Rig) -> None:
    sim = rig.power_on()
    a = start_a(rig)
    with pytest.raises(PowerCut):
        with rig.core.db.write() as tx:  # queued behind A, runs after A handed over
            journal.set_kv(tx, "b1", "1")
            sim.cut_at = len(sim.steps)
            fsutil.remove_file(rig.data / "chunks" / "nothing")  # the next step: the power goes out
            journal.set_kv(tx, "b2", "1")
    outcome = finish(a)
    assert isinstance(outcome, (BatchFailed, PowerCut)), f"unit A was acknowledged: {outcome!r}"
    rig.restart(None)
    assert kv(rig, "a1", "a2", "b1", "b2") == dict.fromkeys(["a1", "a2", "b1", "b2"])


def test_cut_at_the_commit_of_a_batch_of_two_units(rig: Rig) -> None:
    sim = rig.power_on()
    a = start_a(rig)
    with pytest.raises(PowerCut):
        with rig.core.db.write() as tx:
            journal.set_kv(tx, "b1", "1")
            sim.cut_at = len(sim.steps)  # the next step is B committing for both
    assert sim.cut_before == "commit a metadata transaction"
    outcome = finish(a)
    assert isinstance(outcome, (BatchFailed, PowerCut)), f"unit A was acknowledged: {outcome!r}"
    rig.restart(None)
    assert kv(rig, "a1", "a2", "b1") == dict.fromkeys(["a1", "a2", "b1"])


def test_cut_after_the_commit_of_a_batch_keeps_both_units_whole(rig: Rig) -> None:
    sim = rig.power_on()
    a = start_a(rig)
    with rig.core.db.write() as tx:
        journal.set_kv(tx, "b1", "1")
    assert finish(a) == "committed"
    sim.cut_now()
    rig.restart(None)
    assert kv(rig, "a1", "a2", "b1") == {"a1": "1", "a2": "1", "b1": "1"}


def test_process_crash_inside_a_unit_rolls_back_that_unit_alone(rig: Rig) -> None:
    """No power cut: a crash in unit B's thread (faults.SimulatedCrash) while unit A waits for
    the batch. B rolls back to its savepoint, A is committed whole and told so."""
    a = start_a(rig)
    with faults.armed("writes.commit.before_commit"), pytest.raises(faults.SimulatedCrash):
        with rig.core.db.write() as tx:
            journal.set_kv(tx, "b1", "1")
            faults.hit("writes.commit.before_commit")
            journal.set_kv(tx, "b2", "1")
    assert finish(a) == "committed"
    assert kv(rig, "a1", "a2", "b1", "b2") == {"a1": "1", "a2": "1", "b1": None, "b2": None}
    rig.close()
