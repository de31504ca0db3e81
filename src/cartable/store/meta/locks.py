# SPDX-License-Identifier: EUPL-1.2
"""WebDAV lock rows (kept in the database so any app node sees them)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select, update

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import LockRecord
from cartable.store.meta.schema import locks

__all__ = ["insert", "on_nodes", "any_active", "delete", "refresh", "purge_expired", "delete_expired_for",
           "delete_for"]

_BATCH = 500


def insert(tx: Tx, rec: LockRecord) -> None:
    tx.execute(locks.insert().values(token=rec.token, node_id=rec.node_id, user_id=rec.user_id,
                                     exclusive=rec.exclusive, infinite=rec.infinite,
                                     owner_xml=rec.owner_xml, timeout=rec.timeout,
                                     expires_at=rec.expires_at))


_ON_NODES = select(locks).where(locks.c.node_id.in_(bindparam("ids", expanding=True)),
                                locks.c.expires_at > bindparam("now"))
_ANY = select(locks.c.token).where(locks.c.expires_at > bindparam("now")).limit(1)


def any_active(tx: Tx, now: float) -> bool:
    """Whether any lock is in force anywhere (most of the time none is: a cheap early exit)."""
    return tx.execute(_ANY, {"now": now}).first() is not None


def on_nodes(tx: Tx, node_ids: Sequence[int], now: float) -> list[LockRecord]:
    out: list[LockRecord] = []
    for i in range(0, len(node_ids), _BATCH):
        rows = tx.execute(_ON_NODES, {"ids": list(node_ids[i:i + _BATCH]), "now": now})
        out.extend(LockRecord.from_row(r) for r in rows)
    return out


def delete(tx: Tx, token: str) -> bool:
    return bool(tx.execute(locks.delete().where(locks.c.token == token)).rowcount)


def refresh(tx: Tx, token: str, timeout: int, expires_at: float) -> None:
    tx.execute(update(locks).where(locks.c.token == token).values(timeout=timeout, expires_at=expires_at))


def purge_expired(tx: Tx, now: float) -> int:
    """Delete the lock rows expired at ``now``; returns how many."""
    return int(tx.execute(locks.delete().where(locks.c.expires_at <= now)).rowcount)


def delete_expired_for(tx: Tx, node_id: int, now: float) -> None:
    """Delete the expired locks of one node (cheap: by the node_id index)."""
    tx.execute(locks.delete().where(locks.c.node_id == node_id, locks.c.expires_at <= now))


def delete_for(tx: Tx, node_ids: Sequence[int]) -> None:
    for i in range(0, len(node_ids), _BATCH):
        tx.execute(locks.delete().where(locks.c.node_id.in_(node_ids[i:i + _BATCH])))
