# SPDX-License-Identifier: EUPL-1.2
"""The changes feed of a user's tree, as the sync API serves it (DESIGN.md, "What the change
journal must carry").

A **cursor** is opaque to clients: it carries the journal's epoch (a random id made with the
database) and a position in the journal. ``read`` answers the entries of the caller's space after
the cursor, oldest first (parents before children: the journal is written in that order), and
the cursor to ask with next time. A cursor is **gone** (``Gone``, HTTP 410 "start over") when:

- its epoch is not this database's: the database was replaced or restored from another copy;
- its position is past the journal's head: the database was restored from an older backup;
- its position is below the journal's floor: the entries after it were trimmed (retention).

A client that is told "gone" lists its tree again and compares; it never reads the answer as
"everything was deleted".

**Positions never skip an entry.** Within one space, journal entries are numbered in commit
order (every writer of a space takes its root row before appending, docs/architecture.md), so
the last entry of a space that a read sees is below any entry of that space still in flight. A
cursor moves to that entry, or, when the space had nothing new, to the ``watermark``: a position
below which no entry of any space can still appear (the head itself on SQLite, which has one
writer; on PostgreSQL the head a process saw ``LAG`` seconds ago, api/watch.py), so that the
cursor of an idle space keeps up with the journal and is not trimmed away.

Trimming (``trim``, a background job) deletes the entries older than
``Limits.journal_retention_days`` by primary-key ranges and raises the floor first, in the same
transaction.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cartable.core.context import Core
from cartable.core.errors import Gone, InvalidInput
from cartable.core.model import Principal
from cartable.store.meta import journal
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import ChangeRecord

__all__ = ["Change", "Feed", "read", "start", "trim", "encode", "decode", "position", "heads_after", "head",
           "MAX_LIMIT", "LAG"]

MAX_LIMIT = 1000  # entries per answer at most
LAG = 600.0  # seconds: how long a PostgreSQL write transaction may stay open before it commits
_PREFIX = "c1"
TRIM_BATCH = 5000
Change = ChangeRecord


@dataclass(frozen=True, slots=True)
class Feed:
    changes: list[ChangeRecord]
    cursor: str
    more: bool  # more entries wait after these: ask again at once
    head: int  # the journal's head when it was read (api/watch.py samples it for the watermark)


def encode(epoch: str, seq: int) -> str:
    raw = f"{_PREFIX}:{epoch}:{seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, int]:
    """(epoch, position); InvalidInput when the text is not a cursor this server makes."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, epoch, seq = raw.split(":")
        if prefix != _PREFIX or not epoch or int(seq) < 0:
            raise ValueError(raw)
        return epoch, int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("this cursor was not made by this server; start with no cursor") from None


def position(cursor: str) -> int:
    """The journal position a cursor made by ``read`` or ``start`` holds."""
    return decode(cursor)[1]


def head(core: Core) -> int:
    with core.db.read() as tx:
        return _head(tx)


def _head(tx: Tx) -> int:
    """The journal's last position: its last entry, or the floor when trimming emptied it."""
    return max(journal.head(tx), _floor(tx))


def heads_after(core: Core, seq: int) -> dict[int, int]:
    """The last entry of each space that has entries after ``seq`` (the long-poll watcher's tick)."""
    with core.db.read() as tx:
        return journal.heads_after(tx, seq)


def _floor(tx: Tx) -> int:
    return int(journal.get_kv(tx, journal.FLOOR_KEY) or 0)


def _epoch(tx: Tx) -> str:
    epoch = journal.get_kv(tx, "epoch")
    assert epoch is not None, "the database has no journal epoch (server.open_core makes it)"
    return epoch


def _safe(core: Core, head: int, watermark: int) -> int:
    """A position below which no new entry can appear: the head on SQLite (one writer), the
    watermark on PostgreSQL."""
    return head if core.db.is_sqlite else min(head, watermark)


def start(core: Core, principal: Principal, watermark: int = 0) -> str:
    """A cursor at the journal's present: a client takes it, lists its tree, then reads from it
    (an entry it also saw in the listing comes again; applying it twice is harmless)."""
    with core.db.read() as tx:
        last, floor = journal.last_of_space(tx, principal.space_id), _floor(tx)
        return encode(_epoch(tx), max(last, floor, _safe(core, max(journal.head(tx), floor), watermark)))


def read(core: Core, principal: Principal, cursor: str, limit: int = MAX_LIMIT, watermark: int = 0) -> Feed:
    """The entries of the principal's space after ``cursor`` (at most ``limit``); Gone when the
    cursor cannot be continued (see the module docstring)."""
    epoch, seq = decode(cursor)
    limit = max(1, min(limit, MAX_LIMIT))
    with core.db.read() as tx:
        kv = journal.get_kvs(tx, ("epoch", journal.FLOOR_KEY))
        here, floor = kv.get("epoch"), int(kv.get(journal.FLOOR_KEY, 0))
        head = max(journal.head(tx), floor)
        if epoch != here:
            raise Gone("this cursor comes from another copy of the database (the server was restored or "
                       "replaced): list your files again and compare, do not delete anything from this answer")
        if seq > head:
            raise Gone("this cursor is ahead of the server's journal (the database was restored from a backup): "
                       "list your files again and compare, do not delete anything from this answer")
        if seq < floor:
            raise Gone("this cursor is older than the journal's retention: list your files again and compare")
        rows = journal.since(tx, principal.space_id, seq, limit + 1)
    safe = _safe(core, head, watermark)
    more = len(rows) > limit
    rows = rows[:limit]
    if more:
        nxt = rows[-1].seq
    else:
        nxt = max(seq, rows[-1].seq if rows else seq, safe)
    return Feed(rows, encode(epoch, nxt), more, head)


def trim(core: Core, now: float | None = None) -> int:
    """Delete the journal entries older than the retention (0: keep them all); returns how many."""
    days = core.limits.journal_retention_days
    if days <= 0:
        return 0
    cutoff = (core.clock() if now is None else now) - days * 86400.0
    deleted = 0
    while True:
        with core.db.write() as tx:
            floor = _floor(tx)
            ages = journal.ages_after(tx, floor, TRIM_BATCH)
            # Stop at the first young entry: positions after it stay, whatever their own age
            # (clocks of several nodes differ a little; the floor only ever rises).
            through = floor
            for seq, at in ages:
                if at >= cutoff:
                    break
                through = seq
            if through == floor:
                return deleted
            journal.set_kv(tx, journal.FLOOR_KEY, str(through))
            deleted += journal.delete_through(tx, floor, through)
            if through != ages[-1][0] or len(ages) < TRIM_BATCH:
                return deleted
