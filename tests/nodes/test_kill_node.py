# SPDX-License-Identifier: EUPL-1.2
"""A node killed with SIGKILL while it takes uploads AND holds a background job's lease: nothing
acknowledged is lost, the other node keeps serving, and it takes the job over once the dead
node's lease runs out (job_lease_seconds = 2 here), resuming the orphan sweep.

To make the kill land while a lease is held, the sweep is made slow: it lists 200 chunk objects
per run and then pauses 30 s (gc_sweep_pause_seconds) holding its lease, which its heartbeat
renews; the node killed is whichever holds it."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from cartable.core import jobs
from cartable.store.meta import leases
from tests.nodes.conftest import Fleet, Node, start_fleet

pytestmark = [pytest.mark.crash, pytest.mark.slow]

KiB = 1024
JOB_SETTINGS = {"gc_interval_seconds": "1", "maintenance_interval_seconds": "1", "job_lease_seconds": "2",
                "gc_sweep_objects_per_run": "200", "gc_sweep_pause_seconds": "30"}


def dav(path: str) -> str:
    return f"/remote.php/dav/files/alice/{path}"


def content(name: str) -> bytes:
    # Above inline_max: each file is one chunk object, which the sweep lists.
    return random.Random(name).randbytes(random.Random(name + "size").randint(9 * KiB, 64 * KiB))


def sweep_lease(fleet: Fleet) -> tuple[leases.LeaseRecord | None, float]:
    core = fleet.core()
    try:
        with core.db.read() as tx:
            return leases.get(tx, "gc.sweep"), leases.db_now(tx)
    finally:
        core.db.dispose()


def node_of(fleet: Fleet, holder: str) -> Node | None:
    return next((n for n in fleet.nodes if n.proc and f":{n.proc.pid}:" in holder), None)


def wait_for(what: str, check, timeout: float = 300.0):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class Writers:
    """Threads putting new files (one path per request, each path written once) through a node,
    recording what was acknowledged and what was in flight without an answer."""

    def __init__(self, node: Node, tag: str, threads: int = 3) -> None:
        self.node, self.tag = node, tag
        self.acked: list[str] = []
        self.unanswered: list[str] = []
        self.other: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def start(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def _run(self, t: int) -> None:
        with self.node.client() as c:
            k = 0
            while not self.stop.is_set():
                name = f"{self.tag}-{t}-{k}.bin"
                k += 1
                try:
                    r = c.put(dav(name), content=content(name))
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered.append(name)
                    return  # the node is gone
                with self.lock:
                    (self.acked.append(name) if r.status_code == 201 else self.other.append((name, r.status_code)))


def test_a_node_killed_mid_upload_holding_a_lease(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, **JOB_SETTINGS)
    try:
        # More chunk objects than one sweep run lists: its runs then pause holding the lease.
        before = [Writers(n, f"before-{n.name}").start() for n in fleet.nodes]
        wait_for("220 files", lambda: sum(len(w.acked) for w in before) >= 220)
        for w in before:
            w.join()

        def held() -> Node | None:
            rec, now = sweep_lease(fleet)
            return node_of(fleet, rec.holder) if rec is not None and rec.expires_at > now else None

        victim = wait_for("a node to hold the gc.sweep lease", held)
        survivor = next(n for n in fleet.nodes if n is not victim)
        assert victim.proc is not None and survivor.proc is not None

        during = [Writers(n, f"during-{n.name}").start() for n in (victim, survivor)]
        wait_for("uploads in flight on both nodes", lambda: all(len(w.acked) >= 5 for w in during))
        victim.kill()
        survivor_acked_at_kill = len(during[1].acked)
        wait_for("more uploads through the survivor", lambda: len(during[1].acked) >= survivor_acked_at_kill + 10)

        # The survivor takes the job over once the dead node's lease ran out.
        def taken_over() -> bool:
            rec, now = sweep_lease(fleet)
            return rec is not None and f":{survivor.proc.pid}:" in rec.holder and rec.expires_at > now  # type: ignore[union-attr]

        wait_for("the survivor to take the gc.sweep lease over", taken_over)
        for w in during:
            w.join()
        assert not during[1].unanswered and not during[1].other, (during[1].unanswered, during[1].other)
        assert not during[0].other, during[0].other

        # Nothing acknowledged is lost, whichever node acknowledged it; nothing half-written shows.
        with survivor.client() as c:
            for w in (*before, *during):
                for name in w.acked:
                    r = c.get(dav(name))
                    assert r.status_code == 200 and r.content == content(name), name
            for name in during[0].unanswered:  # in flight at the kill: all of it, or nothing
                r = c.get(dav(name))
                assert r.status_code == 404 or r.content == content(name), (name, r.status_code)
        # Every other job, too, runs on the survivor from now on.
        def all_jobs_on_survivor() -> bool:
            core = fleet.core()
            try:
                with core.db.read() as tx:
                    rows = leases.all_leases(tx)
            finally:
                core.db.dispose()
            every = len(jobs.fleet_jobs(jobs.JobPolicy()))
            return len(rows) == every and all(f":{survivor.proc.pid}:" in r.holder for r in rows)  # type: ignore[union-attr]

        wait_for("every job to run on the survivor", all_jobs_on_survivor)
        out = fleet.admin("fsck", "--deep")
        assert out.rstrip().endswith(": OK"), out
        survivor.stop()
        assert not survivor.problems(), survivor.problems()
        assert not victim.problems(), victim.problems()
    finally:
        fleet.stop()
