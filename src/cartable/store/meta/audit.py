# SPDX-License-Identifier: EUPL-1.2
"""Audit events rows (table ``audit_events``): append, query by actor / event / time, purge.

Rows are only ever inserted and, past retention, deleted; never updated. Queries run on the
indexes (actor_key, at), (event, at) and (at), newest first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import AuditRecord
from cartable.store.meta.schema import audit_events

__all__ = ["insert", "query", "purge_before"]

_T = audit_events


def insert(tx: Tx, **values: Any) -> None:
    tx.execute(_T.insert().values(**values))


def query(tx: Tx, *, actor_key: str | None = None, event: str | None = None, outcome: str | None = None,
          since: float | None = None, until: float | None = None, limit: int = 100) -> list[AuditRecord]:
    """Events matching every filter given, newest first, at most ``limit``; ``since`` is
    inclusive, ``until`` exclusive."""
    q = select(_T)
    if actor_key is not None:
        q = q.where(_T.c.actor_key == actor_key)
    if event is not None:
        q = q.where(_T.c.event == event)
    if outcome is not None:
        q = q.where(_T.c.outcome == outcome)
    if since is not None:
        q = q.where(_T.c.at >= since)
    if until is not None:
        q = q.where(_T.c.at < until)
    q = q.order_by(_T.c.at.desc(), _T.c.id.desc()).limit(limit)
    return [AuditRecord.from_row(r) for r in tx.execute(q)]


def purge_before(tx: Tx, cutoff: float) -> int:
    """Delete the events older than ``cutoff``; returns how many."""
    return int(tx.execute(_T.delete().where(_T.c.at < cutoff)).rowcount or 0)
