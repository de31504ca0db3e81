# SPDX-License-Identifier: EUPL-1.2
"""Background jobs under leases (core/jobs.py, store/meta/leases.py): one holder at a time, due
once per interval across the fleet, taken over when the holder's lease runs out, renewed while a
long job runs, and a resumable, budgeted orphan sweep whose cursor lives in the database.

Several "nodes" are several holder ids on one core (the lease protocol only knows holders);
tests/nodes/ runs the same with real processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.common.hashing import chunk_digest
from cartable.core import gc, jobs
from cartable.core.context import Core
from cartable.core.gc import GcStats
from cartable.store.meta import leases
from cartable.store.meta.engine import MetaDB
from tests.core.conftest import FakeClock, make_core

TTL = 30.0


@pytest.fixture
def core(tmp_path: Path, clock: FakeClock) -> Iterator[Core]:
    c = make_core(tmp_path, clock, gc_grace_seconds=3600.0)
    yield c
    c.db.dispose()


def counting_job(name: str = "test.job", interval: float = 100.0) -> tuple[jobs.Job, list[str]]:
    ran: list[str] = []

    def work(core: Core, lease: jobs.Lease) -> GcStats:
        ran.append(lease.holder)
        return GcStats(locks_purged=1)

    return jobs.Job(name, interval, work), ran


# -- the lease row ------------------------------------------------------------------------------


def acquire(core: Core, holder: str, *, due_only: bool = True, ttl: float = TTL) -> bool:
    with core.db.write() as tx:
        return leases.acquire(tx, "j", holder, core.clock(), ttl, due_only=due_only)


def test_one_holder_at_a_time_until_the_lease_runs_out(core: Core, clock: FakeClock) -> None:
    assert acquire(core, "a")
    assert not acquire(core, "b")
    assert not acquire(core, "b", due_only=False)  # forcing does not take a held lease
    assert acquire(core, "a")  # its holder may take it again (renew)
    clock.advance(TTL + 0.001)
    assert acquire(core, "b")  # expired: another node takes it over
    with core.db.write() as tx:
        assert not leases.renew(tx, "j", "a", clock() + TTL)  # the old holder cannot renew it back
        assert not leases.save_cursor(tx, "j", "a", "ff")  # nor write its cursor
        assert not leases.release(tx, "j", "a", clock(), clock() + 5, "done")  # nor release it
        assert leases.get(tx, "j").holder == "b"  # type: ignore[union-attr]


def test_a_released_lease_is_due_again_after_its_interval(core: Core, clock: FakeClock) -> None:
    assert acquire(core, "a")
    with core.db.write() as tx:
        assert leases.save_cursor(tx, "j", "a", "00ab")
        assert leases.release(tx, "j", "a", clock(), clock() + 100, "did things")
    assert not acquire(core, "b")  # free, but not due
    assert acquire(core, "b", due_only=False)  # an admin's forced run takes it
    with core.db.write() as tx:
        assert leases.release(tx, "j", "b", clock(), clock() + 100, "forced")
    clock.advance(100)
    assert acquire(core, "c")
    with core.db.read() as tx:
        rec = leases.get(tx, "j")
    assert rec is not None and (rec.holder, rec.cursor, rec.outcome) == ("c", "00ab", "forced")


def test_many_nodes_asking_at_once_get_one_holder(core: Core) -> None:
    winners: list[str] = []
    start = threading.Barrier(12)

    def node(i: int) -> None:
        start.wait()
        if acquire(core, f"n{i}"):
            winners.append(f"n{i}")

    threads = [threading.Thread(target=node, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


# -- runs ------------------------------------------------------------------------------------


def test_a_job_runs_once_per_interval_across_nodes(core: Core, clock: FakeClock) -> None:
    job, ran = counting_job(interval=100.0)
    assert jobs.run(core, job, "a", TTL) == GcStats(locks_purged=1)
    assert jobs.run(core, job, "b", TTL) is None  # done by a; due in 100 s
    assert jobs.wake_in(core, job) == pytest.approx(100.0)
    clock.advance(99)
    assert jobs.run(core, job, "a", TTL) is None
    clock.advance(1)
    assert jobs.run(core, job, "b", TTL) is not None
    assert ran == ["a", "b"]
    [rec] = jobs.status(core)
    assert (rec.name, rec.holder, rec.outcome) == ("test.job", "b", "locks_purged=1")
    assert rec.finished_at == clock() and rec.next_run_at == clock() + 100


def test_a_forced_run_is_refused_while_a_node_holds_the_lease(core: Core, clock: FakeClock) -> None:
    job, ran = counting_job()
    with core.db.write() as tx:
        assert leases.acquire(tx, job.name, "node-1", clock(), TTL)
    with pytest.raises(jobs.LeaseHeld) as held:
        jobs.run(core, job, "admin", TTL, force=True)
    assert (held.value.holder, held.value.until) == ("node-1", clock() + TTL)
    assert jobs.run(core, job, "node-2", TTL) is None and ran == []
    assert jobs.wake_in(core, job) == pytest.approx(TTL)  # try again when the lease runs out


def test_a_dead_holders_job_is_taken_over_after_the_lease_runs_out(core: Core, clock: FakeClock) -> None:
    job, ran = counting_job()
    with core.db.write() as tx:  # node-1 took the job, then died: it never renews nor releases
        assert leases.acquire(tx, job.name, "node-1", clock(), TTL)
    assert jobs.run(core, job, "node-2", TTL) is None
    clock.advance(TTL)
    assert jobs.run(core, job, "node-2", TTL) is not None and ran == ["node-2"]


def test_a_failing_job_releases_its_lease_with_the_failure(core: Core, clock: FakeClock) -> None:
    def work(core: Core, lease: jobs.Lease) -> GcStats:
        raise RuntimeError("the store is down")

    job = jobs.Job("broken", 50.0, work)
    with pytest.raises(RuntimeError):
        jobs.run(core, job, "a", TTL)
    [rec] = jobs.status(core)
    assert rec.outcome == "failed: the store is down" and not rec.held_at(clock())
    assert rec.next_run_at == clock() + 50


def test_a_holder_that_lost_its_lease_stops_at_the_next_batch(core: Core, clock: FakeClock) -> None:
    steps: list[int] = []

    def work(core: Core, lease: jobs.Lease) -> GcStats:
        for i in range(5):
            lease.check()
            steps.append(i)
            if i == 1:  # this node stalls past its lease; node-2 takes the job over
                clock.advance(TTL + 1)
                assert jobs.run(core, other, "node-2", TTL) is not None
        return GcStats()

    job = jobs.Job("long", 100.0, work)
    other = jobs.Job("long", 100.0, lambda core, lease: GcStats(orphans_deleted=7))
    with pytest.raises(jobs.LeaseLost):
        jobs.run(core, job, "node-1", TTL)
    assert steps == [0, 1]
    [rec] = jobs.status(core)  # node-1 did not overwrite node-2's release
    assert (rec.holder, rec.outcome) == ("node-2", "orphans_deleted=7")


def test_the_heartbeat_keeps_a_long_jobs_lease(tmp_path: Path) -> None:
    core = make_core(tmp_path)  # the real clock: the heartbeat renews every ttl/3 seconds
    try:
        ttl = 0.6
        others: list[bool] = []

        def work(core: Core, lease: jobs.Lease) -> GcStats:
            deadline = time.monotonic() + 4 * ttl
            while time.monotonic() < deadline:
                lease.check()  # raises LeaseLost if a renewal failed
                with core.db.write() as tx:
                    others.append(leases.acquire(tx, "long", "node-2", core.clock(), ttl))
                time.sleep(ttl / 6)
            return GcStats()

        assert jobs.run(core, jobs.Job("long", 100.0, work), "node-1", ttl) is not None
        assert others and not any(others)  # node-2 never got it while node-1 worked
    finally:
        core.db.dispose()


# -- the orphan sweep -----------------------------------------------------------------------


def orphans(core: Core, n: int) -> list[bytes]:
    """``n`` chunk objects with no database row (as a crash leaves them), sorted."""
    items = [(chunk_digest(data), data) for data in (f"orphan {i}".encode() for i in range(n))]
    core.blobs.put_many(items)
    return sorted(d for d, _ in items)


def stored(core: Core) -> list[bytes]:
    return [d for d, _ in core.blobs.iter_digests()]


def test_the_sweep_walks_the_store_in_slices_and_resumes_from_its_cursor(core: Core, clock: FakeClock) -> None:
    made = orphans(core, 1000)
    clock.now = time.time() + 7200  # the objects are older than the grace period
    policy = jobs.JobPolicy(sweep_objects_per_run=300, sweep_pause=0.0, gc_interval=60.0)
    [sweep] = [j for j in jobs.fleet_jobs(policy) if j.name == "gc.sweep"]
    listed = []
    for run, node in enumerate(["a", "b", "c", "a"]):  # any node goes on from the cursor
        stats = jobs.run(core, sweep, node, TTL)
        assert stats is not None
        listed.append(stats.sweep_listed)
        # Each run deleted exactly the objects of its slice, the lowest digests first.
        assert stored(core) == made[min(1000, 300 * (run + 1)):]
        clock.advance(60)
    assert listed == [300, 300, 300, 100]
    [rec] = jobs.status(core)
    assert rec.cursor is None and "sweep_complete=True" in (rec.outcome or "")


def test_a_sweep_starting_mid_store_wraps_round(core: Core, clock: FakeClock) -> None:
    made = orphans(core, 600)
    clock.now = time.time() + 7200
    stats = gc.sweep(core, after=made[399], budget=None)
    # Everything once, round to the cursor, which the run that recorded it had examined already.
    assert stats.sweep_complete and stats.sweep_listed == 599 and stored(core) == [made[399]]


def test_a_sweep_lost_mid_run_leaves_the_cursor_to_the_new_holder(core: Core, clock: FakeClock,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    made = orphans(core, 1000)
    clock.now = time.time() + 7200
    policy = jobs.JobPolicy(sweep_objects_per_run=1000, sweep_pause=0.0)
    [sweep] = [j for j in jobs.fleet_jobs(policy) if j.name == "gc.sweep"]
    batches = []
    real_sweep_batch = gc._sweep_batch

    def stall_after_two(core_: Core, digests: list[bytes], now: float) -> int:
        batches.append(len(digests))
        if len(batches) == 2:  # node-1 stalls; node-2 takes the lease (and the cursor)
            clock.advance(TTL + 1)
            with core.db.write() as tx:
                assert leases.acquire(tx, "gc.sweep", "node-2", clock(), TTL, due_only=False)
        return real_sweep_batch(core_, digests, now)

    monkeypatch.setattr(gc, "_sweep_batch", stall_after_two)
    with pytest.raises(jobs.LeaseLost):
        jobs.run(core, sweep, "node-1", TTL)
    [rec] = jobs.status(core)
    assert rec.holder == "node-2" and rec.cursor == made[199].hex()  # the last checkpoint node-1 made
    assert stored(core) == made[400:]  # node-1's second batch was reaped: harmless, only not recorded


def test_admin_gc_runs_the_gc_jobs_and_leaves_them_due_an_interval_later(core: Core, clock: FakeClock) -> None:
    orphans(core, 250)
    clock.now = time.time() + 7200
    policy = jobs.JobPolicy(gc_interval=500.0, sweep_pause=0.0)
    stats = jobs.run_gc(core, policy, "admin")
    assert (stats.orphans_deleted, stats.sweep_listed, stats.sweep_complete) == (250, 250, True)
    rows = {r.name: r for r in jobs.status(core)}
    assert set(rows) == set(jobs.GC_JOBS)
    assert rows["gc.sweep"].next_run_at == clock() + 500
    for job in jobs.fleet_jobs(policy):
        if job.name in ("gc.collect", "gc.sweep"):
            assert jobs.run(core, job, "node-1", TTL) is None  # not due: the admin just ran it


def test_leases_run_on_the_database_clock(tmp_path: Path) -> None:
    core = make_core(tmp_path)  # the production clock: leases ask the database for the time
    try:
        before = time.time()
        assert jobs.now(core) == pytest.approx(before, abs=2.0)
        job, ran = counting_job(interval=100.0)
        assert jobs.run(core, job, "a", TTL) is not None
        [rec] = jobs.status(core)
        assert rec.next_run_at == pytest.approx(before + 100, abs=2.0)
        assert 98 <= jobs.wake_in(core, job) <= 100
    finally:
        core.db.dispose()


@pytest.mark.pg
def test_the_lease_statements_on_postgresql() -> None:
    """The same single statements on PostgreSQL, where two nodes' inserts really run at once."""
    from cartable.store.meta.migrate import upgrade
    from tests.engines import drop_database, engine, new_database

    pg = engine("postgres")
    url = new_database(pg)
    db = MetaDB(url)
    try:
        upgrade(db)
        with db.read() as tx:
            now = leases.db_now(tx)
        assert now == pytest.approx(time.time(), abs=5.0)
        for round_ in range(5):  # a fresh row each round: the first inserts race too
            name, winners = f"race-{round_}", []
            start = threading.Barrier(8)

            def node(i: int, name: str = name, winners: list[str] = winners) -> None:
                start.wait()
                with db.write() as tx:
                    if leases.acquire(tx, name, f"n{i}", leases.db_now(tx), TTL):
                        winners.append(f"n{i}")

            threads = [threading.Thread(target=node, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(winners) == 1, winners
            with db.write() as tx:
                loser = "n0" if winners[0] != "n0" else "n1"
                assert not leases.renew(tx, name, loser, now + TTL)
                assert leases.renew(tx, name, winners[0], leases.db_now(tx) + TTL)
                assert leases.release(tx, name, winners[0], leases.db_now(tx), now + 100, "x" * 2000)
                rec = leases.get(tx, name)
            assert rec is not None and len(rec.outcome or "") == 1024 and not rec.held_at(leases_now(db))
    finally:
        db.dispose()
        drop_database(pg, url)


def leases_now(db: MetaDB) -> float:
    with db.read() as tx:
        return leases.db_now(tx)
