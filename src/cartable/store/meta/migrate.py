# SPDX-License-Identifier: EUPL-1.2
"""Bring a metadata database to the newest schema with Alembic (the only way tables change)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cartable.store.meta.engine import MetaDB

__all__ = ["upgrade", "current_revision", "head_revision", "alembic_config"]

_HERE = Path(__file__).parent / "migrations"


def alembic_config(db: MetaDB) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: MetaDB, revision: str = "head") -> None:
    """Apply every pending revision; a no-op on an up-to-date database."""
    if current_revision(db) == head_revision(db):
        return
    if db._write_lock is not None:
        with db._write_lock:
            command.upgrade(alembic_config(db), revision)
    else:
        command.upgrade(alembic_config(db), revision)


def current_revision(db: MetaDB) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: MetaDB) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
