# SPDX-License-Identifier: EUPL-1.2
"""What happens before the server answers: the listening socket, the data folder and its
permissions, and the database, each failure turned into ONE line that says what to fix.

- ``listen(host, port)`` binds the socket first, so that nothing is created (and no admin
  password printed) by a server that cannot listen.
- ``prepare_folders(settings)`` creates the data folder 0700 and the chunk folder 0700 (durably,
  through ``fsutil`` like every change to the data folder), checks that both are writable (by
  writing a file, which also catches read-only file systems), and makes the SQLite database file
  0600 before SQLite creates it (its -wal and -shm files take the same mode). A data folder,
  chunk folder or database file that other users of the machine can read is fixed (their
  permissions are removed) and a warning says so: cartable is their only reader.
- ``open_database(settings)`` opens and migrates the database (SQLite, or PostgreSQL from a
  ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` URL); an unknown kind of URL or a
  database that cannot be reached is one line, with the URL's password hidden.

Every failure raises StartupError with the message for the operator; the CLI prints it alone and
exits with status 2.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from cartable.common import fsutil
from cartable.config import Settings
from cartable.store.meta.engine import MetaDB, shown_url
from cartable.store.meta.errors import BadDatabaseURL, MigrationRefused
from cartable.store.meta.migrate import upgrade

__all__ = ["StartupError", "listen", "prepare_folders", "open_database"]

log = logging.getLogger("cartable")

FOLDER_MODE = 0o700
FILE_MODE = 0o600


class StartupError(Exception):
    """The server cannot start; str(exc) is one line saying what is wrong and what to do."""


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening; IPv6 when the host has a colon (as
    uvicorn decides), so "localhost" means 127.0.0.1."""
    where = f"{host}:{port}"
    not_here = (f"cannot start: cannot listen on {where}: {host!r} is not an address of this machine; choose "
                "one of its addresses (or 127.0.0.1, or 0.0.0.0 for all) with --host")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts need no wait
        sock.bind((host, port))
        sock.listen(2048)
    except (socket.gaierror, UnicodeError):
        sock.close()
        raise StartupError(not_here) from None
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"cannot start: cannot listen on {where}: the port is already in use; stop the "
                               "program that uses it, or choose another port with --port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(not_here) from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"cannot start: cannot listen on {where}: permission denied (ports below 1024 "
                               "need privileges); choose a port above 1023 with --port") from None
        raise StartupError(f"cannot start: cannot listen on {where}: {_reason(exc)}") from None
    return sock


def _folder(path: Path, what: str, fix: str) -> None:
    """Create ``path`` (mode 0700) if missing; check it is a writable folder."""
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError as exc:  # a parent folder cannot be searched
        raise StartupError(f"cannot start: cannot reach the {what} {path} ({_reason(exc)}); give the user "
                           f"running cartable access to the folders above it, or {fix}") from None
    if is_file:
        raise StartupError(f"cannot start: the {what} {path} is a file, not a folder; {fix}")
    try:
        fsutil.ensure_dir(path, mode=FOLDER_MODE)  # durable: the folder's entry is synced
    except OSError as exc:
        raise StartupError(f"cannot start: cannot create the {what} {path} ({_reason(exc)}); {fix}") from None
    try:
        fsutil.remove_file(fsutil.write_temp(path, b"", durable=False))
    except OSError as exc:
        raise StartupError(f"cannot start: the {what} {path} is not writable ({_reason(exc)}); give the user "
                           f"running cartable write access to it, or {fix}") from None
    _private(path)


def _private(path: Path) -> None:
    """Remove the permissions of other users from ``path`` if it has any (see module docstring)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o007:
        fixed = mode & ~0o007
        try:
            path.chmod(fixed)
        except OSError as exc:
            raise StartupError(f"cannot start: {path} can be read by other users of this machine (mode "
                               f"{mode:04o}) and cartable cannot change that ({_reason(exc)}); run "
                               f"chmod o-rwx {path}") from None
        log.warning("%s could be read by other users of this machine (mode %04o); cartable changed it to "
                    "%04o", path, mode, fixed)


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file named by the settings (None for another database)."""
    try:
        url = make_url(settings.db_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def prepare_folders(settings: Settings) -> None:
    """The data folder, the chunk folder and the database file, private to this user."""
    _folder(settings.data, "data folder", "choose another with --data (or CARTABLE_DATA)")
    _folder(settings.chunk_path, "chunk folder", "choose another with blob_path (CARTABLE_BLOB_PATH)")
    db_file = sqlite_path(settings)
    if db_file is None:
        return
    if db_file.exists() and not db_file.is_file():
        raise StartupError(f"cannot start: the database {db_file} is not a file; move it away or choose "
                           "another database_url")
    try:
        os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    except OSError as exc:
        raise StartupError(f"cannot start: cannot create the database {db_file} ({_reason(exc)}); give the user "
                           "running cartable write access to its folder") from None
    for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
        _private(path)


def _one_line(detail: str) -> str:
    """A driver's message on one line (psycopg's span several, with tabs)."""
    return " ".join(detail.split())


def open_database(settings: Settings) -> MetaDB:
    """The metadata database, migrated to the newest schema: ``database_url`` (see
    store.meta.engine.normalize_url; PostgreSQL through psycopg 3), with ``database_pool_size``
    connections at most."""
    url = settings.db_url
    try:
        db = MetaDB(url, pool_size=settings.database_pool_size)
    except BadDatabaseURL as exc:
        raise StartupError(f"cannot start: {exc}") from None
    except (ArgumentError, NoSuchModuleError):
        raise StartupError(f"cannot start: database_url {shown_url(url)!r} is not a database URL cartable "
                           "understands; use sqlite:////path/to/cartable.db or postgresql://user@host/dbname") from None
    except ImportError as exc:
        raise StartupError(f"cannot start: the database driver for {shown_url(url)} is not installed ({exc}); "
                           "install it or choose another database_url") from None
    try:
        upgrade(db)
    except MigrationRefused as exc:
        db.dispose()
        raise StartupError(f"cannot start: cannot upgrade the database: {exc}") from None
    except DatabaseError as exc:
        db.dispose()
        db_file = sqlite_path(settings)
        detail = _one_line(str(exc.orig) if exc.orig is not None else str(exc))
        if db_file is not None and not isinstance(exc, OperationalError):
            raise StartupError(f"cannot start: the database {db_file} is damaged or is not a cartable database "
                               f"({detail}); restore it from a backup (see docs/operations.md)") from None
        raise StartupError(f"cannot start: cannot open the database {shown_url(url)} ({detail}); check "
                           "database_url and that the database is reachable") from None
    return db
