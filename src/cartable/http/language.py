# SPDX-License-Identifier: EUPL-1.2
"""Choosing the language of a page from the browser's Accept-Language header."""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["pick"]


def pick(accept_language: str | None, supported: Collection[str], default: str) -> str:
    """The supported language the browser prefers most (by q-value, then order); else
    ``default``. Only the primary subtag counts ("fr-CA" is "fr")."""
    best, best_q = default, 0.0
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().split("-")[0].lower()
        q -= index * 1e-6  # earlier entries win ties
        if primary in supported and q > best_q:
            best, best_q = primary, q
    return best
