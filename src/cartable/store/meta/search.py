# SPDX-License-Identifier: EUPL-1.2
"""Searching the nodes of one space with conditions, an order and a page, in SQL.

The query always starts from ``nodes.space_id`` (an index); the recent-files query is a range of
``ix_nodes_space_id_mtime`` read backwards, a media-type query (``image/%``) a range of
``ix_nodes_space_id_content_type`` on SQLite. A sub-folder scope adds the folder's descendants
(a recursive query over that folder only); the root scope adds nothing: the whole space is never
walked node by node. No user logic here: the caller has resolved the space, the user and the
scope folder, and checked the caller may see them. The root scope leaves out the space's trash
(a recursive query over the trashed items only, when there are any).

Conditions are a small tree of ``Compare``, ``And``, ``Or`` and ``Not``. Fields:

======== ===================================================== =========================
field    meaning                                               values
======== ===================================================== =========================
name     the node's name; ``like`` ignores case                 str
ctype    media type; folders are ``httpd/unix-directory``,      str
         files without one ``application/octet-stream``
size     bytes (a folder: everything below it)                  int
mtime    last modified, seconds since 1970                      float
ctime    created, seconds since 1970                            float
id       the file id                                            int
kind     ``d`` (folder) or ``f`` (file); ``eq`` only            str
favorite one of the searching user's favorites; ``eq`` only     bool
======== ===================================================== =========================

``like`` patterns use ``%`` (any run of characters) as their only wildcard; ``_`` and ``\\``
match themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import NodeRecord
from cartable.store.meta.schema import favorites, nodes
from cartable.store.meta.trash import trashed_below

__all__ = ["Compare", "And", "Or", "Not", "Cond", "Order", "FIELDS", "OPS", "find", "paths_of",
           "DIRECTORY_TYPE", "DEFAULT_TYPE"]

DIRECTORY_TYPE = "httpd/unix-directory"
DEFAULT_TYPE = "application/octet-stream"
FIELDS = ("name", "ctype", "size", "mtime", "ctime", "id", "kind", "favorite")
OPS = ("eq", "gt", "gte", "lt", "lte", "like")


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Cond


Cond = Compare | And | Or | Not


@dataclass(frozen=True, slots=True)
class Order:
    field: str  # any of FIELDS but kind
    descending: bool = False


_COLUMNS = {"name": nodes.c.name, "ctype": nodes.c.content_type, "size": nodes.c.size,
            "mtime": nodes.c.mtime, "ctime": nodes.c.ctime, "id": nodes.c.id, "kind": nodes.c.kind}
_SQL_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v, "gt": lambda c, v: c > v, "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v,
}
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
}


def like_pattern(pattern: str) -> str:
    """A LIKE pattern (escape character ``\\``) in which only ``%`` is a wildcard."""
    return pattern.replace("\\", "\\\\").replace("_", "\\_")


def like_regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    parts = (re.escape(p) for p in pattern.split("%"))
    return re.compile(".*".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _prefix_range(column: Any, pattern: str) -> ColumnElement[bool] | None:
    """``column`` in [prefix, prefix+1) for a pattern with a literal prefix: lets SQLite read an
    index range (its LIKE cannot use a BINARY index). Code-point order is SQLite's default."""
    prefix = pattern.split("%", 1)[0]
    if not prefix:
        return None
    successor = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < successor)


class _Builder:
    def __init__(self, tx: Tx, user_id: int) -> None:
        self.user_id = user_id
        self.sqlite = tx.dialect.name == "sqlite"
        # SQLite's lower() folds ASCII only; cartable_lower (store/meta/engine.py) folds Unicode.
        self.fold = func.cartable_lower if self.sqlite else func.lower

    def cond(self, c: Cond) -> ColumnElement[bool]:
        if isinstance(c, And):
            return and_(true(), *(self.cond(i) for i in c.items))
        if isinstance(c, Or):
            return or_(false(), *(self.cond(i) for i in c.items))
        if isinstance(c, Not):
            return not_(self.cond(c.item))
        return self.compare(c)

    def compare(self, c: Compare) -> ColumnElement[bool]:
        if c.field not in FIELDS or c.op not in OPS:
            raise ValueError(f"unknown search field or operator: {c.field} {c.op}")
        if c.field == "favorite":
            fav = exists().where(favorites.c.user_id == self.user_id, favorites.c.node_id == nodes.c.id)
            return fav if bool(c.value) else not_(fav)
        if c.field == "kind":
            return nodes.c.kind == c.value
        column = _COLUMNS[c.field]
        if c.field == "ctype":
            return self.ctype(c)
        if c.op == "like":
            pattern = str(c.value)
            if c.field == "name":
                return self.fold(column).like(like_pattern(pattern.lower()), escape="\\")
            return self.like(column, pattern)
        return _SQL_OPS[c.op](column, c.value)

    def like(self, column: Any, pattern: str) -> ColumnElement[bool]:
        cond = column.like(like_pattern(pattern), escape="\\")
        rng = _prefix_range(column, pattern) if self.sqlite else None
        return cond if rng is None else and_(rng, cond)

    def ctype(self, c: Compare) -> ColumnElement[bool]:
        column = nodes.c.content_type
        if c.op == "like":
            stored = self.like(column, str(c.value))
            test = like_regex(str(c.value)).fullmatch
            implied = {kind: bool(test(t)) for kind, t in (("d", DIRECTORY_TYPE), ("f", DEFAULT_TYPE))}
        else:
            stored = _SQL_OPS[c.op](column, c.value)
            implied = {kind: _PY_OPS[c.op](t, c.value) for kind, t in (("d", DIRECTORY_TYPE), ("f", DEFAULT_TYPE))}
        # Nodes without a stored type have one implied by their kind (a constant here).
        kinds = [k for k, hit in implied.items() if hit]
        if not kinds:
            return stored
        return or_(stored, and_(column.is_(None), nodes.c.kind.in_(kinds)))


def _order_by(b: _Builder, order: Sequence[Order]) -> list[Any]:
    out: list[Any] = []
    for o in order:
        if o.field == "favorite":
            expr: Any = exists().where(favorites.c.user_id == b.user_id, favorites.c.node_id == nodes.c.id)
        elif o.field == "name":
            expr = b.fold(nodes.c.name)
        else:
            expr = _COLUMNS[o.field]
        out.append(expr.desc() if o.descending else expr.asc())
    out.append(nodes.c.id.desc() if order and order[0].descending else nodes.c.id.asc())
    return out


def find(tx: Tx, *, space_id: int, user_id: int, scope_id: int, scope_is_root: bool, children_only: bool,
         where: Cond | None, order: Sequence[Order], limit: int, offset: int = 0,
         exclude_trash: bool = False) -> list[NodeRecord]:
    """Nodes of space_id below the folder scope_id (not the folder itself) that match where,
    ordered, one page. children_only: direct children only (Depth 1). exclude_trash: the space
    has trash (store/meta/trash.has_trash), which a root scope must leave out."""
    b = _Builder(tx, user_id)
    stmt = select(nodes).where(nodes.c.space_id == space_id, nodes.c.id != scope_id)
    if children_only:
        stmt = stmt.where(nodes.c.parent_id == scope_id)
    elif not scope_is_root:
        down = select(nodes.c.id).where(nodes.c.parent_id == scope_id).cte("below", recursive=True)
        down = down.union_all(select(nodes.c.id).join(down, nodes.c.parent_id == down.c.id))
        stmt = stmt.where(nodes.c.id.in_(select(down.c.id)))
    elif exclude_trash:
        # The space holds its trash too (detached subtrees): leave it out, walking the trash only
        # (an empty trash adds nothing to the query).
        stmt = stmt.where(nodes.c.id.not_in(trashed_below(space_id)))
    if where is not None:
        stmt = stmt.where(b.cond(where))
    stmt = stmt.order_by(*_order_by(b, order)).limit(limit).offset(offset)
    return [NodeRecord.from_row(r) for r in tx.execute(stmt)]


def paths_of(tx: Tx, node_ids: Sequence[int], root_id: int) -> dict[int, tuple[str, ...]]:
    """The names from below root_id down to each node, in one recursive query (nodes that are
    not below root_id are left out)."""
    if not node_ids:
        return {}
    up = (select(nodes.c.id.label("start"), nodes.c.parent_id, nodes.c.name, literal(0).label("level"))
          .where(nodes.c.id.in_(list(node_ids))).cte("up", recursive=True))
    up = up.union_all(
        select(up.c.start, nodes.c.parent_id, nodes.c.name, (up.c.level + 1).label("level"))
        .join(nodes, nodes.c.id == up.c.parent_id).where(up.c.parent_id != root_id))
    chains: dict[int, list[tuple[int, str, int | None]]] = {}
    for start, parent, name, level in tx.execute(select(up.c.start, up.c.parent_id, up.c.name, up.c.level)):
        chains.setdefault(start, []).append((level, name, parent))
    out: dict[int, tuple[str, ...]] = {}
    for start, chain in chains.items():
        chain.sort()
        if chain[-1][2] == root_id:
            out[start] = tuple(name for _, name, _ in reversed(chain))
    return out
