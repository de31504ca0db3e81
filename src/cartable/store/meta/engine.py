# SPDX-License-Identifier: EUPL-1.2
"""Connections and transactions for the metadata repository: SQLite (embedded) or PostgreSQL.

``MetaDB.write()`` yields a connection inside one transaction that commits on exit; a 2xx may be
sent only after it returns. On SQLite it is ``BEGIN IMMEDIATE`` (the writer lock is taken at once,
so two writers never deadlock upgrading a read lock) behind an in-process lock (threads queue
here instead of spinning on SQLITE_BUSY) and a lock between processes (``flock`` on the file
DATABASE-writer: the workers of `cartable serve` and `cartable admin` queue in the kernel, woken
the moment the holder commits, instead of sleeping in SQLite's busy handler, which measured
seconds of wait under load), in WAL mode with ``synchronous=FULL``: a committed transaction
survives a power loss. ``frozen()`` and a process of an older version wait on ``busy_timeout``.
On PostgreSQL it is READ COMMITTED: a writer takes its row locks in the documented order (the
space row, then nodes, then chunks sorted by digest: DESIGN.md) and every statement after a lock
sees what was committed before it.

``MetaDB.read()`` yields a consistent snapshot: a deferred BEGIN on SQLite (in WAL mode the
snapshot is taken at the first statement and held to the end), REPEATABLE READ on PostgreSQL, so a
read that combines rows (a node and its version) never sees a commit land between its statements.

Errors: a transaction the database gave up because of concurrent ones (PostgreSQL: serialisation
failure, deadlock, lock not available; SQLite: busy past its timeout) raises ``TransientConflict``
(store/meta/errors.py), never a driver exception; ``transact`` and ``retrying`` run a whole unit of
work again, a bounded number of times with jittered backoff.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import QueuePool

from cartable.store.meta.errors import BadDatabaseURL, TransientConflict
from cartable.store.meta.raw import RawReads, RawTx

__all__ = ["MetaDB", "Tx", "sqlite_url", "normalize_url", "shown_url", "DEFAULT_POOL_SIZE", "ATTEMPTS",
           "retrying"]

Tx = Connection
T = TypeVar("T")

# Connections one process keeps to the database (see docs/configuration.md, database_pool_size).
DEFAULT_POOL_SIZE = 10
# How many times a unit of work runs before a TransientConflict is given up on.
ATTEMPTS = 8
_BACKOFF_FIRST, _BACKOFF_MAX = 0.002, 0.2  # seconds; doubled per attempt, jittered

_POSTGRES_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg")
_SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
_USE = "use sqlite:////path/to/cartable.db or postgresql://user@host/dbname"
# SQLSTATEs after which PostgreSQL has rolled the transaction back and running it again may work:
# serialization_failure, deadlock_detected, lock_not_available.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def shown_url(url: str) -> str:
    """The URL as it may be shown or logged: its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not parsable: still never show what may be a password
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for a ``database_url``: ``sqlite:///PATH`` as it is; ``postgresql://``,
    ``postgres://`` and ``postgresql+psycopg://`` name PostgreSQL through psycopg 3 (the driver
    cartable ships). Anything else raises BadDatabaseURL, whose message hides the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadDatabaseURL(f"database_url {shown_url(url)!r} is not a database URL cartable understands; "
                             f"{_USE}") from None
    except ValueError:  # a port that is not a number (an empty variable in "host:$PORT", say)
        raise BadDatabaseURL(f"database_url {shown_url(url)!r} has a port that is not a number; {_USE}") from None
    if parsed.drivername in _SQLITE_DRIVERS:
        return url
    if parsed.drivername in _POSTGRES_DRIVERS:
        if not parsed.database:
            raise BadDatabaseURL(f"database_url {shown_url(url)!r} names no database; {_USE}")
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise BadDatabaseURL(f"database_url {shown_url(url)!r} is not a database URL cartable understands; {_USE}")


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error means "the database gave up because of concurrent transactions"."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return getattr(orig, "sqlite_errorname", None) == "SQLITE_BUSY"


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_transient(exc):
            raise TransientConflict(f"the database gave up a transaction because of concurrent ones: "
                                    f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}") from exc
        raise


def _pause(attempt: int) -> None:
    """Jittered exponential backoff before attempt + 1, so that the transactions that collided do
    not collide again in step."""
    time.sleep(random.uniform(0, min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** attempt)))


def retrying(unit: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Run ``unit()``; when it raises TransientConflict, run it again (after a jittered pause), up
    to ``attempts`` runs in all, then let the last TransientConflict through. ``unit`` must be safe
    to run again: it changes nothing outside its transactions before they commit."""
    attempt = 1
    while True:
        try:
            return unit()
        except TransientConflict:
            if attempt >= attempts:
                raise
            _pause(attempt)
            attempt += 1


class MetaDB:
    """One metadata database. Thread-safe; share one per process."""

    def __init__(self, url: str, *, durable: bool = True, echo: bool = False,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        """``url``: see normalize_url (BadDatabaseURL if unusable). ``pool_size`` (PostgreSQL):
        connections kept open, and the most this process ever opens (a thread that needs one more
        waits for one, up to a minute, then fails)."""
        self.url = url = normalize_url(url)
        self.is_sqlite = url.startswith("sqlite")
        # Whether the hot path's few indexed reads (fast_read) may run on the event loop: on
        # SQLite they read a local file in WAL mode (tens of µs, never waiting for a writer),
        # cheaper than a trip to a worker thread; PostgreSQL's network round trips go to a thread.
        self.inline_reads = self.is_sqlite
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._batch: _GroupCommit | None = None
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                # SQLite connections are files of this process: cheap, and not the setting's concern.
                url, echo=echo, poolclass=QueuePool, pool_size=16, max_overflow=16,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _install_sqlite_hooks(self.engine, durable=durable)
            assert self._write_lock is not None
            database = self.engine.url.database
            self.raw = RawReads(self.engine, database if database and database != ":memory:" else None)
            between = _ProcessLock(Path(database + "-writer")) if database and database != ":memory:" else None
            self._batch = _GroupCommit(self.engine, self._write_lock, between)
        else:
            # No pre-ping (a round trip per transaction): a connection found dead fails its
            # transaction (a 503 the client retries) and makes the pool replace every older one.
            self.engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=0, pool_timeout=60,
                                        connect_args={"application_name": "cartable"})
            self.raw = RawReads(self.engine, None)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """One read-write unit of work; durable (committed) when the block exits without an
        exception, and rolled back entirely when it raises (TransientConflict: see the module doc)."""
        with _translated():
            if self._batch is None:
                with self.engine.begin() as conn:
                    yield conn
                return
            with self._batch.unit() as conn:
                yield conn

    def transact(self, unit: Callable[[Tx], T], *, attempts: int = ATTEMPTS) -> T:
        """``unit(tx)`` in a write transaction, run again in a new one on TransientConflict (see
        ``retrying``); returns what the committed run returned."""
        def once() -> T:
            with self.write() as tx:
                return unit(tx)
        return retrying(once, attempts=attempts)

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Tx]:
        """A read-only snapshot (rolled back on exit): every statement of the block sees the same
        committed state. snapshot=False skips BEGIN/ROLLBACK on
        SQLite for a block that runs a single statement (each statement sees a consistent state)."""
        with _translated():
            if not snapshot and self.is_sqlite:
                with self.engine.connect().execution_options(cartable_nosnapshot=True) as conn:
                    yield conn
                return
            conn = self.engine.connect()
            if not self.is_sqlite:
                # READ COMMITTED would let a commit land between two statements of the block.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn:
                with conn.begin() as trans:
                    yield conn
                    trans.rollback()

    @contextmanager
    def fast_read(self) -> Iterator[RawTx]:
        """A read-only snapshot on the raw driver (store/meta/raw.py) for the hot path's
        precompiled statements: what ``read()`` gives, twenty times cheaper per statement."""
        with _translated():
            with self.raw.snapshot() as tx:
                yield tx

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Hold the database's write lock for the whole block, so that no other process (a server
        left running by mistake) can commit meanwhile; this process may still read. SQLite: a
        connection of its own in BEGIN IMMEDIATE (others wait on busy_timeout, then fail). Other
        engines: an exclusive lock on the table every write path updates (nodes)."""
        conn = self.engine.connect().execution_options(cartable_nosnapshot=True)
        try:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
                conn.exec_driver_sql("LOCK TABLE nodes IN EXCLUSIVE MODE")
            yield
        finally:
            try:
                conn.exec_driver_sql("ROLLBACK") if self.is_sqlite else conn.rollback()
            finally:
                conn.close()

    def dispose(self) -> None:
        self.raw.close()
        if self._batch is not None:
            self._batch.close()
        self.engine.dispose()


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


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
        # Unicode-aware lower() for queries only (store/meta/search.py): never used in a schema
        # object, so the file stays readable by any SQLite tool.
        dbapi_conn.create_function("cartable_lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("cartable_nosnapshot"):
            return  # autocommit reads: each statement is its own snapshot
        if options.get("cartable_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class _ProcessLock:
    """An exclusive ``flock`` on a file, taken and released by the thread holding the in-process
    writer lock. Opened lazily and again after a fork: a lock is held by an open file, which a
    forked child would otherwise share with its parent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class BatchFailed(Exception):
    """The group commit holding this unit of work failed; nothing of it is durable."""


class _GroupCommit:
    """Group commit for SQLite's single writer: concurrent units of work share one transaction and
    one fsync. Each unit runs in a SAVEPOINT on the shared connection, under the writer lock; a
    failing unit rolls back to its savepoint alone. After its unit, a writer that sees nobody
    waiting for the lock (or a full batch) commits for everyone; otherwise it hands over and
    waits until a later writer has committed. Nobody returns before their unit is committed."""

    MAX_UNITS = 64

    def __init__(self, engine: Engine, lock: threading.Lock, between: _ProcessLock | None = None) -> None:
        self.engine, self.lock, self.between = engine, lock, between
        self.cv = threading.Condition()
        self.waiting = 0  # writers queued on the lock
        self.conn: Connection | None = None
        self.trans: Any = None
        self.units = 0  # successful units in the open batch
        self.batch_no = 0  # number of the open batch; those below it are finished
        self.errors: dict[int, BaseException] = {}

    @contextmanager
    def unit(self) -> Iterator[Tx]:
        with self.cv:
            self.waiting += 1
        self.lock.acquire()
        with self.cv:
            self.waiting -= 1
        mine: int | None = None
        try:
            if self.conn is None:
                self._open_batch()
            assert self.conn is not None
            sp = self.conn.begin_nested()
            try:
                yield self.conn
            except BaseException:
                self._rollback_unit(sp)
                raise
            sp.commit()
            self.units += 1
            mine = self.batch_no
        finally:
            self._commit_or_hand_over()
        if mine is not None:
            self._wait_for(mine)

    def _open_batch(self) -> None:
        """Take the lock between processes, then BEGIN IMMEDIATE; neither held if either fails."""
        if self.between is not None:
            self.between.acquire()
        try:
            conn = self.engine.connect().execution_options(cartable_write=True)
            try:
                trans = conn.begin()
            except BaseException:
                conn.close()
                raise
        except BaseException:
            if self.between is not None:
                self.between.release()
            raise
        self.conn, self.trans = conn, trans

    def _rollback_unit(self, sp: Any) -> None:
        try:
            sp.rollback()
        except Exception as exc:  # the whole transaction is unusable: fail the batch
            self._finish_batch(exc)

    def _commit_or_hand_over(self) -> None:
        """Called with the lock held; releases it."""
        try:
            with self.cv:
                others = self.waiting
            if self.conn is not None and (others == 0 or self.units >= self.MAX_UNITS):
                if self.units == 0:
                    self.trans.rollback()
                    self._finish_batch(None)
                else:
                    try:
                        self.trans.commit()
                    except BaseException as exc:
                        # Every unit of the batch fails (none is committed), and its waiters are
                        # told so; an interruption (not an Exception) goes on up after that.
                        self._finish_batch(exc)
                        if not isinstance(exc, Exception):
                            raise
                    else:
                        self._finish_batch(None)
        finally:
            self.lock.release()

    def _finish_batch(self, error: BaseException | None) -> None:
        if self.conn is not None:
            if error is not None:
                try:
                    self.trans.rollback()
                except Exception:
                    pass
            self.conn.close()
            if self.between is not None:
                self.between.release()
        self.conn, self.trans = None, None
        with self.cv:
            if error is not None and self.units:
                self.errors[self.batch_no] = error
                for old in [b for b in self.errors if b < self.batch_no - 1000]:
                    del self.errors[old]
            self.batch_no += 1
            self.units = 0
            self.cv.notify_all()

    def _wait_for(self, batch: int) -> None:
        with self.cv:
            self.cv.wait_for(lambda: batch < self.batch_no)
            error = self.errors.get(batch)
        if error is not None:
            raise BatchFailed(f"the metadata commit failed: {error}") from error

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self._finish_batch(None)
            if self.between is not None:
                self.between.close()
