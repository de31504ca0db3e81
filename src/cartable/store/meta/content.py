# SPDX-License-Identifier: EUPL-1.2
"""Versions (a file's content at a point in time), and chunk rows: claims, reference counts and
the GC's life cycle (live -> dying -> deleted; see core/gc.py and core/writes.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, and_, bindparam, case, false, func, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import VersionRecord
from cartable.store.meta.schema import chunks, versions

__all__ = ["Claim", "insert_version", "get_version", "versions_of", "take_version", "delete_versions", "claim_chunks",
           "ref_chunks", "unref_chunks", "change_refs", "mark_dying", "dying", "lock_dying", "delete_dying", "known",
           "insert_dying", "waiting", "iter_chunks", "iter_dying", "iter_versions", "fix_refcount", "chunks_after"]

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


_TAKE_VERSION = (versions.delete().where(versions.c.id == bindparam("id"), versions.c.node_id == bindparam("node"))
                 .returning(versions.c.manifest))


def take_version(tx: Tx, version_id: int, node_id: int) -> bytes | None:
    """Delete version ``version_id`` of node ``node_id`` and return its manifest (None when there
    is no such version of that node), in one statement; the caller releases its references."""
    row = tx.execute(_TAKE_VERSION, {"id": version_id, "node": node_id}).first()
    return None if row is None else bytes(row[0])


def delete_versions(tx: Tx, version_ids: Sequence[int]) -> None:
    for i in range(0, len(version_ids), _BATCH):
        tx.execute(versions.delete().where(versions.c.id.in_(version_ids[i:i + _BATCH])))


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim_chunks`` found or did for one chunk: the row's incarnation, and whether the
    caller must (re)write the bytes before referencing the chunk."""

    incarnation: int
    write: bool


def _new_incarnation() -> int:
    return secrets.randbits(62) | 1  # never 0: 0 marks rows no writer claimed (migrated, swept)


def _insert_ignore(tx: Tx, rows: list[dict[str, object]]) -> None:
    """INSERT the chunk rows, skipping digests that already have one (two writers, or a writer and
    the GC's sweep, may insert the same digest): ON CONFLICT DO NOTHING in each dialect."""
    name = tx.dialect.name
    if name == "sqlite":
        stmt = sqlite_insert(chunks).on_conflict_do_nothing(index_elements=[chunks.c.digest])
    elif name == "postgresql":
        stmt = pg_insert(chunks).on_conflict_do_nothing(index_elements=[chunks.c.digest])
    else:
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for the {name} dialect")
    tx.execute(stmt, rows)


def _parts(digests: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Sorted batches: rows are locked in digest order (the documented lock order)."""
    ordered = sorted(set(digests))
    for i in range(0, len(ordered), _BATCH):
        yield ordered[i:i + _BATCH]


_LIVE = chunks.c.dying == false()
_DYING = chunks.c.dying == true()
_STATE = select(chunks.c.digest, chunks.c.refcount, chunks.c.dying, chunks.c.incarnation)


def claim_chunks(tx: Tx, sizes: Mapping[bytes, int], now: float) -> dict[bytes, Claim]:
    """Look up chunks {digest: raw size} and claim the ones that need it, in the caller's WRITE
    transaction; returns {digest: Claim}.

    A live row with references is reused as it is (``write=False``): its bytes are durable since a
    committed manifest references them, and the GC waits a grace period after its last release.
    Every other chunk is claimed (``write=True``): a live unreferenced row is touched; a dying row is
    made live again under a new incarnation; a missing row is inserted live and unreferenced under a
    new incarnation. The caller must make a claimed chunk's bytes durably present (``put_many``)
    after this transaction commits and before any commit references it: the bytes of a dying row
    may be gone, and a claimed row may have been claimed by a writer that crashed before writing."""
    out: dict[bytes, Claim] = {}
    for part in _parts(sizes):
        state = {bytes(r[0]): (int(r[1]), bool(r[2]), int(r[3]))
                 for r in tx.execute(_STATE.where(chunks.c.digest.in_(part)).order_by(chunks.c.digest)
                                     .with_for_update())}
        claim: list[bytes] = []
        for d in part:
            row = state.get(d)
            if row is not None and not row[1] and row[0] > 0:
                out[d] = Claim(row[2], False)
            else:
                claim.append(d)
        if not claim:
            continue
        inc = _new_incarnation()
        absent = [d for d in claim if d not in state]
        if absent:
            _insert_ignore(tx, [{"digest": d, "size": sizes[d], "stored_size": 0, "refcount": 0,
                                 "touched_at": now, "dying": False, "incarnation": inc} for d in absent])
        _revive(tx, [d for d in claim if d in state and state[d][1]], sizes, inc, now)
        tx.execute(update(chunks).where(chunks.c.digest.in_(claim), _LIVE)
                   .values(touched_at=now))
        final = {bytes(r[0]): (bool(r[2]), int(r[3]))
                 for r in tx.execute(_STATE.where(chunks.c.digest.in_(claim)))}
        # PostgreSQL only: the GC's sweep inserted a dying row between our SELECT and our INSERT.
        late = [d for d, (dying, _inc) in final.items() if dying]
        if late:
            _revive(tx, late, sizes, inc, now)
            final.update({d: (False, inc) for d in late})
        for d in claim:
            out[d] = Claim(final[d][1], True)
    return out


def _revive(tx: Tx, digests: Sequence[bytes], sizes: Mapping[bytes, int], inc: int, now: float) -> None:
    if digests:
        # size too: a row the sweep inserted for an orphan file does not know it.
        tx.execute(update(chunks).where(chunks.c.digest == bindparam("d"), _DYING)
                   .values(dying=False, incarnation=inc, touched_at=now, size=bindparam("n")),
                   [{"d": d, "n": sizes[d]} for d in digests])


def ref_chunks(tx: Tx, counts: Mapping[bytes, int], new: Mapping[bytes, tuple[int, int]],
               now: float, *, incarnations: Mapping[bytes, int] | None = None) -> list[bytes]:
    """Add counts[d] references to each chunk (``change_refs`` with only additions)."""
    return change_refs(tx, counts, new, now, incarnations=incarnations)


def change_refs(tx: Tx, deltas: Mapping[bytes, int], new: Mapping[bytes, tuple[int, int]], now: float, *,
                incarnations: Mapping[bytes, int] | None = None) -> list[bytes]:
    """Add deltas[d] references to each chunk (negative: release them), in ONE pass over the rows
    in digest order (the documented lock order: a transaction that adds references to some chunks
    and releases others, such as an overwrite, locks them all in one sorted sweep, so two of them
    swapping contents cannot deadlock). Every changed row is touched (``touched_at = now``), so the
    GC waits a grace period after a release.

    Additions need the row to exist, be live (not dying) and, when ``incarnations`` names the
    chunk, still be that incarnation (the row the writer claimed or found referenced, not one
    recreated since by another writer that may not have written the bytes). If one cannot be
    referenced, nothing is changed and the digests that cannot are returned (the caller must fail:
    their bytes may be gone); else []. No row is ever inserted here: the writer's claim made it.
    ``new`` = {digest: (size, stored size)} for the chunks this writer stored; their stored size is
    recorded."""
    changed = {d: n for d, n in deltas.items() if n or d in new}
    if not changed:
        return []
    inc = incarnations or {}
    adding = any(n > 0 for n in changed.values())
    if adding:
        found: dict[bytes, tuple[int, bool]] = {}
        for part in _parts(changed):
            rows = tx.execute(_LOCK_REFS, {"ds": part})
            found.update((bytes(d), (int(i), bool(dead))) for d, i, dead in rows)
        bad = [d for d in sorted(changed) if changed[d] > 0 and (
            d not in found or found[d][1] or (d in inc and inc[d] != found[d][0]))]
        if bad:
            return bad
    # Releases alone need no SELECT: the UPDATEs run one by one in digest order and lock as they go.
    tx.execute(_CHANGE_REFS, [{"d": d, "n": changed[d], "s": new[d][1] if d in new else None, "now_": now}
                              for d in sorted(changed)])
    return []


_LOCK_REFS = (select(chunks.c.digest, chunks.c.incarnation, chunks.c.dying)
              .where(chunks.c.digest.in_(bindparam("ds", expanding=True)))
              .order_by(chunks.c.digest).with_for_update())
_CHANGE_REFS = (update(chunks).where(chunks.c.digest == bindparam("d"))
                .values(refcount=chunks.c.refcount + bindparam("n"), touched_at=bindparam("now_"),
                        stored_size=func.coalesce(bindparam("s", type_=BigInteger), chunks.c.stored_size)))


def unref_chunks(tx: Tx, counts: Mapping[bytes, int], now: float) -> None:
    """Release references (``change_refs`` with only releases)."""
    change_refs(tx, {d: -n for d, n in counts.items()}, {}, now)


def _collectible(cutoff: float) -> ColumnElement[bool]:
    return and_(_LIVE, chunks.c.refcount <= 0, chunks.c.touched_at < cutoff)


def mark_dying(tx: Tx, cutoff: float, limit: int) -> int:
    """Mark up to ``limit`` chunks dying that have no reference and were not touched since cutoff;
    returns how many. Once committed, no commit may reference them (``ref_chunks``). The rows are
    locked in digest order (the documented lock order), skipping rows another transaction holds
    on PostgreSQL (a writer busy with a chunk is not collectible anyway): the GC never waits for
    writers, and never deadlocks with them."""
    some = (select(chunks.c.digest).where(_collectible(cutoff)).order_by(chunks.c.digest).limit(limit)
            .with_for_update(skip_locked=True))
    picked = [bytes(r[0]) for r in tx.execute(some)]
    if not picked:
        return 0
    res = tx.execute(update(chunks).where(chunks.c.digest.in_(picked), _collectible(cutoff)).values(dying=True))
    return int(res.rowcount)


def dying(tx: Tx, limit: int) -> list[bytes]:
    """Up to ``limit`` dying chunks, in digest order."""
    rows = tx.execute(select(chunks.c.digest).where(_DYING).order_by(chunks.c.digest)
                      .limit(limit))
    return [bytes(r[0]) for r in rows]


def lock_dying(tx: Tx, digests: Sequence[bytes]) -> list[bytes]:
    """Those of ``digests`` that are still dying, locked (FOR UPDATE, in digest order) until the
    end of the caller's write transaction, so no claim can revive them meanwhile."""
    out: list[bytes] = []
    for part in _parts(digests):
        rows = tx.execute(select(chunks.c.digest).where(chunks.c.digest.in_(part), _DYING)
                          .order_by(chunks.c.digest).with_for_update())
        out.extend(bytes(r[0]) for r in rows)
    return out


def delete_dying(tx: Tx, digests: Sequence[bytes]) -> None:
    for part in _parts(digests):
        tx.execute(chunks.delete().where(chunks.c.digest.in_(part), _DYING))


def known(tx: Tx, digests: Sequence[bytes]) -> set[bytes]:
    """Those of ``digests`` that have a row, whatever its state."""
    out: set[bytes] = set()
    for part in _parts(digests):
        out.update(bytes(r[0]) for r in tx.execute(select(chunks.c.digest).where(chunks.c.digest.in_(part))))
    return out


def insert_dying(tx: Tx, digests: Sequence[bytes], now: float) -> None:
    """Rows for chunk bytes that have none (the GC's sweep), inserted dying; a digest that has a row
    by now (a writer claimed it) is left alone."""
    for part in _parts(digests):
        _insert_ignore(tx, [{"digest": d, "size": 0, "stored_size": 0, "refcount": 0, "touched_at": now,
                             "dying": True, "incarnation": 0} for d in part])


def waiting(tx: Tx, cutoff: float) -> tuple[int, int, float | None]:
    """Chunks with no reference still inside their grace period (touched at or after cutoff):
    (how many, their bytes as stored or else raw, the oldest touch time or None)."""
    stored = case((chunks.c.stored_size > 0, chunks.c.stored_size), else_=chunks.c.size)
    row = tx.execute(select(func.count(), func.coalesce(func.sum(stored), 0), func.min(chunks.c.touched_at))
                     .where(_LIVE, chunks.c.refcount <= 0,
                            chunks.c.touched_at >= cutoff)).one()
    return int(row[0]), int(row[1]), None if row[2] is None else float(row[2])


def iter_chunks(tx: Tx) -> Iterator[tuple[bytes, int, int, int]]:
    """(digest, size, stored_size, refcount) of every chunk row."""
    for r in tx.execute(select(chunks.c.digest, chunks.c.size, chunks.c.stored_size, chunks.c.refcount)):
        yield bytes(r[0]), int(r[1]), int(r[2]), int(r[3])


def iter_dying(tx: Tx) -> Iterator[tuple[bytes, int]]:
    """(digest, refcount) of every dying chunk row."""
    for r in tx.execute(select(chunks.c.digest, chunks.c.refcount).where(_DYING)):
        yield bytes(r[0]), int(r[1])


def chunks_after(tx: Tx, after: bytes | None, limit: int) -> list[tuple[bytes, int, bool]]:
    """(digest, refcount, dying) of the chunk rows after ``after`` in digest order, at most limit."""
    query = select(chunks.c.digest, chunks.c.refcount, chunks.c.dying).order_by(chunks.c.digest).limit(limit)
    if after is not None:
        query = query.where(chunks.c.digest > after)
    return [(bytes(d), int(rc), bool(dying)) for d, rc, dying in tx.execute(query)]


def iter_versions(tx: Tx) -> Iterable[VersionRecord]:
    for r in tx.execute(select(versions)):
        yield VersionRecord.from_row(r)


def fix_refcount(tx: Tx, digest: bytes, refcount: int, now: float) -> None:
    tx.execute(update(chunks).where(chunks.c.digest == digest).values(refcount=refcount, touched_at=now))
