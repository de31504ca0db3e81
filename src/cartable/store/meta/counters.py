# SPDX-License-Identifier: EUPL-1.2
"""Leaky-bucket counters shared by every node (table ``login_counters``).

A counter is one row: ``expires_at`` is the instant its count falls back to zero. Adding one
event of cost ``c`` seconds moves ``expires_at`` to ``max(expires_at, now) + c`` in ONE
``INSERT ... ON CONFLICT DO UPDATE`` computed by the database, so two nodes adding at once never
lose a count. The count at ``now`` is ``max(0, expires_at - now) / c``. A row whose
``expires_at`` is past counts nothing and may be deleted (``purge``).

Keys are opaque 32-byte values (callers hash what they count).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, case, select
from sqlalchemy.dialects import postgresql, sqlite

from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import login_counters

__all__ = ["add", "expiries", "delete", "purge"]

_T = login_counters


def add(tx: Tx, key: bytes, now: float, cost: float) -> float:
    """Add one event of ``cost`` seconds to ``key``; returns its new ``expires_at``."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_T).values(key=key, expires_at=now + cost)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_T.c.key],
        set_={"expires_at": case((_T.c.expires_at > now, _T.c.expires_at + cost), else_=now + cost)},
    ).returning(_T.c.expires_at)
    return float(tx.execute(stmt).scalar_one())


_EXPIRIES = select(_T.c.key, _T.c.expires_at).where(_T.c.key.in_(bindparam("keys", expanding=True)))


def expiries(tx: Tx, keys: Sequence[bytes]) -> dict[bytes, float]:
    """``expires_at`` of each key that has a row (absent keys count zero)."""
    return {bytes(k): float(e) for k, e in tx.execute(_EXPIRIES, {"keys": list(keys)})}


def delete(tx: Tx, key: bytes) -> None:
    tx.execute(_T.delete().where(_T.c.key == key))


def purge(tx: Tx, now: float) -> int:
    """Delete the counters that have fallen to zero; returns how many."""
    return int(tx.execute(_T.delete().where(_T.c.expires_at <= now)).rowcount or 0)
