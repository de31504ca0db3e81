# SPDX-License-Identifier: EUPL-1.2
"""Trash rows, and the byte counters of a space's trash and old versions (``spaces.trash_bytes``,
``spaces.versions_bytes``). No user logic here: core/trash.py decides what goes in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import nodes, spaces, trash

__all__ = ["TrashRecord", "insert", "get", "by_name", "of_space", "oldest", "expired", "delete", "shrink",
           "stamp_taken", "add_bytes", "counters", "all_rows", "trashed_below", "space_totals", "has_trash"]


@dataclass(frozen=True, slots=True)
class TrashRecord:
    id: int
    space_id: int
    node_id: int
    parent_id: int | None
    name: str
    location: str
    kind: str
    size: int
    deleted_at: int
    deleted_by: int | None

    @property
    def is_dir(self) -> bool:
        return self.kind == "d"

    @classmethod
    def from_row(cls, row: Any) -> TrashRecord:
        m = row._mapping
        return cls(m["id"], m["space_id"], m["node_id"], m["parent_id"], m["name"], m["location"], m["kind"],
                   int(m["size"]), int(m["deleted_at"]), m["deleted_by"])


def insert(tx: Tx, **values: Any) -> int:
    key = tx.execute(trash.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def get(tx: Tx, item_id: int) -> TrashRecord | None:
    row = tx.execute(select(trash).where(trash.c.id == item_id)).first()
    return None if row is None else TrashRecord.from_row(row)


def by_name(tx: Tx, space_id: int, name: str, deleted_at: int) -> TrashRecord | None:
    row = tx.execute(select(trash).where(trash.c.space_id == space_id, trash.c.name == name,
                                         trash.c.deleted_at == deleted_at)).first()
    return None if row is None else TrashRecord.from_row(row)


def stamp_taken(tx: Tx, space_id: int, name: str, deleted_at: int) -> bool:
    return tx.execute(select(trash.c.id).where(trash.c.space_id == space_id, trash.c.name == name,
                                               trash.c.deleted_at == deleted_at)).first() is not None


def of_space(tx: Tx, space_id: int) -> list[TrashRecord]:
    """The space's trash, most recently deleted first."""
    rows = tx.execute(select(trash).where(trash.c.space_id == space_id)
                      .order_by(trash.c.deleted_at.desc(), trash.c.id.desc()))
    return [TrashRecord.from_row(r) for r in rows]


def oldest(tx: Tx, space_id: int, limit: int) -> list[TrashRecord]:
    """The space's oldest trash items first."""
    rows = tx.execute(select(trash).where(trash.c.space_id == space_id)
                      .order_by(trash.c.deleted_at, trash.c.id).limit(limit))
    return [TrashRecord.from_row(r) for r in rows]


def expired(tx: Tx, before: float, limit: int) -> list[TrashRecord]:
    """Items of any space deleted before ``before``, oldest first."""
    rows = tx.execute(select(trash).where(trash.c.deleted_at < before)
                      .order_by(trash.c.deleted_at, trash.c.id).limit(limit))
    return [TrashRecord.from_row(r) for r in rows]


def delete(tx: Tx, item_id: int) -> None:
    tx.execute(trash.delete().where(trash.c.id == item_id))


def shrink(tx: Tx, item_id: int, size: int) -> None:
    """A part of the item left the trash: it holds ``size`` bytes less."""
    tx.execute(update(trash).where(trash.c.id == item_id).values(size=trash.c.size - size))


_ADD = (update(spaces).where(spaces.c.id == bindparam("_id"))
        .values(trash_bytes=spaces.c.trash_bytes + bindparam("t"),
                versions_bytes=spaces.c.versions_bytes + bindparam("v")))


def add_bytes(tx: Tx, space_id: int, *, trash_delta: int = 0, versions_delta: int = 0) -> None:
    """Add to the space's counters, in SQL (never read-then-write)."""
    if trash_delta or versions_delta:
        tx.execute(_ADD, {"_id": space_id, "t": trash_delta, "v": versions_delta})


_COUNTERS = select(spaces.c.trash_bytes, spaces.c.versions_bytes).where(spaces.c.id == bindparam("_id"))


def counters(tx: Tx, space_id: int) -> tuple[int, int]:
    """(trash bytes, old versions' bytes) of the space (after every write: built once)."""
    row = tx.execute(_COUNTERS, {"_id": space_id}).one()
    return int(row[0]), int(row[1])


def all_rows(tx: Tx) -> list[TrashRecord]:
    return [TrashRecord.from_row(r) for r in tx.execute(select(trash))]


def has_trash(tx: Tx, space_id: int) -> bool:
    return tx.execute(select(trash.c.id).where(trash.c.space_id == space_id).limit(1)).first() is not None


def trashed_below(space_id: int) -> Any:
    """A selectable of the ids of every node inside the space's trash (the trashed items and
    everything below them): a recursive query over the trash only, never the live tree."""
    down = (select(nodes.c.id).join(trash, trash.c.node_id == nodes.c.id)
            .where(trash.c.space_id == space_id).cte("in_trash", recursive=True))
    down = down.union_all(select(nodes.c.id).join(down, nodes.c.parent_id == down.c.id))
    return select(down.c.id)


def space_totals(tx: Tx) -> dict[int, tuple[int | None, int, int]]:
    """{space id: (root id, trash_bytes, versions_bytes)} of every space, for fsck."""
    rows = tx.execute(select(spaces.c.id, spaces.c.root_id, spaces.c.trash_bytes, spaces.c.versions_bytes))
    return {int(r[0]): (r[1], int(r[2]), int(r[3])) for r in rows}
