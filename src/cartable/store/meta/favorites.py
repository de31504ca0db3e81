# SPDX-License-Identifier: EUPL-1.2
"""Favorites: (user, node) pairs. No permission logic here; rows go with their node or user
(ON DELETE CASCADE)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import favorites

__all__ = ["add", "remove", "of_nodes", "node_ids"]

_BATCH = 500


def add(tx: Tx, user_id: int, node_id: int, now: float) -> None:
    """Mark node_id a favorite of user_id; already one is fine (two requests may race)."""
    insert = pg_insert if tx.dialect.name == "postgresql" else sqlite_insert
    tx.execute(insert(favorites).values(user_id=user_id, node_id=node_id, created_at=now)
               .on_conflict_do_nothing(index_elements=["user_id", "node_id"]))


def remove(tx: Tx, user_id: int, node_id: int) -> None:
    tx.execute(favorites.delete().where(favorites.c.user_id == user_id, favorites.c.node_id == node_id))


def of_nodes(tx: Tx, user_id: int, node_ids: Sequence[int]) -> set[int]:
    """Which of node_ids are favorites of user_id."""
    out: set[int] = set()
    for i in range(0, len(node_ids), _BATCH):
        rows = tx.execute(select(favorites.c.node_id).where(
            favorites.c.user_id == user_id, favorites.c.node_id.in_(node_ids[i:i + _BATCH])))
        out.update(r[0] for r in rows)
    return out


def node_ids(tx: Tx, user_id: int) -> list[int]:
    """Every favorite of user_id, oldest first."""
    rows = tx.execute(select(favorites.c.node_id).where(favorites.c.user_id == user_id)
                      .order_by(favorites.c.created_at, favorites.c.node_id))
    return [r[0] for r in rows]
