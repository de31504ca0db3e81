# SPDX-License-Identifier: EUPL-1.2
"""Background jobs, run once across the fleet under leases kept in the database.

Every serving node runs a loop per job (server.BackgroundJobs); ``cartable admin gc`` runs the
garbage-collection jobs by hand. What the jobs are is decided here (``fleet_jobs``); a job is a
name, an interval and a function of (core, lease) returning ``GcStats``.

The protocol of one run (``run``):

1. **take** the job's lease (store/meta/leases.acquire): one ``INSERT ... ON CONFLICT DO UPDATE
   ... WHERE`` that succeeds only if the lease is free (its ``expires_at`` is past) or already
   this node's, and, unless forced, the job is due (``next_run_at`` is past). At most one node
   gets it.
2. **run** the job while a heartbeat thread renews the lease every third of its time to live
   (``ttl``), so a long sweep keeps it. The job calls ``Lease.check`` between batches: it raises
   ``LeaseLost`` when a renewal found another holder, or when the lease's time ran out without a
   successful renewal (the database was unreachable, the process was frozen): the run stops at
   the next batch boundary, and what it committed stays committed.
3. **release** it: free at once, due again ``interval`` seconds later, with a one-line outcome
   (what it did, or why it failed) that ``cartable admin jobs`` shows.

A node that dies holding a lease stops renewing it; at most ``ttl`` seconds later it is free and
the next node to try takes it (``wake_in`` says when to try). A long job keeps its position in
the lease row (``Lease.cursor``, written only while the lease is held), so the node that takes
over resumes where the dead one stopped.

The lease saves work, it does not make the jobs safe: every job is safe to run twice at once
(the GC's steps re-check their rows in their own transactions; purges delete by condition), so a
node that stalled past its lease and runs on for one more batch does no harm.

Lease times come from the database's clock (``leases.db_now``), never from a node's: a node with
a wrong clock neither steals a live lease nor keeps a dead one. A holder tells whether its own
lease may have run out with its monotonic clock, counted from just before the statement that
took or renewed it (so it errs on the early side). A core whose clock was replaced (tests: a
fake clock) runs the leases on that clock instead (``now``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from cartable.core import changes, gc, login_flow, uploads
from cartable.core.audit import purge_audit
from cartable.core.auth import purge_counters
from cartable.core.context import Core
from cartable.core.gc import GcStats
from cartable.store.meta import leases
from cartable.store.meta.engine import Tx
from cartable.store.meta.leases import LeaseRecord

__all__ = ["Job", "JobPolicy", "Lease", "LeaseLost", "LeaseHeld", "GC_JOBS", "fleet_jobs", "run", "run_gc",
           "wake_in", "status", "new_node_id", "now"]

log = logging.getLogger("cartable.jobs")

# What `cartable admin gc` runs, in this order (the order of gc.collect).
GC_JOBS = ("uploads.expire", "locks.purge", "gc.collect", "gc.sweep")


@dataclass(frozen=True)
class JobPolicy:
    """How often the jobs run and how hard the sweep works (from the settings, server.py)."""

    lease_seconds: float = 60.0  # a lease's time to live; renewed every third of it
    gc_interval: float = 3600.0  # collect and sweep (0: this node never runs them)
    maintenance_interval: float = 600.0  # upload expiry and the purges (0: never on this node)
    sweep_objects_per_run: int = 1_000_000  # chunk objects one sweep run lists at most
    sweep_pause: float = 0.05  # seconds slept after each batch the sweep lists
    upload_ttl: float = uploads.UPLOAD_TTL  # chunked uploads untouched this long are released
    grace: float | None = None  # the GC grace period; None: the core's (Limits.gc_grace_seconds)


class LeaseLost(Exception):
    """The running job's lease was taken by another node (or ran out without renewal)."""


class LeaseHeld(Exception):
    """Another node holds the job's lease: ``holder`` until ``until`` (POSIX time)."""

    def __init__(self, job: str, holder: str, until: float) -> None:
        super().__init__(f"job {job} is running on node {holder}")
        self.job, self.holder, self.until = job, holder, until


Work = Callable[[Core, "Lease"], GcStats]


@dataclass(frozen=True)
class Job:
    name: str
    interval: float  # seconds from the end of one run to the next, across the fleet
    work: Work


def now(core: Core, tx: Tx | None = None) -> float:
    """The lease clock: the database's, or the core's clock when a test replaced it."""
    if core.clock is not time.time:
        return core.clock()
    if tx is not None:
        return leases.db_now(tx)
    with core.db.read() as tx:
        return leases.db_now(tx)


def _elapsed_clock(core: Core) -> float:
    """A clock for measuring how long this node has held a lease: monotonic, or the test's."""
    return time.monotonic() if core.clock is time.time else core.clock()


def new_node_id(role: str = "node") -> str:
    """A random id for this process, readable by an operator: role@host:pid:random."""
    return f"{role}@{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """A lease held by this process for one run: renewed in the background until ``stop``."""

    def __init__(self, core: Core, name: str, holder: str, ttl: float, cursor: str | None, taken_at: float) -> None:
        """``taken_at``: ``_elapsed_clock`` just before the statement that took the lease."""
        self.core, self.name, self.holder, self.ttl = core, name, holder, ttl
        self.cursor = cursor  # where the last run of this job stopped (the job's own format)
        self._until = taken_at + ttl  # on the elapsed clock: the lease may have run out after this
        self._lost = threading.Event()
        self._stopped = threading.Event()
        self._beat = threading.Thread(target=self._renew_until_stopped, name=f"cartable-lease-{name}", daemon=True)

    def start(self) -> None:
        self._beat.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._beat.is_alive() and threading.current_thread() is not self._beat:
            self._beat.join()

    def check(self) -> None:
        """Raise LeaseLost if another node took the lease or its time ran out unrenewed."""
        if self._lost.is_set():
            raise LeaseLost(f"job {self.name}: another node took the lease")
        if _elapsed_clock(self.core) >= self._until:
            raise LeaseLost(f"job {self.name}: the lease ran out before it could be renewed")

    def save_cursor(self, cursor: str | None) -> None:
        """Record where the job stands, for whichever node runs it next; LeaseLost if not held."""
        self.check()
        with self.core.db.write() as tx:
            held = leases.save_cursor(tx, self.name, self.holder, cursor)
        if not held:
            self._lost.set()
            raise LeaseLost(f"job {self.name}: another node took the lease")
        self.cursor = cursor

    def _renew_until_stopped(self) -> None:
        while not self._stopped.wait(self.ttl / 3):
            asked_at = _elapsed_clock(self.core)
            try:
                with self.core.db.write() as tx:
                    held = leases.renew(tx, self.name, self.holder, now(self.core, tx) + self.ttl)
            except Exception:
                log.warning("job %s: cannot renew its lease; will retry", self.name, exc_info=True)
                continue
            if not held:
                log.warning("job %s: node %s lost its lease to another node; stopping", self.name, self.holder)
                self._lost.set()
                return
            self._until = asked_at + self.ttl


def fleet_jobs(policy: JobPolicy) -> list[Job]:
    """Every background job, with its interval from ``policy`` (a job whose interval is 0 is
    left out: this node never runs it; another node may)."""
    every = [
        Job("gc.collect", policy.gc_interval, partial(_collect, policy)),
        Job("gc.sweep", policy.gc_interval, partial(_sweep, policy)),
        Job("uploads.expire", policy.maintenance_interval, partial(_expire_uploads, policy)),
        Job("locks.purge", policy.maintenance_interval, _purge_locks),
        Job("login.counters.purge", policy.maintenance_interval, _purge_counters),
        Job("login.flows.purge", policy.maintenance_interval, _purge_flows),
        Job("audit.purge", policy.maintenance_interval, _purge_audit),
        Job("journal.trim", policy.maintenance_interval, _trim_journal),
    ]
    return [j for j in every if j.interval > 0]


def _collect(policy: JobPolicy, core: Core, lease: Lease) -> GcStats:
    return gc.collect_chunks(core, grace=policy.grace, keep=lease.check)


def _sweep(policy: JobPolicy, core: Core, lease: Lease) -> GcStats:
    try:
        after = bytes.fromhex(lease.cursor) if lease.cursor else None
    except ValueError:
        after = None  # a cursor this version cannot read: start a new pass

    def checkpoint(position: bytes | None) -> None:
        lease.save_cursor(None if position is None else position.hex())

    return gc.sweep(core, grace=policy.grace, after=after, budget=policy.sweep_objects_per_run,
                    pause=policy.sweep_pause, checkpoint=checkpoint)


def _expire_uploads(policy: JobPolicy, core: Core, lease: Lease) -> GcStats:
    return GcStats(uploads_expired=uploads.expire(core, policy.upload_ttl))


def _purge_locks(core: Core, lease: Lease) -> GcStats:
    return GcStats(locks_purged=gc.purge_locks(core))


def _purge_counters(core: Core, lease: Lease) -> GcStats:
    return GcStats(counters_purged=purge_counters(core))


def _purge_flows(core: Core, lease: Lease) -> GcStats:
    return GcStats(flows_purged=login_flow.purge_expired(core))


def _purge_audit(core: Core, lease: Lease) -> GcStats:
    return GcStats(audit_purged=purge_audit(core))


def _trim_journal(core: Core, lease: Lease) -> GcStats:
    return GcStats(journal_trimmed=changes.trim(core))


def run(core: Core, job: Job, holder: str, ttl: float, *, force: bool = False) -> GcStats | None:
    """Run ``job`` once under its lease (module doc). Not forced: only if it is due and its
    lease is free, else None. Forced (``cartable admin gc``): due or not, LeaseHeld if another
    node holds the lease. LeaseLost if the lease was lost while it ran; the job's own exceptions
    propagate once the lease is released with the failure as its outcome."""
    asked_at = _elapsed_clock(core)
    with core.db.write() as tx:
        taken = leases.acquire(tx, job.name, holder, now(core, tx), ttl, due_only=not force)
        rec = leases.get(tx, job.name)
    assert rec is not None
    if not taken:
        if force:
            raise LeaseHeld(job.name, rec.holder, rec.expires_at)
        return None
    lease = Lease(core, job.name, holder, ttl, rec.cursor, asked_at)
    lease.start()
    try:
        stats = job.work(core, lease)
    except LeaseLost:
        raise
    except Exception as exc:
        _release(core, job, holder, f"failed: {exc}"[:1024])
        raise
    finally:
        lease.stop()
    _release(core, job, holder, stats.summary())
    return stats


def _release(core: Core, job: Job, holder: str, outcome: str) -> None:
    with core.db.write() as tx:
        t = now(core, tx)
        if not leases.release(tx, job.name, holder, t, t + job.interval, outcome):
            log.warning("job %s: finished, but another node had taken its lease meanwhile", job.name)


def run_gc(core: Core, policy: JobPolicy, holder: str, *, grace: float | None = None,
           on_held: Callable[[LeaseHeld], None] | None = None) -> GcStats:
    """``cartable admin gc``: the GC jobs (``GC_JOBS``) now, in order, each under its lease,
    whether due or not. When a node is running one of them: LeaseHeld (the jobs before it ran),
    or, with ``on_held``, that is called (it may wait, or raise) and the job is asked for again."""
    policy = replace(policy, grace=grace if grace is not None else policy.grace)
    by_name = {j.name: j for j in _all_jobs(policy)}
    total = GcStats()
    for name in GC_JOBS:
        while True:
            try:
                stats = run(core, by_name[name], holder, policy.lease_seconds, force=True)
                break
            except LeaseHeld as held:
                if on_held is None:
                    raise
                on_held(held)
        assert stats is not None
        total = total.merge(stats)
    return total


def _all_jobs(policy: JobPolicy) -> Sequence[Job]:
    """Every job, including those this node's intervals switch off (an admin may still run them)."""
    return fleet_jobs(replace(policy, gc_interval=policy.gc_interval or 1.0,
                              maintenance_interval=policy.maintenance_interval or 1.0))


def wake_in(core: Core, job: Job) -> float:
    """Seconds until this job may be taken: when it is due, or when the current holder's lease
    runs out (it renews it while alive, and then the answer is later)."""
    with core.db.read() as tx:
        rec = leases.get(tx, job.name)
        t = now(core, tx)
    if rec is None:
        return 0.0
    return max(0.0, max(rec.next_run_at, rec.expires_at) - t)


def status(core: Core) -> list[LeaseRecord]:
    """Every job lease row (jobs that never ran have none), by name."""
    with core.db.read() as tx:
        return leases.all_leases(tx)
