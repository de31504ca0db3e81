# SPDX-License-Identifier: EUPL-1.2
"""Engine-neutral errors of the metadata repository (SQLAlchemy's stop here)."""

from __future__ import annotations

__all__ = ["MetaError", "RowConflict"]


class MetaError(Exception):
    """Base of metadata repository errors."""


class RowConflict(MetaError):
    """A uniqueness rule was violated (e.g. two live nodes with one name in one folder)."""
