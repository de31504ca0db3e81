# SPDX-License-Identifier: EUPL-1.2
"""Dead properties: what clients store on a node with PROPPATCH and get back in PROPFIND, as the
same XML element (its namespace, attributes and content; lxml re-serialises it, so the bytes may
differ, e.g. in namespace declarations or empty-element form)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cartable.core import permissions, tree
from cartable.core.context import Core
from cartable.core.model import Node, Principal
from cartable.core.preconditions import Preconditions
from cartable.core.tree import Op, display
from cartable.core.units import unit_of_work
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import props as props_repo

__all__ = ["PropChange", "dead_props", "dead_props_many", "patch"]

PropKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PropChange:
    """Set (xml is the serialised property element) or remove (xml is None) one property."""

    ns: str
    name: str
    xml: str | None


def dead_props(core: Core, node: Node) -> dict[PropKey, str]:
    with core.db.read() as tx:
        return props_repo.get_all(tx, node.id)


def dead_props_many(core: Core, node_ids: Sequence[int]) -> dict[int, dict[PropKey, str]]:
    with core.db.read() as tx:
        return props_repo.get_many(tx, node_ids)


@unit_of_work
def patch(core: Core, op: Op, principal: Principal, parts: Sequence[str],
          changes: Sequence[PropChange], pre: Preconditions | None = None) -> Node:
    """Apply every change in document order, all or nothing, in one transaction that also checks
    ``pre`` and the locks, and appends one "props" entry to the change journal (so a sync client
    sees favourites and tags change).

    No etag moves, neither the node's nor its folders': properties are not content, and Nextcloud
    (its custom-properties backend and oc:favorite alike) leaves etags alone on PROPPATCH too.
    Changing content or mtime is not a property change and goes through the write path."""
    permissions.require(principal, permissions.UPDATE, f"changing the properties of {display(parts)}")
    now = core.clock()
    with core.db.write() as tx:
        tree.space_of(tx, principal, for_update=True)
        node = tree.resolve(tx, principal.root_id, parts)
        if pre is not None:
            pre.check(tx, principal.root_id, node, display(parts), now)
        ancestors = nodes_repo.ancestor_ids(tx, node.id)
        tree.check_locks(tx, op, display(parts), tree.covering_locks(tx, node.id, ancestors, now))
        for ch in changes:
            if ch.xml is None:
                props_repo.remove(tx, node.id, ch.ns, ch.name)
            else:
                props_repo.put(tx, node.id, ch.ns, ch.name, ch.xml)
        tree.record(tx, op, "props", [node], now)
        return node
