# SPDX-License-Identifier: EUPL-1.2
"""Searching a user's files (DAV SEARCH): conditions on name, media type, size, dates, file id,
kind and favorites; an order; a page. Runs as database queries on the user's own space (see
store/meta/search.py for the indexes), never as a walk of the tree, and only ever sees the
caller's own tree: the scope is resolved from the caller's root."""

from __future__ import annotations

from collections.abc import Sequence

from cartable.core import permissions, tree
from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.core.model import Node, Principal
from cartable.core.tree import display
from cartable.store.meta import search as search_repo
from cartable.store.meta import trash as trash_repo
from cartable.store.meta.search import DEFAULT_TYPE, DIRECTORY_TYPE, FIELDS, OPS, And, Compare, Cond, Not, Or, Order

__all__ = ["search", "Compare", "And", "Or", "Not", "Cond", "Order", "FIELDS", "OPS", "DIRECTORY_TYPE",
           "DEFAULT_TYPE", "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_CONDITIONS"]

DEFAULT_LIMIT = 100  # Nextcloud's, when the client names none
MAX_LIMIT = 1000
MAX_CONDITIONS = 100  # Nextcloud refuses more comparisons than this in one query


def _count(c: Cond) -> int:
    if isinstance(c, (And, Or)):
        return sum(_count(i) for i in c.items)
    if isinstance(c, Not):
        return _count(c.item)
    return 1


def search(core: Core, principal: Principal, scope: Sequence[str], *, where: Cond | None,
           order: Sequence[Order] = (), limit: int | None = None, offset: int = 0,
           children_only: bool = False) -> list[tuple[Node, tuple[str, ...]]]:
    """Nodes below the caller's folder at scope (not the folder itself) matching where, in
    order, one page of at most limit (default DEFAULT_LIMIT, at most MAX_LIMIT), each with its
    path from the caller's root. InvalidInput for a scope that is a file, a bad page or too
    many conditions; NotFound for a scope that does not exist."""
    permissions.require_account(principal, "searching")
    limit = DEFAULT_LIMIT if not limit else limit
    if limit < 0 or offset < 0:
        raise InvalidInput("search limit and offset must not be negative")
    if where is not None and _count(where) > MAX_CONDITIONS:
        raise InvalidInput(f"the search has more than {MAX_CONDITIONS} conditions")
    limit = min(limit, MAX_LIMIT)
    with core.db.read() as tx:
        folder = tree.resolve_from(tx, principal.root_id, scope)
        if not folder.is_dir:
            raise InvalidInput(f"the search scope {display(scope)} is a file, not a folder")
        try:
            found = search_repo.find(tx, space_id=folder.space_id, user_id=principal.user_id,
                                     scope_id=folder.id, scope_is_root=folder.id == principal.root_id,
                                     children_only=children_only, where=where, order=order,
                                     limit=limit, offset=offset,
                                     exclude_trash=trash_repo.has_trash(tx, folder.space_id))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        paths = search_repo.paths_of(tx, [n.id for n in found], folder.id)
    return [(n, (*scope, *paths[n.id])) for n in found if n.id in paths]
