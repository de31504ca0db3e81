# SPDX-License-Identifier: EUPL-1.2
"""What the PostgreSQL dialect adds (issue 11): the URL forms an operator may write, transient
conflicts turned into a bounded retry then a 503, and names listed in the same byte order as on
SQLite whatever the database's collation.

The tests that need PostgreSQL start it themselves (tests/engines.py) and so run once, in the
sqlite-local configuration (``local_only``: the pg-rgw run covers everything else on PostgreSQL).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from cartable.core.errors import StorageUnavailable
from cartable.core.units import unit_of_work
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.accounts import insert_space
from cartable.store.meta.engine import ATTEMPTS, MetaDB, normalize_url
from cartable.store.meta.errors import BadDatabaseURL, TransientConflict
from cartable.store.meta.migrate import upgrade
from cartable.store.meta.schema import nodes, spaces
from tests.engines import engine

PG = "postgresql+psycopg://u:pw@db.example:5432/cartable"


@pytest.mark.parametrize("url", [
    "postgresql://u:pw@db.example:5432/cartable",
    "postgres://u:pw@db.example:5432/cartable",  # Heroku's and many tools' spelling
    "postgresql+psycopg://u:pw@db.example:5432/cartable",
])
def test_every_postgresql_spelling_means_psycopg_3(url: str) -> None:
    assert normalize_url(url) == PG


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://u:secret@db.example/", "database_url 'postgresql://u:***@db.example/' names no database; use "
                                           "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
    ("postgresql+asyncpg://u@h/db", "database_url 'postgresql+asyncpg://u@h/db' is not a database URL cartable "
                                    "understands; use sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
    ("db.example:5432", "database_url 'db.example:5432' is not a database URL cartable understands; use "
                        "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
    # An empty $PGPORT in "host:$PGPORT": found by an operator's run, was "unexpected error: ValueError".
    ("postgresql://u:secret@:/db", "database_url 'postgresql://u:***@:/db' has a port that is not a number; use "
                                   "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
])
def test_an_unusable_url_is_one_line_without_its_password(url: str, message: str) -> None:
    with pytest.raises(BadDatabaseURL) as refused:
        normalize_url(url)
    assert str(refused.value) == message


def test_a_transient_conflict_is_retried_then_a_503() -> None:
    runs: list[int] = []

    @unit_of_work
    def flaky(fail: int) -> str:
        runs.append(1)
        if len(runs) <= fail:
            raise TransientConflict("deadlock detected")
        return "done"

    assert flaky(ATTEMPTS - 1) == "done" and len(runs) == ATTEMPTS
    runs.clear()
    with pytest.raises(StorageUnavailable, match="nothing was changed, retry"):
        flaky(ATTEMPTS)
    assert len(runs) == ATTEMPTS  # bounded


def _pg_url(**create: str) -> Iterator[str]:
    import psycopg

    pg = engine("postgres")
    name = "t_" + uuid.uuid4().hex[:16]
    admin = f"host={pg.env['PGHOST']} port={pg.env['PGPORT']} user=postgres dbname=postgres"
    options = " ".join(f"{k} {v}" for k, v in create.items())
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}')
    yield f"postgres://postgres@{pg.env['PGHOST']}:{pg.env['PGPORT']}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def french_db() -> Iterator[MetaDB]:
    """A migrated database whose collation is French (ICU): "e" < "é" < "f", case folded."""
    for url in _pg_url(TEMPLATE="template0", LOCALE_PROVIDER="icu", ICU_LOCALE="'fr-FR'", LOCALE="'C.UTF-8'"):
        db = MetaDB(url)
        upgrade(db)
        yield db
        db.dispose()


@pytest.fixture
def pg_db() -> Iterator[MetaDB]:
    for url in _pg_url():
        db = MetaDB(url)
        upgrade(db)
        yield db
        db.dispose()


@pytest.mark.pg
@pytest.mark.local_only
def test_names_list_in_byte_order_whatever_the_collation(french_db: MetaDB) -> None:
    names = ["été", "Zoo", "eau", "a", "B", "f", "É", "_x", "10", "9", "ß"]
    with french_db.write() as tx:
        space = insert_space(tx, kind="home", owner_id=None, root_id=None, quota=None)
        root = nodes_repo.insert(tx, space_id=space, parent_id=None, name="", kind="d", size=0, mtime=0.0,
                                 ctime=0.0, etag="e")
        for n in names:
            nodes_repo.insert(tx, space_id=space, parent_id=root, name=n, kind="f", size=0, mtime=0.0, ctime=0.0,
                              etag="e")
    with french_db.read() as tx:
        listed = [c.name for c in nodes_repo.children(tx, root)]
        collated = [r[0] for r in tx.execute(nodes.select().with_only_columns(nodes.c.name)
                                             .where(nodes.c.parent_id == root).order_by(nodes.c.name))]
    assert listed == sorted(names)  # Python's order: code points, as SQLite's BINARY
    assert collated != listed  # the database's own order differs: the test means something


@pytest.mark.pg
@pytest.mark.local_only
def test_a_deadlock_is_a_transient_conflict(pg_db: MetaDB) -> None:
    with pg_db.write() as tx:
        ids = [insert_space(tx, kind="home", owner_id=None, root_id=None, quota=None) for _ in range(2)]
    both = threading.Barrier(2)
    outcomes: list[str] = []

    def lock(first: int, second: int) -> None:
        try:
            with pg_db.write() as tx:
                tx.execute(spaces.select().where(spaces.c.id == first).with_for_update())
                both.wait()
                tx.execute(spaces.select().where(spaces.c.id == second).with_for_update())
            outcomes.append("committed")
        except TransientConflict:
            outcomes.append("transient")

    threads = [threading.Thread(target=lock, args=order) for order in ((ids[0], ids[1]), (ids[1], ids[0]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["committed", "transient"]
