# SPDX-License-Identifier: EUPL-1.2
"""Connections and transactions for the metadata repository.

``MetaDB.write()`` yields a connection inside one transaction that commits on exit; a 2xx may be
sent only after it returns. On SQLite it is ``BEGIN IMMEDIATE`` (the writer lock is taken at once,
so two writers never deadlock upgrading a read lock) behind an in-process lock (threads queue
here instead of spinning on SQLITE_BUSY), in WAL mode with ``synchronous=FULL``: a committed
transaction survives a power loss. Other processes (``cartable admin`` while the server runs)
wait on ``busy_timeout``. ``MetaDB.read()`` yields a consistent snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

__all__ = ["MetaDB", "Tx", "sqlite_url"]

Tx = Connection


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class MetaDB:
    """One metadata database. Thread-safe; share one per process."""

    def __init__(self, url: str, *, durable: bool = True, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url, echo=echo, poolclass=QueuePool, pool_size=16, max_overflow=16,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _install_sqlite_hooks(self.engine, durable=durable)
        else:
            self.engine = create_engine(url, echo=echo, pool_size=16, max_overflow=16,
                                        pool_pre_ping=True)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """One read-write transaction; commits when the block exits without an exception."""
        if self._write_lock is not None:
            with self._write_lock:
                with self.engine.connect().execution_options(cartable_write=True) as conn:
                    with conn.begin():
                        yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only snapshot (rolled back on exit)."""
        with self.engine.connect() as conn:
            with conn.begin() as trans:
                yield conn
                trans.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def _install_sqlite_hooks(engine: Engine, *, durable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own is broken).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("cartable_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
