# SPDX-License-Identifier: EUPL-1.2
"""Job leases (table ``leases``): which node runs a background job, until when, and when the
fleet should run it next.

A lease is free when its ``expires_at`` is past. ``acquire`` takes it with ONE
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` (the row is made on first use, by whichever node
comes first), so two nodes asking at the same instant never both get it, on SQLite (one writer)
as on PostgreSQL (the conflicting insert waits for the other's row, then evaluates the WHERE
against it). Every later write (renew, cursor, release) is conditional on ``holder`` being the
caller: a node that lost its lease (it stalled past ``expires_at`` and another took over) cannot
overwrite what the new holder writes.

Times are POSIX seconds. Callers pass ``now``; in production it is the database's own clock
(``db_now``), one clock for every node whatever their system clocks say, and tests inject theirs.
Holders are opaque strings (core/jobs.py makes them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import leases

__all__ = ["LeaseRecord", "db_now", "acquire", "renew", "save_cursor", "release", "get", "all_leases"]

_T = leases


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    name: str
    holder: str
    expires_at: float
    next_run_at: float
    cursor: str | None
    started_at: float | None
    finished_at: float | None
    outcome: str | None

    def held_at(self, now: float) -> bool:
        return self.expires_at > now


# The database server's wall clock, in POSIX seconds. PostgreSQL: clock_timestamp() (now() would be
# the start of the transaction). SQLite: the clock of the host holding the file, which every
# process sharing that file reads too, to the millisecond.
_NOW = {
    "postgresql": text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"),
    "sqlite": text("SELECT (julianday('now') - 2440587.5) * 86400.0"),
}


def db_now(tx: Tx) -> float:
    """The database's clock now (POSIX seconds): the lease clock of a fleet."""
    return float(tx.execute(_NOW[tx.dialect.name]).scalar_one())


def acquire(tx: Tx, name: str, holder: str, now: float, ttl: float, *, due_only: bool = True) -> bool:
    """Take the lease ``name`` for ``holder`` until ``now + ttl`` if it is free (expired) or
    already ``holder``'s, and (when ``due_only``) the job is due (``next_run_at <= now``).
    True if ``holder`` holds it now. One statement: never two holders."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_T).values(name=name, holder=holder, expires_at=now + ttl, next_run_at=0.0,
                                     started_at=now)
    free = or_(_T.c.expires_at <= now, _T.c.holder == holder)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_T.c.name],
        set_={"holder": holder, "expires_at": now + ttl, "started_at": now},
        where=and_(free, _T.c.next_run_at <= now) if due_only else free,
    ).returning(_T.c.holder)
    return tx.execute(stmt).first() is not None


_RENEW = (_T.update().where(_T.c.name == bindparam("lease"), _T.c.holder == bindparam("me"))
          .values(expires_at=bindparam("until")))


def renew(tx: Tx, name: str, holder: str, until: float) -> bool:
    """Extend ``holder``'s lease to ``until``; False if another node holds it now (the lease
    was lost: it expired and was taken). An expired lease nobody took is still the holder's."""
    return tx.execute(_RENEW, {"lease": name, "me": holder, "until": until}).rowcount == 1


def save_cursor(tx: Tx, name: str, holder: str, cursor: str | None) -> bool:
    """Record where a long job stopped; False (nothing written) if ``holder`` lost the lease."""
    stmt = _T.update().where(_T.c.name == name, _T.c.holder == holder).values(cursor=cursor)
    return tx.execute(stmt).rowcount == 1


def release(tx: Tx, name: str, holder: str, now: float, next_run_at: float, outcome: str) -> bool:
    """End ``holder``'s run: the lease becomes free at once, the job is due again at
    ``next_run_at``, and ``outcome`` (cut to the column's length) says what the run did. False
    (nothing written) if another node holds the lease."""
    stmt = (_T.update().where(_T.c.name == name, _T.c.holder == holder)
            .values(expires_at=now, next_run_at=next_run_at, finished_at=now, outcome=outcome[:1024]))
    return tx.execute(stmt).rowcount == 1


def get(tx: Tx, name: str) -> LeaseRecord | None:
    row = tx.execute(select(_T).where(_T.c.name == name)).first()
    return None if row is None else LeaseRecord(**row._mapping)


def all_leases(tx: Tx) -> list[LeaseRecord]:
    return [LeaseRecord(**r._mapping) for r in tx.execute(select(_T).order_by(_T.c.name))]
