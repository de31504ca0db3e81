# SPDX-License-Identifier: EUPL-1.2
"""Map core errors to HTTP statuses by walking the exception's MRO; each adapter has one table."""

from __future__ import annotations

from collections.abc import Mapping

from cartable.core.errors import CartableError

__all__ = ["ErrorMap", "status_for"]

ErrorMap = Mapping[type[CartableError], int]


def status_for(table: ErrorMap, exc: CartableError) -> int:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]  # type: ignore[index]
    return 500
