# SPDX-License-Identifier: EUPL-1.2
"""Bring a metadata database to the newest schema with Alembic (the only way tables change).

Every node may start at the same instant on a new database (DESIGN.md), so an upgrade runs under
a lock that only one process holds at a time, and re-reads the schema's revision once it has it:
the first process upgrades, the others wait, find the newest schema and do nothing.
- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on the connection that runs
  the revisions (they run in one transaction: PostgreSQL's DDL is transactional).
- SQLite: this process's writer lock, and ``BEGIN IMMEDIATE`` for the revisions' transaction,
  which waits (``busy_timeout``) while another process holds the database's writer lock.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from cartable.store.meta.engine import MetaDB

__all__ = ["upgrade", "current_revision", "head_revision", "alembic_config", "MIGRATION_LOCK"]

_HERE = Path(__file__).parent / "migrations"
# The advisory lock key of schema upgrades: any 64-bit number no other program on the database
# uses ("cartable" in ASCII).
MIGRATION_LOCK = 0x63617274_61626C65


def alembic_config(db: MetaDB, connection: Connection | None = None) -> Config:
    """Alembic's configuration for ``db``; the revisions run on ``connection`` when given (its
    transaction is committed by them), else on a new connection of the engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(db: MetaDB, revision: str = "head") -> None:
    """Apply every pending revision; a no-op on an up-to-date database. Safe when several
    processes start at once on the same database (see the module doc)."""
    if current_revision(db) == head_revision(db):
        return
    if db.is_sqlite:
        assert db._write_lock is not None
        with db._write_lock, db.engine.connect().execution_options(cartable_write=True) as conn:
            command.upgrade(alembic_config(db, conn), revision)
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        conn.commit()
        try:
            command.upgrade(alembic_config(db, conn), revision)
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            conn.commit()


def current_revision(db: MetaDB) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: MetaDB) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
