# SPDX-License-Identifier: EUPL-1.2
"""A multistatus of nodes found anywhere in the caller's tree (REPORT favorites, SEARCH
results), with the properties a client asked for, rendered as PROPFIND renders its entries."""

from __future__ import annotations

from collections.abc import Sequence

from cartable.core import files, locks, props
from cartable.core.model import Node, Usage
from cartable.dav import xml
from cartable.dav.context import DavRequest
from cartable.dav.propfind import render_entry
from cartable.dav.props import PropContext

__all__ = ["render_nodes", "PropName"]

PropName = tuple[str, str]


def render_nodes(ctx: DavRequest, entries: Sequence[tuple[Node, tuple[str, ...]]], names: list[PropName]) -> str:
    """Blocking (core calls): run it in a worker thread. ``names`` empty means allprop."""
    usage_cache: list[Usage] = []

    def usage() -> Usage:
        if not usage_cache:
            usage_cache.append(files.usage(ctx.core, ctx.principal))
        return usage_cache[0]

    has_locks = locks.any_active(ctx.core)

    def node_locks(n: Node) -> list[tuple[locks.Lock, str]]:
        if not has_locks:
            return []
        return [(lk, ctx.href(parts, n.is_dir if lk.node_id == n.id else True))
                for lk, parts in locks.locks_with_roots(ctx.core, n)]

    pctx = PropContext(usage=usage, locks=node_locks, href=lambda n: "",
                       extra={"principal": ctx.principal, "root_id": ctx.principal.root_id})
    mode = "prop" if names else "allprop"
    need_dead = mode != "prop" or any(k not in ctx.dialect.props for k in names)
    dead = props.dead_props_many(ctx.core, [n.id for n, _ in entries]) if need_dead else {}
    out = [xml.MULTISTATUS_OPEN]
    for node, parts in entries:
        out.append(render_entry(ctx.dialect.props, ctx.href(parts, node.is_dir), node, mode, names, pctx,
                                dead.get(node.id, {})))
    out.append(xml.MULTISTATUS_CLOSE)
    return "".join(out)
