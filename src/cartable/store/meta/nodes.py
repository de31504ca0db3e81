# SPDX-License-Identifier: EUPL-1.2
"""Node rows: the tree as an adjacency list. No permission logic here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import IntegrityError

from cartable.store.meta.dialect import byte_order
from cartable.store.meta.dialect import insert as dialect_insert
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import NodeRecord
from cartable.store.meta.schema import nodes

__all__ = ["get", "child", "children", "insert", "update_node", "delete_many", "ancestor_ids",
           "subtree", "propagate", "all_brief"]

_BATCH = 500


# Hot statements are built once: SQLAlchemy then skips construction and reuses its cache key.
_GET = select(nodes).where(nodes.c.id == bindparam("id"))
_CHILD = select(nodes).where(nodes.c.parent_id == bindparam("parent"), nodes.c.name == bindparam("name"))
_CHILD_FOR_UPDATE = _CHILD.with_for_update()


def get(tx: Tx, node_id: int) -> NodeRecord | None:
    row = tx.execute(_GET, {"id": node_id}).first()
    return None if row is None else NodeRecord.from_row(row)


def child(tx: Tx, parent_id: int, name: str, *, for_update: bool = False) -> NodeRecord | None:
    """The child named ``name``; ``for_update`` holds its row until commit (PostgreSQL: a row
    lock, taken after the space's in the lock order; SQLite: the writer lock already is)."""
    row = tx.execute(_CHILD_FOR_UPDATE if for_update else _CHILD, {"parent": parent_id, "name": name}).first()
    return None if row is None else NodeRecord.from_row(row)


_CHILDREN = select(nodes).where(nodes.c.parent_id == bindparam("parent")).order_by(byte_order(nodes.c.name))


def children(tx: Tx, parent_id: int) -> list[NodeRecord]:
    """The folder's children in byte order of their names (store/meta/dialect.py)."""
    return [NodeRecord.from_row(r) for r in tx.execute(_CHILDREN, {"parent": parent_id})]


_UPDATE = update(nodes).where(nodes.c.id == bindparam("_id"))
_DEFAULTS = {"size": 0, "version_id": None, "content_type": None, "checksums": None}


_INSERTS: dict[str, Any] = {}  # dialect name → the INSERT below, built once (every PUT of a new file runs it)


def insert(tx: Tx, **values: Any) -> int:
    """Insert a node; raises RowConflict when (parent, name) is taken (INSERT ... ON CONFLICT DO
    NOTHING: the transaction stays usable)."""
    stmt = _INSERTS.get(tx.dialect.name)
    if stmt is None:
        stmt = _INSERTS[tx.dialect.name] = (
            dialect_insert(tx, nodes).on_conflict_do_nothing(index_elements=[nodes.c.parent_id, nodes.c.name])
            .returning(nodes.c.id))
    new_id = tx.execute(stmt, {**_DEFAULTS, **values}).scalar()
    if new_id is None:
        raise RowConflict(f"a node named {values.get('name')!r} already exists in folder {values.get('parent_id')}")
    return int(new_id)


def update_node(tx: Tx, node_id: int, **values: Any) -> None:
    """Set columns of one node; RowConflict when the new (parent, name) is taken: the caller must
    then abandon its transaction (PostgreSQL aborts it)."""
    try:
        tx.execute(_UPDATE, {"_id": node_id, **values})
    except IntegrityError as exc:
        raise RowConflict(str(exc.orig)) from None


def delete_many(tx: Tx, ids: Sequence[int]) -> None:
    for i in range(0, len(ids), _BATCH):
        tx.execute(nodes.delete().where(nodes.c.id.in_(ids[i:i + _BATCH])))


def _ancestors_stmt() -> Any:
    up = select(nodes.c.id, nodes.c.parent_id).where(nodes.c.id == bindparam("id")).cte("up", recursive=True)
    up = up.union_all(select(nodes.c.id, nodes.c.parent_id).join(up, nodes.c.id == up.c.parent_id))
    return select(up.c.id, up.c.parent_id)


_ANCESTORS = _ancestors_stmt()


def ancestor_ids(tx: Tx, node_id: int) -> list[int]:
    """Ids from the node's parent up to the root (nearest first); one recursive query."""
    rows = tx.execute(_ANCESTORS, {"id": node_id}).all()
    by_id = {r[0]: r[1] for r in rows}
    out: list[int] = []
    cur = by_id.get(node_id)
    while cur is not None:
        out.append(cur)
        cur = by_id.get(cur)
    return out


def subtree(tx: Tx, node_id: int) -> list[NodeRecord]:
    """The node and everything below it, parents before children."""
    down = select(nodes.c.id, nodes.c.parent_id).where(nodes.c.id == node_id).cte("down", recursive=True)
    down = down.union_all(
        select(nodes.c.id, nodes.c.parent_id).join(down, nodes.c.parent_id == down.c.id)
    )
    rows = tx.execute(select(nodes).join(down, nodes.c.id == down.c.id)).all()
    recs = {r._mapping["id"]: NodeRecord.from_row(r) for r in rows}
    ordered: list[NodeRecord] = []
    kids: dict[int | None, list[NodeRecord]] = {}
    for rec in recs.values():
        kids.setdefault(rec.parent_id, []).append(rec)
    stack = [recs[node_id]]
    while stack:
        rec = stack.pop()
        ordered.append(rec)
        stack.extend(sorted(kids.get(rec.id, []), key=lambda r: r.name, reverse=True))
    return ordered


_PROPAGATE = (
    update(nodes).where(nodes.c.id.in_(bindparam("ids", expanding=True)))
    .values(etag=bindparam("etag"), size=nodes.c.size + bindparam("delta"),
            mtime=case((nodes.c.id.in_(bindparam("touched", expanding=True)), bindparam("now")),
                       else_=nodes.c.mtime))
    .returning(nodes.c.id, nodes.c.size)
)


def propagate(tx: Tx, ids: Iterable[int], *, size_delta: int, etag: str, touched: Collection[int] = (),
              now: float = 0.0) -> dict[int, int]:
    """Give every folder in ids a new etag and add size_delta to its size; the folders in
    `touched` (direct parents of what changed) also get mtime now. Returns {id: new size}: on
    PostgreSQL each row as it is once this transaction holds its lock, whatever committed before."""
    ids = list(ids)
    if not ids:
        return {}
    rows = tx.execute(_PROPAGATE, {"ids": ids, "etag": etag, "delta": size_delta,
                                   "touched": list(touched) or [-1], "now": now})
    return {int(i): int(size) for i, size in rows}


def all_brief(tx: Tx) -> list[tuple[int, int | None, str, int, int | None, str]]:
    """(id, parent_id, kind, size, version_id, name) of every node, for consistency checks."""
    rows = tx.execute(select(nodes.c.id, nodes.c.parent_id, nodes.c.kind, nodes.c.size,
                             nodes.c.version_id, nodes.c.name))
    return [tuple(r) for r in rows]  # type: ignore[misc]
