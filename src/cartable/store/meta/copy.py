# SPDX-License-Identifier: EUPL-1.2
"""Copy every row of one metadata database into another (SQLite to PostgreSQL, for
``cartable admin migrate-to``), keeping every primary key: file ids are what clients know files
by, and they must not change.

Tables are copied parents first (schema order), each in primary-key order, in batches inserted
with ON CONFLICT DO NOTHING, so a copy that was interrupted can simply run again: what is there is
kept, what is missing is added. Each table's progress (the last key copied) is kept in the target's
``meta_kv`` under ``copy.<table>`` (keys starting with ``copy.`` belong to the copy and are never
copied or counted), so a resumed copy starts where it stopped instead of re-reading
millions of rows. ``meta_kv`` itself is copied with the source's values winning (the journal epoch,
the instance id and the secrets must move with the data). On PostgreSQL the id sequences are
moved past the copied ids at the end. Nothing here knows users or files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cartable.store.meta.engine import MetaDB, Tx
from cartable.store.meta.schema import meta_kv, metadata

__all__ = ["copy_tables", "row_counts", "CURSOR_PREFIX"]

CURSOR_PREFIX = "copy."
_BATCH = 2000


def _insert(tx: Tx, table: Table) -> Any:
    return (pg_insert if tx.dialect.name == "postgresql" else sqlite_insert)(table)


def _cursor_key(table: Table) -> str:
    return f"{CURSOR_PREFIX}{table.name}"


def _encode(values: Sequence[Any]) -> str:
    return json.dumps([v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else v for v in values])


def _decode(table: Table, raw: str) -> list[Any]:
    values = json.loads(raw)
    return [bytes.fromhex(v) if col.type.python_type is bytes else v
            for col, v in zip(table.primary_key.columns, values)]


def _get_cursor(target: MetaDB, table: Table) -> list[Any] | None:
    with target.read() as tx:
        row = tx.execute(select(meta_kv.c.value).where(meta_kv.c.key == _cursor_key(table))).first()
    return None if row is None else _decode(table, row[0])


def _copy_table(source: MetaDB, target: MetaDB, table: Table, progress: Callable[[str, int], None],
                batch_size: int) -> int:
    pk = list(table.primary_key.columns)
    cursor = _get_cursor(target, table)
    copied = 0
    while True:
        query = select(table).order_by(*pk).limit(batch_size)
        if cursor is not None:
            query = query.where(tuple_(*pk) > tuple_(*cursor)) if len(pk) > 1 else query.where(pk[0] > cursor[0])
        with source.read() as tx:
            rows = [dict(r._mapping) for r in tx.execute(query)]
        if not rows:
            return copied
        cursor = [rows[-1][c.name] for c in pk]
        with target.write() as tx:
            tx.execute(_insert(tx, table).on_conflict_do_nothing(index_elements=pk), rows)
            _set(tx, _cursor_key(table), _encode(cursor))
        copied += len(rows)
        progress(table.name, copied)


def _set(tx: Tx, key: str, value: str) -> None:
    stmt = _insert(tx, meta_kv).values(key=key, value=value)
    tx.execute(stmt.on_conflict_do_update(index_elements=[meta_kv.c.key], set_={"value": value}))


def _copy_settings(source: MetaDB, target: MetaDB) -> None:
    """meta_kv: the source's values win (epoch, instance id, secrets move with the data)."""
    with source.read() as tx:
        rows = [(k, v) for k, v in tx.execute(select(meta_kv.c.key, meta_kv.c.value))
                if not k.startswith(CURSOR_PREFIX)]
    with target.write() as tx:
        for key, value in rows:
            _set(tx, key, value)


def _advance_sequences(target: MetaDB) -> None:
    """PostgreSQL: each id sequence continues after the largest copied id (ids are never reused)."""
    with target.write() as tx:
        if tx.dialect.name != "postgresql":
            return
        for table in metadata.sorted_tables:
            pk = list(table.primary_key.columns)
            if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
                continue
            seq = tx.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                             {"t": table.name, "c": pk[0].name}).scalar()
            if seq is None:
                continue
            top = tx.execute(select(func.max(pk[0]))).scalar()
            if top is not None:
                tx.execute(text("SELECT setval(:s, :v)"), {"s": seq, "v": int(top)})


def copy_tables(source: MetaDB, target: MetaDB, progress: Callable[[str, int], None] = lambda _t, _n: None,
                *, batch_size: int = _BATCH) -> dict[str, int]:
    """Copy every table (both schemas must be at the same revision); returns rows copied per
    table in this run. Safe to run again after an interruption."""
    copied: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if table is meta_kv:
            continue
        copied[table.name] = _copy_table(source, target, table, progress, batch_size)
    _copy_settings(source, target)
    _advance_sequences(target)
    return copied


def row_counts(db: MetaDB) -> dict[str, int]:
    """Rows per table (meta_kv without the copy's own cursors)."""
    counts: dict[str, int] = {}
    with db.read() as tx:
        for table in metadata.sorted_tables:
            query = select(func.count()).select_from(table)
            if table is meta_kv:
                query = query.where(~meta_kv.c.key.startswith(CURSOR_PREFIX))
            counts[table.name] = int(tx.execute(query).scalar_one())
    return counts
