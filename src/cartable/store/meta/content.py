# SPDX-License-Identifier: EUPL-1.2
"""Versions (a file's content at a point in time) and chunk reference counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import and_, bindparam, select, update

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import VersionRecord
from cartable.store.meta.schema import chunks, versions

__all__ = ["insert_version", "get_version", "refcounts", "versions_of", "delete_versions", "touch_chunks",
           "ref_chunks", "unref_chunks", "gc_candidates", "delete_chunk_if_unused", "iter_chunks",
           "iter_versions", "fix_refcount"]

_BATCH = 500


_INSERT_VERSION = versions.insert()


def insert_version(tx: Tx, *, node_id: int, size: int, manifest: bytes, inline_data: bytes | None,
                   created_at: float) -> int:
    res = tx.execute(_INSERT_VERSION, {"node_id": node_id, "size": size, "manifest": manifest,
                                       "inline_data": inline_data, "created_at": created_at})
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


_GET_VERSION = select(versions).where(versions.c.id == bindparam("id"))


def get_version(tx: Tx, version_id: int) -> VersionRecord | None:
    row = tx.execute(_GET_VERSION, {"id": version_id}).first()
    return None if row is None else VersionRecord.from_row(row)


def versions_of(tx: Tx, node_ids: Sequence[int]) -> list[VersionRecord]:
    out: list[VersionRecord] = []
    for i in range(0, len(node_ids), _BATCH):
        rows = tx.execute(select(versions).where(versions.c.node_id.in_(node_ids[i:i + _BATCH])))
        out.extend(VersionRecord.from_row(r) for r in rows)
    return out


def delete_versions(tx: Tx, version_ids: Sequence[int]) -> None:
    for i in range(0, len(version_ids), _BATCH):
        tx.execute(versions.delete().where(versions.c.id.in_(version_ids[i:i + _BATCH])))


def refcounts(tx: Tx, digests: Sequence[bytes]) -> dict[bytes, int]:
    """{digest: refcount} for the digests that have a row (read only)."""
    found: dict[bytes, int] = {}
    for i in range(0, len(digests), _BATCH):
        part = list(digests[i:i + _BATCH])
        for d, rc in tx.execute(select(chunks.c.digest, chunks.c.refcount).where(chunks.c.digest.in_(part))):
            found[bytes(d)] = int(rc)
    return found


def touch_chunks(tx: Tx, digests: Sequence[bytes], now: float) -> dict[bytes, int]:
    """Mark chunks as just used (so GC keeps them a grace period); returns {digest: refcount}
    for those that exist."""
    found: dict[bytes, int] = {}
    for i in range(0, len(digests), _BATCH):
        part = list(digests[i:i + _BATCH])
        tx.execute(update(chunks).where(chunks.c.digest.in_(part)).values(touched_at=now))
        for d, rc in tx.execute(select(chunks.c.digest, chunks.c.refcount).where(chunks.c.digest.in_(part))):
            found[bytes(d)] = int(rc)
    return found


def ref_chunks(tx: Tx, counts: Mapping[bytes, int], new: Mapping[bytes, tuple[int, int]],
               now: float) -> list[bytes]:
    """Add counts[d] references to each chunk. A chunk absent from the table is inserted if the
    caller wrote it (new[d] = (size, stored_size)); the digests absent and not written are
    returned (the caller must fail: the bytes may be gone)."""
    existing = touch_chunks(tx, list(counts), now)
    if existing:
        stmt = (update(chunks).where(chunks.c.digest == bindparam("d"))
                .values(refcount=chunks.c.refcount + bindparam("n")))
        tx.execute(stmt, [{"d": d, "n": counts[d]} for d in existing])
    missing: list[bytes] = []
    rows = []
    for d, n in counts.items():
        if d in existing:
            continue
        if d not in new:
            missing.append(d)
            continue
        size, stored = new[d]
        rows.append({"digest": d, "size": size, "stored_size": stored, "refcount": n, "touched_at": now})
    if rows:
        tx.execute(chunks.insert(), rows)
    return missing


def unref_chunks(tx: Tx, counts: Mapping[bytes, int], now: float) -> None:
    if not counts:
        return
    stmt = (update(chunks).where(chunks.c.digest == bindparam("d"))
            .values(refcount=chunks.c.refcount - bindparam("n"), touched_at=now))
    tx.execute(stmt, [{"d": d, "n": n} for d, n in counts.items()])


def gc_candidates(tx: Tx, cutoff: float, limit: int) -> list[bytes]:
    rows = tx.execute(select(chunks.c.digest).where(chunks.c.refcount <= 0, chunks.c.touched_at < cutoff)
                      .limit(limit))
    return [bytes(r[0]) for r in rows]


def delete_chunk_if_unused(tx: Tx, digest: bytes, cutoff: float) -> bool:
    """Delete the row if it still has no reference and was not touched since cutoff. The caller
    holds the transaction across deleting the blob, so no writer can revive it meanwhile."""
    row = tx.execute(select(chunks.c.refcount, chunks.c.touched_at).where(chunks.c.digest == digest)
                     .with_for_update()).first()
    if row is None or row[0] > 0 or row[1] >= cutoff:
        return False
    tx.execute(chunks.delete().where(and_(chunks.c.digest == digest, chunks.c.refcount <= 0)))
    return True


def iter_chunks(tx: Tx) -> Iterator[tuple[bytes, int, int, int]]:
    """(digest, size, stored_size, refcount) of every chunk row."""
    for r in tx.execute(select(chunks.c.digest, chunks.c.size, chunks.c.stored_size, chunks.c.refcount)):
        yield bytes(r[0]), int(r[1]), int(r[2]), int(r[3])


def iter_versions(tx: Tx) -> Iterable[VersionRecord]:
    for r in tx.execute(select(versions)):
        yield VersionRecord.from_row(r)


def fix_refcount(tx: Tx, digest: bytes, refcount: int, now: float) -> None:
    tx.execute(update(chunks).where(chunks.c.digest == digest).values(refcount=refcount, touched_at=now))
