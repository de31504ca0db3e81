# SPDX-License-Identifier: EUPL-1.2
"""The Alembic revisions build exactly the tables schema.py declares, in one linear chain."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cartable.store.meta.engine import MetaDB, sqlite_url
from cartable.store.meta.migrate import alembic_config, upgrade
from cartable.store.meta.schema import metadata


def test_revisions_form_one_chain(tmp_path: Path) -> None:
    db = MetaDB(sqlite_url(tmp_path / "m.db"))
    try:
        heads = ScriptDirectory.from_config(alembic_config(db)).get_heads()
    finally:
        db.dispose()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    db = MetaDB(sqlite_url(tmp_path / "m.db"))
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        db.dispose()
    assert diff == [], f"schema.py and the migrations disagree: {diff}"
