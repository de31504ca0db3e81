# SPDX-License-Identifier: EUPL-1.2
"""What differs between SQLite and PostgreSQL, in one place: ``INSERT ... ON CONFLICT`` and the
order of names.

Names sort in byte order of their UTF-8 (which is code point order) on every backend:
SQLite's default BINARY collation already is that; PostgreSQL sorts by the database's collation
(``fr_FR.UTF-8`` puts "é" next to "e" and ignores case and punctuation at first), so its ORDER BY
says ``COLLATE "C"``. A listing, a search result page and anything else sorted by name is then
the same on both, and the same as Python's ``sorted`` of the names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from cartable.store.meta.engine import Tx

__all__ = ["insert", "byte_order"]


def insert(tx: Tx, table: Table) -> Any:
    """The dialect's INSERT for ``table``, which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (SQLite and PostgreSQL spell them alike)."""
    return (postgresql if tx.dialect.name == "postgresql" else sqlite).insert(table)


class byte_order(ColumnElement[Any]):  # noqa: N801 (reads as a function in queries)
    """``expr`` ordered by the bytes of its UTF-8 (see the module doc)."""

    inherit_cache = True
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement)]

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = expr.type


@compiles(byte_order)
def _binary(element: byte_order, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.expr, **kw))


@compiles(byte_order, "postgresql")
def _collate_c(element: byte_order, compiler: Any, **kw: Any) -> str:
    return f'{compiler.process(element.expr, **kw)} COLLATE "C"'
