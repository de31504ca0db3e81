# SPDX-License-Identifier: EUPL-1.2
"""Engine-neutral errors of the metadata repository (SQLAlchemy's and the drivers' stop here)."""

from __future__ import annotations

__all__ = ["MetaError", "RowConflict", "MigrationRefused", "TransientConflict", "BadDatabaseURL"]


class MetaError(Exception):
    """Base of metadata repository errors."""


class RowConflict(MetaError):
    """A uniqueness rule was violated (e.g. two live nodes with one name in one folder)."""


class MigrationRefused(MetaError):
    """A schema upgrade cannot proceed without losing or changing data on its own; str(exc) says
    what the operator must fix. Nothing was changed."""


class TransientConflict(MetaError):
    """The database gave up on a transaction because of other transactions running at the same
    time (PostgreSQL: a serialisation failure, a deadlock, a lock that was not available; SQLite:
    the database stayed locked past its busy timeout). Nothing of the transaction was committed:
    running the whole unit of work again, in a new transaction, may succeed
    (``MetaDB.transact``)."""


class BadDatabaseURL(MetaError):
    """``database_url`` is not one cartable can use; str(exc) says why, with the password hidden."""
