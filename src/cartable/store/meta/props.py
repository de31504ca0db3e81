# SPDX-License-Identifier: EUPL-1.2
"""Dead properties: arbitrary (namespace, name) → serialised XML element, per node."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from cartable.store.meta.dialect import insert as dialect_insert
from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import dead_props

__all__ = ["get_all", "put", "remove", "copy", "delete_for"]

_BATCH = 500


def get_all(tx: Tx, node_id: int) -> dict[tuple[str, str], str]:
    rows = tx.execute(select(dead_props.c.ns, dead_props.c.name, dead_props.c.xml)
                      .where(dead_props.c.node_id == node_id))
    return {(r[0], r[1]): r[2] for r in rows}


def get_many(tx: Tx, node_ids: Sequence[int]) -> dict[int, dict[tuple[str, str], str]]:
    out: dict[int, dict[tuple[str, str], str]] = {}
    for i in range(0, len(node_ids), _BATCH):
        rows = tx.execute(select(dead_props).where(dead_props.c.node_id.in_(node_ids[i:i + _BATCH])))
        for r in rows:
            out.setdefault(r.node_id, {})[(r.ns, r.name)] = r.xml
    return out


def put(tx: Tx, node_id: int, ns: str, name: str, xml: str) -> None:
    """Set a property, inserted or replaced in one statement (INSERT ... ON CONFLICT DO UPDATE)."""
    stmt = dialect_insert(tx, dead_props).values(node_id=node_id, ns=ns, name=name, xml=xml)
    tx.execute(stmt.on_conflict_do_update(index_elements=[dead_props.c.node_id, dead_props.c.ns, dead_props.c.name],
                                          set_={"xml": stmt.excluded.xml}))


def remove(tx: Tx, node_id: int, ns: str, name: str) -> None:
    tx.execute(dead_props.delete().where(dead_props.c.node_id == node_id, dead_props.c.ns == ns,
                                         dead_props.c.name == name))


def copy(tx: Tx, src: int, dst: int) -> None:
    rows = [{"node_id": dst, "ns": k[0], "name": k[1], "xml": v} for k, v in get_all(tx, src).items()]
    if rows:
        tx.execute(dead_props.insert(), rows)


def delete_for(tx: Tx, node_ids: Sequence[int]) -> None:
    for i in range(0, len(node_ids), _BATCH):
        tx.execute(dead_props.delete().where(dead_props.c.node_id.in_(node_ids[i:i + _BATCH])))
