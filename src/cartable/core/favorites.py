# SPDX-License-Identifier: EUPL-1.2
"""Favorites: a user marks files and folders (Nextcloud's oc:favorite). Per user, so that a node
shared later can be one user's favorite and not another's; a favorite goes with its node.

Setting one changes no etag (Nextcloud neither): it is not content. It is journalled (op
``props``) so that a sync client that follows the journal sees it."""

from __future__ import annotations

from collections.abc import Sequence

from cartable.core import permissions, tree
from cartable.core.context import Core
from cartable.core.model import Node, Principal
from cartable.core.tree import Op
from cartable.core.units import unit_of_work
from cartable.store.meta import favorites as favorites_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import search as search_repo

__all__ = ["set_favorite", "favorite_ids", "under"]


@unit_of_work
def set_favorite(core: Core, op: Op, parts: Sequence[str], on: bool) -> Node:
    """Mark (on) or unmark the node at parts as a favorite of the caller; idempotent."""
    permissions.require_account(op.principal, "marking favorites")
    now = core.clock()
    with core.db.write() as tx:
        node = tree.resolve_from(tx, op.principal.root_id, parts)
        if on:
            favorites_repo.add(tx, op.principal.user_id, node.id, now)
        else:
            favorites_repo.remove(tx, op.principal.user_id, node.id)
        tree.record(tx, op, "props", [node], now)
        return node


def favorite_ids(core: Core, principal: Principal) -> set[int]:
    """Every favorite of the caller (a handful: read once per listing, not per entry); none
    through a link (the owner's favorites are the owner's business)."""
    if principal.link_id is not None:
        return set()
    with core.db.read() as tx:
        return set(favorites_repo.node_ids(tx, principal.user_id))


def under(core: Core, principal: Principal, parts: Sequence[str], *, limit: int | None = None,
          offset: int = 0) -> list[tuple[Node, tuple[str, ...]]]:
    """The caller's favorites below the folder at parts (not the folder itself), oldest favorite
    first, with their paths from the caller's root; one page of them. One snapshot."""
    permissions.require_account(principal, "listing favorites")
    with core.db.read() as tx:
        folder = tree.resolve_from(tx, principal.root_id, parts)
        ids = favorites_repo.node_ids(tx, principal.user_id)
        below = search_repo.paths_of(tx, ids, folder.id)
        kept = [i for i in ids if i in below]
        kept = kept[offset:] if limit is None else kept[offset:offset + limit]
        out: list[tuple[Node, tuple[str, ...]]] = []
        for node_id in kept:
            node = nodes_repo.get(tx, node_id)
            if node is not None:
                out.append((node, (*parts, *below[node_id])))
        return out
