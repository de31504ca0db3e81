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
   are then reaped as in 2. The store is walked lazily, a batch at a time.

Also: chunked uploads abandoned for ``upload_ttl`` are released first (core/uploads.expire), and
trash items and old versions past their retention are purged (core/retention.expire), so their
chunks follow the same rule; chunks referenced by the trash or by old versions are referenced like
any other and never collected; expired WebDAV lock rows are purged; temporary files older than
the grace period are removed. ``GcStats`` says what was done and what is still waiting out the
grace period.

``collect`` runs in a thread of the serving process (server.GcThread) and from ``cartable admin
gc``. Two collectors at once are safe (every step re-checks its rows in its own transaction), only
wasteful; electing one collector across several app nodes (a lease in the database) belongs to the
scale-out work.
"""

from __future__ import annotations

from dataclasses import dataclass

from cartable.common.faults import hit
from cartable.core import retention, uploads
from cartable.core.context import Core
from cartable.store.meta import content
from cartable.store.meta import locks as locks_repo

__all__ = ["GcStats", "collect"]

_BATCH = 200

# Fault points of one reap (after the select, after the bytes went, before and after the commit):
# the reap of dying rows and the reap of swept orphans have their own names.
_REAP_POINTS = ("gc.reap.after_select", "gc.reap.after_delete_bytes", "gc.reap.before_commit",
                "gc.reap.after_commit")
_SWEEP_REAP_POINTS = ("gc.sweep.reap.after_select", "gc.sweep.reap.after_delete_bytes",
                      "gc.sweep.reap.before_commit", "gc.sweep.reap.after_commit")


@dataclass
class GcStats:
    chunks_deleted: int = 0  # dying rows reaped (bytes and row)
    orphans_deleted: int = 0  # chunk objects that had no row
    temps_deleted: int = 0
    uploads_expired: int = 0
    trash_expired: int = 0  # trash items purged for their age (core/trash.py)
    versions_expired: int = 0  # old versions dropped for their age (core/versions.py)
    locks_purged: int = 0
    # Unreferenced chunks still inside their grace period, their stored bytes, and when the first
    # of them becomes collectible (POSIX time; None when none is waiting).
    chunks_waiting: int = 0
    bytes_waiting: int = 0
    next_collectible_at: float | None = None


def collect(core: Core, *, grace: float | None = None, upload_ttl: float | None = None) -> GcStats:
    """One full collection (see the module doc). upload_ttl: release chunked uploads untouched
    for that long (default uploads.UPLOAD_TTL)."""
    grace = core.limits.gc_grace_seconds if grace is None else grace
    stats = GcStats()
    stats.uploads_expired = uploads.expire(core, uploads.UPLOAD_TTL if upload_ttl is None else upload_ttl)
    stats.trash_expired, stats.versions_expired = retention.expire(core)
    now = core.clock()
    cutoff = now - grace
    with core.db.write() as tx:
        stats.locks_purged = locks_repo.purge_expired(tx, now)
    _mark(core, cutoff)
    stats.chunks_deleted = _reap_dying(core)
    stats.orphans_deleted = _sweep(core, cutoff, now)
    stats.temps_deleted = core.blobs.cleanup_temps(grace)
    with core.db.read() as tx:
        stats.chunks_waiting, stats.bytes_waiting, oldest = content.waiting(tx, cutoff)
    stats.next_collectible_at = None if oldest is None else oldest + grace
    return stats


def _mark(core: Core, cutoff: float) -> None:
    while True:
        with core.db.write() as tx:
            marked = content.mark_dying(tx, cutoff, _BATCH)
            hit("gc.mark.before_commit")
        hit("gc.mark.after_commit")
        if marked < _BATCH:
            return


def _reap(core: Core, digests: list[bytes], points: tuple[str, str, str, str]) -> int:
    """Delete the bytes, then the rows, of those digests still dying, in one write transaction."""
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


def _reap_dying(core: Core) -> int:
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


def _sweep(core: Core, cutoff: float, now: float) -> int:
    swept = 0
    batch: list[bytes] = []
    for digest, mtime in core.blobs.iter_digests():
        if mtime < cutoff:
            batch.append(digest)
        if len(batch) >= _BATCH:
            swept += _sweep_batch(core, batch, now)
            batch = []
    if batch:
        swept += _sweep_batch(core, batch, now)
    return swept


def _sweep_batch(core: Core, digests: list[bytes], now: float) -> int:
    with core.db.read() as tx:
        have = content.known(tx, digests)
    orphans = [d for d in digests if d not in have]
    if not orphans:
        return 0
    with core.db.write() as tx:
        content.insert_dying(tx, orphans, now)
        hit("gc.sweep.before_commit")
    hit("gc.sweep.after_commit")
    return _reap(core, orphans, _SWEEP_REAP_POINTS)
