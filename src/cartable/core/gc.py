# SPDX-License-Identifier: EUPL-1.2
"""Chunk garbage collection in three steps: mark, reap, sweep.

A chunk row is live (claimed by a writer, referenced or not) or dying. Only the GC makes a row
dying; only a writer's claim makes a dying row live again, and that writer then writes the bytes
again (core/writes.py); a commit never references a dying row (``content.ref_chunks``). Bytes are
deleted only for rows that were already dying in an earlier commit, so no crash point can leave a
committed manifest pointing at missing bytes:

1. **mark**: rows with no reference, untouched since ``now - grace`` and not dying become dying
   (one UPDATE per batch, each batch its own write transaction). Writers touch a row when they
   claim it and releases touch it too, so a writer that claimed or saw a chunk has a grace period
   to commit, and a commit that comes too late fails cleanly (StorageUnavailable, retry).
2. **reap**: for each batch of dying rows (whatever their age), ONE write transaction selects them
   again (FOR UPDATE, in digest order), keeps those still dying, deletes their bytes, deletes their
   rows and commits. A crash between the byte deletion and the commit leaves dying rows without
   bytes: nobody trusts the bytes of a dying row, and the next run finishes the job.
3. **sweep**: chunk objects with no row at all, older than the grace period (left by a crash, or by
   a deletion a power loss undid), get dying rows (INSERT ... ON CONFLICT DO NOTHING: a writer that
   claimed the digest first keeps its live row, one that claims it later revives the row), which
   are then reaped as in 2. The store is walked lazily in digest order, a batch at a time, from a
   cursor and round to it again: one run lists at most a budget of objects and may pause between
   batches, then says where the next run resumes (a store of hundreds of millions of objects is
   walked over many runs, never listed in one pass).

Also: chunked uploads abandoned for ``upload_ttl`` are released first (core/uploads.expire), and
trash items and old versions past their retention are purged (core/retention.expire), so their
chunks follow the same rule; chunks referenced by the trash or by old versions are referenced like
any other and never collected; expired WebDAV lock rows are purged; temporary files older than
the grace period are removed. ``GcStats`` says what was done and what is still waiting out the
grace period.

``collect`` does everything at once (tests, one-machine tools). The serving nodes run the steps as
separate background jobs (core/jobs.py: ``collect_chunks``, ``sweep``, upload expiry, lock purge),
each under a lease in the database so that one node of the fleet runs it at a time; ``cartable
admin gc`` runs the same jobs under the same leases. Two collectors at once would still be safe
(every step re-checks its rows in its own transaction), only wasteful. Long steps call ``keep``
between batches: the job's lease check, which stops a run whose node lost the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from cartable.common.faults import hit
from cartable.core import retention, uploads
from cartable.core.context import Core
from cartable.core.units import unit_of_work
from cartable.store.meta import content
from cartable.store.meta import locks as locks_repo
from cartable.store.meta.engine import Tx

__all__ = ["GcStats", "collect", "collect_chunks", "sweep", "purge_locks"]

_BATCH = 200

# Fault points of one reap (after the select, after the bytes went, before and after the commit):
# the reap of dying rows and the reap of swept orphans have their own names.
_REAP_POINTS = ("gc.reap.after_select", "gc.reap.after_delete_bytes", "gc.reap.before_commit",
                "gc.reap.after_commit")
_SWEEP_REAP_POINTS = ("gc.sweep.reap.after_select", "gc.sweep.reap.after_delete_bytes",
                      "gc.sweep.reap.before_commit", "gc.sweep.reap.after_commit")

Keep = Callable[[], None]


def _go_on() -> None:
    pass


@dataclass
class GcStats:
    """What a collection (or a background job, core/jobs.py) did; fields a run did not touch stay
    at their defaults. ``merge`` adds two together."""

    chunks_deleted: int = 0  # dying rows reaped (bytes and row)
    orphans_deleted: int = 0  # chunk objects that had no row
    temps_deleted: int = 0
    uploads_expired: int = 0
    trash_expired: int = 0  # trash items purged for their age (core/trash.py)
    versions_expired: int = 0  # old versions dropped for their age (core/versions.py)
    locks_purged: int = 0
    counters_purged: int = 0  # login throttling counters fallen to zero
    flows_purged: int = 0  # expired Login Flow v2 rows
    audit_purged: int = 0  # audit events past their retention
    journal_trimmed: int = 0  # change journal entries past their retention (core/changes.py)
    # Orphan sweep: chunk objects listed by this run, and whether the walk came full circle
    # (``sweep_cursor`` is then None: the next run starts a new pass from the beginning).
    sweep_listed: int = 0
    sweep_complete: bool = False
    sweep_cursor: bytes | None = None
    # Unreferenced chunks still inside their grace period, their stored bytes, and when the first
    # of them becomes collectible (POSIX time; None when none is waiting).
    chunks_waiting: int = 0
    bytes_waiting: int = 0
    next_collectible_at: float | None = None

    def merge(self, other: GcStats) -> GcStats:
        """Counts added; the waiting figures and the sweep's position taken from whichever says more."""
        out = GcStats()
        for f in fields(GcStats):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, bool):
                setattr(out, f.name, a or b)
            elif f.name in ("chunks_waiting", "bytes_waiting", "next_collectible_at", "sweep_cursor"):
                setattr(out, f.name, b if b is not None and b != 0 else a)
            else:
                setattr(out, f.name, a + b)
        return out

    def summary(self) -> str:
        """One line naming what is not at its default (for logs and the leases table)."""
        parts = []
        for f in fields(GcStats):
            value = getattr(self, f.name)
            if value != f.default:
                if isinstance(value, bytes):
                    value = value.hex()[:16]
                elif isinstance(value, float):
                    value = f"{value:.0f}"
                parts.append(f"{f.name}={value}")
        return " ".join(parts) or "nothing to do"


def collect(core: Core, *, grace: float | None = None, upload_ttl: float | None = None) -> GcStats:
    """One full collection (see the module doc), the whole store swept in one walk, with no
    lease: for tests and one-machine tools. upload_ttl: release chunked uploads untouched for
    that long (default uploads.UPLOAD_TTL)."""
    stats = GcStats()
    stats.uploads_expired = uploads.expire(core, uploads.UPLOAD_TTL if upload_ttl is None else upload_ttl)
    stats.locks_purged = purge_locks(core)
    stats = stats.merge(collect_chunks(core, grace=grace))
    return stats.merge(sweep(core, grace=grace))


def purge_locks(core: Core) -> int:
    """Delete expired WebDAV lock rows; returns how many."""
    with core.db.write() as tx:
        return locks_repo.purge_expired(tx, core.clock())


def collect_chunks(core: Core, *, grace: float | None = None, keep: Keep = _go_on) -> GcStats:
    """Mark and reap (steps 1 and 2), remove stale temporary files, and count what waits out the
    grace period. ``keep`` is called between batches; an exception from it stops the run (what
    was committed stays committed, the next run goes on)."""
    grace = core.limits.gc_grace_seconds if grace is None else grace
    stats = GcStats()
    # Trash items and old versions past their retention first: the chunks they release start
    # their own grace period now.
    stats.trash_expired, stats.versions_expired = retention.expire(core)
    cutoff = core.clock() - grace
    _mark(core, cutoff, keep)
    stats.chunks_deleted = _reap_dying(core, keep)
    stats.temps_deleted = core.blobs.cleanup_temps(grace)
    with core.db.read() as tx:
        stats.chunks_waiting, stats.bytes_waiting, oldest = content.waiting(tx, cutoff)
    stats.next_collectible_at = None if oldest is None else oldest + grace
    return stats


def _mark(core: Core, cutoff: float, keep: Keep) -> None:
    def mark(tx: Tx) -> int:
        marked = content.mark_dying(tx, cutoff, _BATCH)
        hit("gc.mark.before_commit")
        return marked

    while True:
        marked = core.db.transact(mark)
        hit("gc.mark.after_commit")
        if marked < _BATCH:
            return
        keep()


@unit_of_work
def _reap(core: Core, digests: list[bytes], points: tuple[str, str, str, str]) -> int:
    """Delete the bytes, then the rows, of those digests still dying, in one write transaction. A
    unit of work: run again after a transient conflict, it finds the same rows still dying (their
    bytes deleted already, which nobody trusts: DESIGN.md) and finishes the job."""
    after_select, after_delete_bytes, before_commit, after_commit = points
    with core.db.write() as tx:
        doomed = content.lock_dying(tx, digests)
        hit(after_select)
        for digest in doomed:
            core.blobs.delete(digest)
        hit(after_delete_bytes)
        content.delete_dying(tx, doomed)
        hit(before_commit)
    hit(after_commit)
    return len(doomed)


def _reap_dying(core: Core, keep: Keep) -> int:
    reaped = 0
    while True:
        with core.db.read() as tx:
            batch = content.dying(tx, _BATCH)
        if not batch:
            return reaped
        done = _reap(core, batch, _REAP_POINTS)
        reaped += done
        if done == 0 and len(batch) < _BATCH:
            return reaped  # all revived meanwhile
        keep()


def sweep(core: Core, *, grace: float | None = None, after: bytes | None = None, budget: int | None = None,
          pause: float = 0.0, checkpoint: Callable[[bytes | None], None] | None = None) -> GcStats:
    """Step 3 over one slice of the store: walk the chunk objects in digest order from just after
    ``after`` (the start when None) to the end, then from the start round to ``after``, stopping
    once ``budget`` objects were listed (None: no limit), sleeping ``pause`` seconds after each
    batch. Objects with no row and older than the grace period are reaped.

    ``checkpoint(position)`` is called after each batch with the last digest examined (so a
    caller can record where to resume; an exception from it stops the walk), and at the end with
    the position the next run should start after: None when the walk came full circle. The
    result's ``sweep_cursor`` is that position and ``sweep_complete`` says whether it did."""
    grace = core.limits.gc_grace_seconds if grace is None else grace
    now = core.clock()
    cutoff = now - grace
    stats = GcStats()
    batch: list[bytes] = []
    position = after
    examined = 0
    stopped_early = False
    for digest, mtime in _ring(core, after):
        if budget is not None and stats.sweep_listed >= budget:
            stopped_early = True
            break
        stats.sweep_listed += 1
        examined += 1
        position = digest
        if mtime < cutoff:
            batch.append(digest)
        if examined >= _BATCH:
            stats.orphans_deleted += _sweep_batch(core, batch, now)
            batch, examined = [], 0
            if checkpoint is not None:
                checkpoint(position)
            if pause > 0:
                time.sleep(pause)
    if batch:
        stats.orphans_deleted += _sweep_batch(core, batch, now)
    stats.sweep_complete = not stopped_early
    stats.sweep_cursor = position if stopped_early else None
    if checkpoint is not None:
        checkpoint(stats.sweep_cursor)
    return stats


def _ring(core: Core, after: bytes | None) -> Iterator[tuple[bytes, float]]:
    """Every chunk object once, in digest order starting after ``after`` and wrapping round."""
    yield from core.blobs.iter_digests(after=after)
    if after is None:
        return
    for digest, mtime in core.blobs.iter_digests():
        if digest >= after:  # ``after`` itself ended the previous run
            return
        yield digest, mtime


def _sweep_batch(core: Core, digests: list[bytes], now: float) -> int:
    if not digests:
        return 0
    with core.db.read() as tx:
        have = content.known(tx, digests)
    orphans = [d for d in digests if d not in have]
    if not orphans:
        return 0
    def insert(tx: Tx) -> None:
        content.insert_dying(tx, orphans, now)
        hit("gc.sweep.before_commit")

    core.db.transact(insert)
    hit("gc.sweep.after_commit")
    return _reap(core, orphans, _SWEEP_REAP_POINTS)
