# SPDX-License-Identifier: EUPL-1.2
"""Node rows: the tree as an adjacency list. No permission logic here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import IntegrityError

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


def get(tx: Tx, node_id: int) -> NodeRecord | None:
    row = tx.execute(_GET, {"id": node_id}).first()
    return None if row is None else NodeRecord.from_row(row)


def child(tx: Tx, parent_id: int, name: str) -> NodeRecord | None:
    row = tx.execute(_CHILD, {"parent": parent_id, "name": name}).first()
    return None if row is None else NodeRecord.from_row(row)


def children(tx: Tx, parent_id: int) -> list[NodeRecord]:
    rows = tx.execute(select(nodes).where(nodes.c.parent_id == parent_id).order_by(nodes.c.name))
    return [NodeRecord.from_row(r) for r in rows]


_INSERT = nodes.insert()
_UPDATE = update(nodes).where(nodes.c.id == bindparam("_id"))
_DEFAULTS = {"size": 0, "version_id": None, "content_type": None, "checksums": None}


def insert(tx: Tx, **values: Any) -> int:
    """Insert a node; raises RowConflict when (parent, name) is taken. The caller must then
    abandon its transaction (PostgreSQL aborts it)."""
    try:
        result = tx.execute(_INSERT, {**_DEFAULTS, **values})
    except IntegrityError as exc:
        raise RowConflict(str(exc.orig)) from None
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_node(tx: Tx, node_id: int, **values: Any) -> None:
    """Set columns of one node; RowConflict as for insert."""
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
)


def propagate(tx: Tx, ids: Iterable[int], *, size_delta: int, etag: str, touched: Collection[int] = (),
              now: float = 0.0) -> None:
    """Give every folder in ids a new etag and add size_delta to its size; the folders in
    `touched` (direct parents of what changed) also get mtime now."""
    ids = list(ids)
    if ids:
        tx.execute(_PROPAGATE, {"ids": ids, "etag": etag, "delta": size_delta,
                                "touched": list(touched) or [-1], "now": now})


def all_brief(tx: Tx) -> list[tuple[int, int | None, str, int, int | None, str]]:
    """(id, parent_id, kind, size, version_id, name) of every node, for consistency checks."""
    rows = tx.execute(select(nodes.c.id, nodes.c.parent_id, nodes.c.kind, nodes.c.size,
                             nodes.c.version_id, nodes.c.name))
    return [tuple(r) for r in rows]  # type: ignore[misc]
