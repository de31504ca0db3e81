# SPDX-License-Identifier: EUPL-1.2
"""Request header values that end up in bounded database columns."""

from __future__ import annotations

from cartable.core.errors import InvalidInput

__all__ = ["bounded"]


def bounded(name: str, value: str | None, limit: int) -> str | None:
    """The value unchanged, or InvalidInput (400) naming the header when it is longer than limit
    characters (the column that stores it would refuse it on PostgreSQL)."""
    if value is not None and len(value) > limit:
        raise InvalidInput(f"the {name} header is {len(value)} characters long; at most {limit} are accepted")
    return value
