# SPDX-License-Identifier: EUPL-1.2
"""Chunk garbage collection with a grace period.

A chunk row is deleted, and its bytes with it, only when it has had no reference since
``now - grace``. The check, the blob deletion and the row deletion happen inside one write
transaction, and every writer that reuses an unreferenced chunk first touches it in a write
transaction, so a writer either sees the chunk gone (and writes it again) or GC sees it touched
(and keeps it). A chunk with references cannot be collected until a grace period after its last
release, which covers writers that saw it referenced. Blobs that have no row at all (written by
an upload that then failed or crashed) are swept once older than the grace period.
Chunked uploads abandoned for ``upload_ttl`` seconds are released first (core/uploads.expire),
so their chunks follow the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from cartable.core import uploads
from cartable.core.context import Core
from cartable.store.meta import content

__all__ = ["GcStats", "collect"]

_BATCH = 200


@dataclass
class GcStats:
    chunks_deleted: int = 0
    orphans_deleted: int = 0
    temps_deleted: int = 0
    uploads_expired: int = 0


def collect(core: Core, *, grace: float | None = None, upload_ttl: float | None = None) -> GcStats:
    """upload_ttl: release chunked uploads untouched for that long (default uploads.UPLOAD_TTL)."""
    grace = core.limits.gc_grace_seconds if grace is None else grace
    stats = GcStats()
    stats.uploads_expired = uploads.expire(core, uploads.UPLOAD_TTL if upload_ttl is None else upload_ttl)
    cutoff = core.clock() - grace
    while True:
        with core.db.read() as tx:
            candidates = content.gc_candidates(tx, cutoff, _BATCH)
        if not candidates:
            break
        deleted = 0
        with core.db.write() as tx:
            for digest in candidates:
                if content.delete_chunk_if_unused(tx, digest, cutoff):
                    core.blobs.delete(digest)
                    deleted += 1
        stats.chunks_deleted += deleted
        if deleted == 0:
            break
    stale = [d for d, mtime in core.blobs.iter_digests() if mtime < cutoff]
    for i in range(0, len(stale), _BATCH):
        part = stale[i:i + _BATCH]
        with core.db.write() as tx:
            known = content.refcounts(tx, part)
            for digest in part:
                if digest not in known:
                    core.blobs.delete(digest)
                    stats.orphans_deleted += 1
    stats.temps_deleted = core.blobs.cleanup_temps(grace)
    return stats
