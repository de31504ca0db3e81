# SPDX-License-Identifier: EUPL-1.2
"""The hot path's reads on the raw driver: the desktop client's poll, a GET's lookup and the
credential check of every request run the repository's own precompiled SQLAlchemy Core
statements here, without a SQLAlchemy Connection around them.

Measured on this machine (SQLite, one user lookup in a snapshot): 225 µs through
``MetaDB.read()`` against 10 µs here. Each statement is compiled once per dialect and cached
with its bind and result conversions (SQLAlchemy's own processors: booleans on SQLite, for
instance), so a repository function gives the same records whichever transaction it is handed
(tests/store/test_raw.py compares them on both databases).

Only module-level statements with ``bindparam`` placeholders belong here: the cache is keyed by
the statement object, so a statement built per call would be compiled per call.

Connections: on SQLite each thread keeps one connection of its own, used only to read (opened on first
use, same file, WAL: readers never wait for the writer); a snapshot is BEGIN ... ROLLBACK, as
``MetaDB.read()`` gives. On PostgreSQL a snapshot takes a connection from the engine's pool (the
``database_pool_size`` cap holds) in REPEATABLE READ, read only, and gives it back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement

__all__ = ["RawReads", "RawTx"]

_CACHE_MAX = 512  # distinct statements; a bigger set means a statement is built per call (a bug)


class _Row(tuple):  # type: ignore[type-arg]
    """A result row as repository code reads it: by position, by attribute, or ``_mapping``."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._keys, self))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._keys.index(name)]
        except ValueError:
            raise AttributeError(name) from None


class _Compiled:
    """One statement compiled for one dialect, with its conversions."""

    __slots__ = ("compiled", "sql", "order", "binds", "results", "row_type")

    def __init__(self, stmt: ClauseElement, engine: Engine) -> None:
        dialect = engine.dialect
        self.compiled = c = stmt.compile(dialect=dialect)
        self.sql: str = c.string
        self.order: tuple[str, ...] | None = tuple(c.positiontup) if c.positional and c.positiontup else None
        self.binds: Mapping[str, Callable[[Any], Any]] = dict(c._bind_processors)  # noqa: SLF001
        columns = c._result_columns  # noqa: SLF001 (name, ..., type) of each result column
        self.results: tuple[Callable[[Any], Any] | None, ...] | None = None  # set at the first execution
        self.row_type = type("Row", (_Row,), {"__slots__": (), "_keys": tuple(col[0] for col in columns)})

    def learn_results(self, description: Any, engine: Engine) -> None:
        """The result conversions, as SQLAlchemy chooses them from the driver's column types
        (PostgreSQL's need the type code the cursor reports)."""
        columns = self.compiled._result_columns  # noqa: SLF001
        codes = [d[1] for d in description] if description else [None] * len(columns)
        self.results = tuple(col[3]._cached_result_processor(engine.dialect, code)
                             for col, code in zip(columns, codes))

    def parameters(self, params: Mapping[str, Any] | None) -> Any:
        values = self.compiled.construct_params(params or {})
        for name, proc in self.binds.items():
            if name in values and values[name] is not None:
                values[name] = proc(values[name])
        if self.order is not None:
            return tuple(values[name] for name in self.order)
        return values

    def row(self, raw: tuple[Any, ...]) -> _Row:
        assert self.results is not None
        return self.row_type(v if p is None or v is None else p(v) for p, v in zip(self.results, raw))


class RawResult:
    __slots__ = ("_rows", "_compiled")

    def __init__(self, rows: list[tuple[Any, ...]], compiled: _Compiled) -> None:
        self._rows, self._compiled = rows, compiled

    def first(self) -> _Row | None:
        return self._compiled.row(self._rows[0]) if self._rows else None

    def all(self) -> list[_Row]:
        return [self._compiled.row(r) for r in self._rows]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def __iter__(self) -> Iterator[_Row]:
        return iter(self.all())


class RawTx:
    """A read-only snapshot: ``execute(stmt, params)`` as on a SQLAlchemy Connection, for the
    statements repository read functions run."""

    __slots__ = ("_cursor", "_reads")

    def __init__(self, cursor: Any, reads: RawReads) -> None:
        self._cursor, self._reads = cursor, reads

    def execute(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> RawResult:
        compiled = self._reads.compiled(stmt)
        self._cursor.execute(compiled.sql, compiled.parameters(params))
        if compiled.results is None:
            compiled.learn_results(self._cursor.description, self._reads.engine)
        return RawResult(self._cursor.fetchall(), compiled)


class RawReads:
    """Read snapshots on the raw driver of one MetaDB's engine (see the module docstring)."""

    def __init__(self, engine: Engine, sqlite_path: str | None) -> None:
        """``sqlite_path``: the database file (SQLite), None on PostgreSQL and for an in-memory
        SQLite database (whose connections come from the engine's pool)."""
        self.engine = engine
        self.sqlite_path = sqlite_path
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._cache: dict[ClauseElement, _Compiled] = {}
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def compiled(self, stmt: ClauseElement) -> _Compiled:
        found = self._cache.get(stmt)
        if found is None:
            found = _Compiled(stmt, self.engine)
            with self._lock:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[stmt] = found
        return found

    @contextmanager
    def snapshot(self) -> Iterator[RawTx]:
        if self.is_sqlite:
            fairy = None if self.sqlite_path is not None else self.engine.raw_connection()
            conn = self._sqlite() if fairy is None else fairy.driver_connection
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                yield RawTx(cur, self)
            finally:
                cur.execute("ROLLBACK")
                cur.close()
                if fairy is not None:
                    fairy.close()
            return
        fairy = self.engine.raw_connection()
        try:
            dbapi = fairy.driver_connection
            from psycopg import IsolationLevel

            dbapi.isolation_level, dbapi.read_only = IsolationLevel.REPEATABLE_READ, True
            try:
                with dbapi.cursor() as cur:
                    yield RawTx(cur, self)
            finally:
                dbapi.rollback()
                dbapi.isolation_level, dbapi.read_only = None, None
        finally:
            fairy.close()

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.sqlite_path is not None
            conn = sqlite3.connect(self.sqlite_path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
