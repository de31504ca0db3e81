# SPDX-License-Identifier: EUPL-1.2
"""Which metadata database and chunk store the tests run on: ``CARTABLE_TEST_BACKEND``.

- ``sqlite-local`` (the default): SQLite in the test's data folder, chunks in a local folder.
- ``pg-rgw``: a FRESH PostgreSQL database per test (copied from a migrated template: ``CREATE
  DATABASE ... TEMPLATE``, a few milliseconds where migrating costs a second) and a fresh Ceph RGW
  bucket per test, both on engines started once per session (tests/engines.py).

Every fixture that opens a core or starts a server asks here (``settings_for``, ``open_test_db``,
``open_test_blobs``), keyed by the test's data folder, so that a test's in-process core, its
second core ("another node") and its ``cartable serve`` processes share one database and bucket.

Tests that are about the local folder or the SQLite file themselves (the folder's durability and
file system helpers, the embedded instance's startup), or that pick their engines themselves (the
chunk-store contract runs the folder, RGW and Swift in one go), carry the ``local_only`` marker:
they run in the sqlite-local configuration, and on pg-rgw they are deselected and listed at the end
of the run (tests/conftest.py), never silently left out. Tests of the local folder's fault points
that also exercise the database use ``make_core(..., local_blobs=True)``: the backend's database
with the local folder.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from cartable.store.blobs.base import ChunkStore
from cartable.store.meta.engine import MetaDB, sqlite_url

__all__ = ["BACKEND", "BACKENDS", "on_pg", "settings_for", "open_test_db", "open_test_blobs", "database_url_for",
           "pg_admin_url", "new_pg_database", "forget", "environ_for"]

BACKENDS = ("sqlite-local", "pg-rgw")
BACKEND = os.environ.get("CARTABLE_TEST_BACKEND", "sqlite-local")
if BACKEND not in BACKENDS:
    raise RuntimeError(f"CARTABLE_TEST_BACKEND={BACKEND!r}: use one of {', '.join(BACKENDS)}")

_TEMPLATE = "cartable_template"
_lock = threading.RLock()
_template_ready = False
_by_data: dict[Path, dict[str, str]] = {}
_made: list[str] = []  # databases of the running test, dropped by ``forget``


_opened: list[MetaDB] = []  # pg-rgw: every MetaDB of the running test (held: see _track_metadbs)


def _track_metadbs() -> None:
    """Remember (and keep) every MetaDB this process opens, so that ``forget`` closes their
    connections: a test that drops its core without ``dispose`` would else leave psycopg
    connections to the garbage collector, which warns."""
    init = MetaDB.__init__

    def tracked(self: MetaDB, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        with _lock:
            _opened.append(self)

    MetaDB.__init__ = tracked  # type: ignore[method-assign]


def on_pg() -> bool:
    return BACKEND == "pg-rgw"


def pg_admin_url() -> str:
    """libpq connection string of the test PostgreSQL's maintenance database (superuser)."""
    from tests.engines import engine

    env = engine("postgres").env
    return f"host={env['PGHOST']} port={env['PGPORT']} user=postgres dbname=postgres"


def _ensure_template() -> None:
    """The migrated template database, made once per session (under an advisory lock: several
    pytest processes may share the engine)."""
    global _template_ready
    if _template_ready:
        return
    import psycopg

    from cartable.store.meta.migrate import upgrade
    from tests.engines import engine

    env = engine("postgres").env
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_TEMPLATE,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    db = MetaDB(f"postgresql://postgres@{env['PGHOST']}:{env['PGPORT']}/{_TEMPLATE}", pool_size=1)
    try:
        upgrade(db)
    finally:
        db.dispose()
    _template_ready = True


def new_pg_database() -> str:
    """A fresh database migrated to the newest schema (a copy of the template), made ahead of
    time by a background thread (CREATE DATABASE costs a checkpoint: about a second on a busy
    machine, overlapped with the previous test)."""
    from tests.engines import engine

    env = engine("postgres").env
    with _lock:
        _ensure_template()
        worker = _worker()
    name = worker.take()
    with _lock:
        _made.append(name)
    return f"postgresql://postgres@{env['PGHOST']}:{env['PGPORT']}/{name}"


class _Databases(threading.Thread):
    """Keeps ``AHEAD`` copies of the template ready and drops the used ones, off the tests' path."""

    AHEAD = 2

    def __init__(self) -> None:
        super().__init__(name="test-databases", daemon=True)
        self._cond = threading.Condition()
        self._ready: list[str] = []
        self._doomed: list[str] = []
        self._error: BaseException | None = None

    def take(self) -> str:
        with self._cond:
            while not self._ready and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise RuntimeError(f"cannot make test databases: {self._error}")
            name = self._ready.pop(0)
            self._cond.notify_all()
            return name

    def drop(self, names: list[str]) -> None:
        with self._cond:
            self._doomed.extend(names)
            self._cond.notify_all()

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
                while True:
                    with self._cond:
                        while len(self._ready) >= self.AHEAD and not self._doomed:
                            self._cond.wait()
                        make = len(self._ready) < self.AHEAD
                        doomed = [] if make else [self._doomed.pop(0)]
                    if make:
                        name = "t_" + uuid.uuid4().hex[:16]
                        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
                        with self._cond:
                            self._ready.append(name)
                            self._cond.notify_all()
                    for name in doomed:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except BaseException as exc:  # noqa: BLE001 (handed to the tests by take())
            with self._cond:
                self._error = exc
                self._cond.notify_all()


_databases: _Databases | None = None


def _worker() -> _Databases:
    global _databases
    if _databases is None:
        _databases = _Databases()
        _databases.start()
    return _databases


def _s3_settings() -> dict[str, str]:
    from tests.engines import engine, new_bucket

    eng = engine("ceph")
    return {"blob_store": "s3", "s3_endpoint": eng.env["S3_ENDPOINT_URL"], "s3_bucket": new_bucket(eng),
            "s3_access_key": eng.env["AWS_ACCESS_KEY_ID"], "s3_secret_key": eng.env["AWS_SECRET_ACCESS_KEY"]}


def settings_for(data: Path) -> dict[str, str]:
    """The settings (names of config.SETTINGS) that put the instance at ``data`` on the test
    backend: {} on sqlite-local; on pg-rgw its own database and bucket, the same for every call
    with the same folder."""
    if not on_pg():
        return {}
    key = Path(data).resolve()
    with _lock:
        found = _by_data.get(key)
    if found is None:
        found = {"database_url": new_pg_database(), **_s3_settings()}
        with _lock:
            found = _by_data.setdefault(key, found)
    return dict(found)


def forget() -> None:
    """After a test: close its cores' connections, drop its databases (in the background) and
    forget its folders; its buckets stay until the engine stops (they are small)."""
    if not on_pg():
        return
    with _lock:
        dbs, _opened[:] = list(_opened), []
    for db in dbs:
        db.dispose()
    with _lock:
        names, _made[:] = list(_made), []
        _by_data.clear()
    if names:
        _worker().drop(names)  # WITH (FORCE): a connection still open is closed


def environ_for(data: Path) -> dict[str, str]:
    """``settings_for`` as CARTABLE_* environment variables (for a `cartable` process)."""
    return {f"CARTABLE_{k.upper()}": v for k, v in settings_for(data).items()}


def database_url_for(tmp: Path) -> str:
    """The database URL of a core-level test whose files live in ``tmp`` (SQLite: tmp/meta.db)."""
    return settings_for(tmp).get("database_url") or sqlite_url(Path(tmp) / "meta.db")


def open_test_db(tmp: Path) -> MetaDB:
    """The migrated metadata database of a core-level test whose files live in ``tmp``."""
    from cartable.store.meta.migrate import upgrade

    db = MetaDB(database_url_for(tmp))
    upgrade(db)
    return db


def open_test_blobs(tmp: Path) -> ChunkStore:
    """The chunk store of a core-level test whose files live in ``tmp``."""
    s = settings_for(tmp)
    if s.get("blob_store") == "s3":
        from cartable.store.blobs.s3 import S3ChunkStore, S3Config

        return S3ChunkStore(S3Config(s["s3_endpoint"], s["s3_bucket"], s["s3_access_key"], s["s3_secret_key"]))
    from cartable.store.blobs.local import LocalChunkStore

    return LocalChunkStore(Path(tmp) / "chunks")


if BACKEND == "pg-rgw":
    _track_metadbs()
