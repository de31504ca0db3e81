# SPDX-License-Identifier: EUPL-1.2
"""The Alembic revisions build exactly the tables schema.py declares, in one linear chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cartable.store.meta.engine import MetaDB, sqlite_url
from cartable.store.meta.migrate import alembic_config, upgrade
from cartable.store.meta.schema import metadata
from tests.backend import on_pg


@pytest.fixture
def empty_db(tmp_path: Path) -> Iterator[MetaDB]:
    """An EMPTY database of the test backend: SQLite, or a new PostgreSQL database (not the
    migrated template: these tests run the migrations themselves)."""
    if not on_pg():
        db = MetaDB(sqlite_url(tmp_path / "m.db"))
        yield db
        db.dispose()
        return
    from tests.engines import drop_database, engine, new_database

    pg = engine("postgres")
    url = new_database(pg)
    db = MetaDB(url)
    yield db
    db.dispose()
    drop_database(pg, url)


def test_revisions_form_one_chain(tmp_path: Path) -> None:
    db = MetaDB(sqlite_url(tmp_path / "m.db"))
    try:
        heads = ScriptDirectory.from_config(alembic_config(db)).get_heads()
    finally:
        db.dispose()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_migrated_database_matches_schema(empty_db: MetaDB) -> None:
    db = empty_db
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        db.dispose()
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def test_names_differing_only_by_case_stop_the_upgrade_and_change_nothing(empty_db: MetaDB) -> None:
    from sqlalchemy import text

    from cartable.store.meta.errors import MigrationRefused
    from cartable.store.meta.migrate import current_revision

    db = empty_db
    try:
        upgrade(db, "0004")
        with db.engine.begin() as conn:
            for name in ("alice", "Alice", "bob", "carol", "CAROL"):
                conn.execute(text("INSERT INTO users (name, display_name, email, password_hash, is_admin, "
                                  "disabled, auth_version, created_at) VALUES (:n, :n, '', 'x', false, false, 1, 0)"),
                             {"n": name})
        with pytest.raises(MigrationRefused) as refused:
            upgrade(db)
        assert str(refused.value) == (
            "user names must now be unique without regard to case, and these accounts differ only by case: "
            "'Alice', 'alice', 'CAROL', 'carol'; keep one account of each group and delete the others with the "
            "previous cartable version (cartable admin user delete NAME), then start again")
        assert current_revision(db) == "0004"
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 5
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE users SET name = 'alice2' WHERE name = 'Alice'"))
            conn.execute(text("DELETE FROM users WHERE name = 'CAROL'"))
        upgrade(db)
        with db.engine.connect() as conn:
            keys = conn.execute(text("SELECT name, name_key FROM users ORDER BY name")).all()
        assert [tuple(k) for k in keys] == [("alice", "alice"), ("alice2", "alice2"), ("bob", "bob"),
                                            ("carol", "carol")]
    finally:
        db.dispose()


def test_downgrade_of_the_authentication_revision(empty_db: MetaDB) -> None:
    from alembic import command

    db = empty_db
    try:
        upgrade(db)
        command.downgrade(alembic_config(db), "0004")
        command.upgrade(alembic_config(db), "head")
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()


def test_downgrade_of_the_groups_and_audit_revision(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import inspect

    db = MetaDB(sqlite_url(tmp_path / "m.db"))
    try:
        upgrade(db)
        command.downgrade(alembic_config(db), "0006")
        with db.engine.connect() as conn:
            assert not {"groups", "memberships", "audit_events"} & set(inspect(conn).get_table_names())
        command.upgrade(alembic_config(db), "head")
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()
