# SPDX-License-Identifier: EUPL-1.2
"""Engine-neutral errors of the metadata repository (SQLAlchemy's stop here)."""

from __future__ import annotations

__all__ = ["MetaError", "RowConflict", "MigrationRefused"]


class MetaError(Exception):
    """Base of metadata repository errors."""


class RowConflict(MetaError):
    """A uniqueness rule was violated (e.g. two live nodes with one name in one folder)."""


class MigrationRefused(MetaError):
    """A schema upgrade cannot proceed without losing or changing data on its own; str(exc) says
    what the operator must fix. Nothing was changed."""
