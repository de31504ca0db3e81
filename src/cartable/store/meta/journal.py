# SPDX-License-Identifier: EUPL-1.2
"""The change journal (append-only) and the database's epoch and settings (meta_kv).

Each entry is one node after one change, tagged with the client's (device id, operation id) when
it sent them. Its ``op`` is one of:
- "create": the node appeared (PUT of a new file, MKCOL, COPY, LOCK on an unmapped URL, a restore
  from the trash: then it comes back with everything below it, which has no entries of its own);
- "modify": a file got a new version (its content, size, mtime and etag changed; also a version
  restored);
- "move": the node was renamed or moved (its parent and name are the new ones; id and etag kept);
- "delete": the node and everything below it are gone (into the trash: one entry for all);
- "props": its dead properties (favourite, tags, any client property) changed; etags did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import ChangeRecord
from cartable.store.meta.schema import changes, meta_kv

__all__ = ["append", "since", "head", "get_kv", "set_kv", "kv_once", "ages_after", "delete_through",
           "heads_after", "last_of_space", "get_kvs", "FLOOR_KEY"]

# meta_kv: the highest seq trimmed from the journal (core/changes.py); a cursor below it is gone.
FLOOR_KEY = "journal_floor"


_APPEND = changes.insert()


def append(tx: Tx, entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        tx.execute(_APPEND, list(entries))


def since(tx: Tx, space_id: int, seq: int, limit: int) -> list[ChangeRecord]:
    rows = tx.execute(select(changes).where(changes.c.space_id == space_id, changes.c.seq > seq)
                      .order_by(changes.c.seq).limit(limit))
    return [ChangeRecord(**r._mapping) for r in rows]


def ages_after(tx: Tx, seq: int, limit: int) -> list[tuple[int, float]]:
    """(seq, at) of the entries after ``seq``, oldest first: a primary-key range."""
    rows = tx.execute(select(changes.c.seq, changes.c.at).where(changes.c.seq > seq)
                      .order_by(changes.c.seq).limit(limit))
    return [(int(r[0]), float(r[1])) for r in rows]


def delete_through(tx: Tx, after: int, through: int) -> int:
    """Delete the entries with after < seq <= through (a primary-key range); returns how many."""
    return int(tx.execute(changes.delete().where(changes.c.seq > after, changes.c.seq <= through)).rowcount)


def heads_after(tx: Tx, seq: int) -> dict[int, int]:
    """The last seq of each space that has entries after ``seq`` (what a long-poll watcher
    asks every tick: a primary-key range, empty when nothing happened)."""
    rows = tx.execute(select(changes.c.space_id, func.max(changes.c.seq)).where(changes.c.seq > seq)
                      .group_by(changes.c.space_id))
    return {int(r[0]): int(r[1]) for r in rows}


def last_of_space(tx: Tx, space_id: int) -> int:
    """The last seq of one space (0 if it has none): the end of an index range."""
    return int(tx.execute(select(func.coalesce(func.max(changes.c.seq), 0))
                          .where(changes.c.space_id == space_id)).scalar_one())


def head(tx: Tx) -> int:
    return int(tx.execute(select(func.coalesce(func.max(changes.c.seq), 0))).scalar_one())


def get_kv(tx: Tx, key: str) -> str | None:
    row = tx.execute(select(meta_kv.c.value).where(meta_kv.c.key == key)).first()
    return None if row is None else str(row[0])


def get_kvs(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
    """The values of those keys that are set, in one statement."""
    rows = tx.execute(select(meta_kv.c.key, meta_kv.c.value).where(meta_kv.c.key.in_(list(keys))))
    return {str(r[0]): str(r[1]) for r in rows}


def set_kv(tx: Tx, key: str, value: str) -> None:
    """Set ``key`` to ``value``, inserted or replaced in one statement (INSERT ... ON CONFLICT DO
    UPDATE): two nodes setting it at once never collide; the last commit wins."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(meta_kv).values(key=key, value=value)
    tx.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))


def kv_once(tx: Tx, key: str, value: str) -> str:
    """Set ``key`` to ``value`` unless it is already set (INSERT ... ON CONFLICT DO NOTHING, so
    nodes starting together agree on one value); returns the value that holds."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    tx.execute(dialect.insert(meta_kv).values(key=key, value=value).on_conflict_do_nothing(index_elements=["key"]))
    held = get_kv(tx, key)
    assert held is not None
    return held
