# SPDX-License-Identifier: EUPL-1.2
"""PROPFIND (RFC 4918 §9.1), Depth 0 and 1; infinity is refused (DAV:propfind-finite-depth)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from starlette.responses import Response

from cartable.core import files, locks, props, usershares
from cartable.core.errors import InvalidInput
from cartable.core.model import Node, Usage
from cartable.dav import xml
from cartable.dav.context import DavRequest, run, run_hot
from cartable.dav.errors import xml_error
from cartable.dav.props import LiveProp, PropContext, PropRegistry
from cartable.http.bodies import read_limited

__all__ = ["do_propfind", "parse_propfind"]

PropName = tuple[str, str]


def parse_propfind(body: bytes) -> tuple[str, list[PropName]]:
    """('allprop' | 'propname' | 'prop', names). An empty body means allprop."""
    if not body.strip():
        return "allprop", []
    root = xml.parse(body)
    if root.tag != xml.clark(xml.DAV, "propfind"):
        raise InvalidInput("the PROPFIND body must be a DAV:propfind element")
    kids = list(xml.children(root))
    for child in kids:
        if child.tag == xml.clark(xml.DAV, "prop"):
            return "prop", [xml.split_clark(p.tag) for p in xml.children(child)]
        if child.tag == xml.clark(xml.DAV, "propname"):
            return "propname", []
        if child.tag == xml.clark(xml.DAV, "allprop"):
            return "allprop", []
    raise InvalidInput("DAV:propfind must contain prop, allprop or propname")


def _propstat(found: list[str], missing: list[str]) -> str:
    out = ""
    if found:
        out += f"<d:propstat><d:prop>{''.join(found)}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    if missing:
        out += (f"<d:propstat><d:prop>{''.join(missing)}</d:prop>"
                "<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
    return out


Plan = list[tuple[PropName, LiveProp | None, str, str, str]]


def _plan(registry: PropRegistry, names: tuple[PropName, ...]) -> Plan:
    """Per requested property: its getter and its tags, worked out once per distinct request
    shape (cached in the registry, which clears it when a property is registered)."""
    cached = registry.plans.get(names)
    if cached is not None:
        return cached  # type: ignore[return-value]
    plan: Plan = []
    for key in names:
        element = xml.element(key[0], key[1], "\0")
        open_tag, _, close_tag = element.partition("\0")
        plan.append((key, registry.get(key), open_tag, close_tag, xml.empty_element(*key)))
    if len(registry.plans) < 256:
        registry.plans[names] = plan  # type: ignore[assignment]
    return plan


def render_entry(registry: PropRegistry, href: str, node: Node, mode: str, names: list[PropName],
                 pctx: PropContext, dead: dict[PropName, str]) -> str:
    found: list[str] = []
    missing: list[str] = []
    if mode == "propname":
        found = [xml.empty_element(ns, n) for (ns, n), p in registry.items() if p.get(pctx, node) is not None]
        found += [xml.empty_element(ns, n) for ns, n in dead]
    elif mode == "allprop":
        for (ns, n), p in registry.items():
            if p.in_allprop:
                value = p.get(pctx, node)
                if value is not None:
                    found.append(xml.element(ns, n, value))
        found.extend(dead.values())
    else:
        for key, live, open_tag, close_tag, empty in _plan(registry, tuple(names)):
            value = live.get(pctx, node) if live is not None else None
            if value is not None:
                found.append(open_tag + value + close_tag)
            elif key in dead:
                found.append(dead[key])
            else:
                missing.append(empty)
    return f"<d:response><d:href>{xml.escape(href)}</d:href>{_propstat(found, missing)}</d:response>"


async def do_propfind(ctx: DavRequest) -> Response:
    depth = (ctx.header("depth") or "1").strip().lower()
    if depth == "infinity":
        return xml_error(403, "PROPFIND with Depth: infinity is not supported; use Depth 0 or 1",
                         "propfind-finite-depth")
    if depth not in ("0", "1"):
        raise InvalidInput(f"Depth {depth!r} is not 0, 1 or infinity")
    mode, names = parse_propfind(await read_limited(ctx.request, ctx.config.max_xml_body))
    if depth == "0" and mode == "prop" and all(k in ctx.dialect.props for k in names):
        body = await run_hot(ctx.core, _list_and_render, ctx, False, mode, names)  # the desktop client's poll
    else:
        body = await run(_list_and_render, ctx, depth == "1", mode, names)
    return Response(body, status_code=207, media_type="application/xml; charset=utf-8")


def _list_and_render(ctx: DavRequest, with_children: bool, mode: str, names: list[PropName]) -> str:
    """One worker-thread trip for the whole answer (the desktop's poll is a Depth 0 PROPFIND)."""
    if with_children:
        node, kids = files.listing(ctx.core, ctx.principal, ctx.parts)
    else:
        node, kids = files.stat(ctx.core, ctx.principal, ctx.parts), []
    entries: list[tuple[Node, tuple[str, ...]]] = [(node, ctx.parts)]
    entries += [(k, (*ctx.parts, k.name)) for k in kids]
    mounted = usershares.mounts_in(ctx.core, ctx.principal, node) if with_children else []
    entries += [(m.node, (*ctx.parts, m.node.name)) for m in mounted]
    etags = usershares.folder_etags(ctx.core, ctx.principal, [n for n, _ in entries])
    if etags:
        entries = [(replace(n, etag=etags[n.id]) if n.id in etags else n, p) for n, p in entries]
    return _render_all(ctx, entries, mode, names, {m.node.id: m for m in mounted})


def _render_all(ctx: DavRequest, entries: list[tuple[Node, tuple[str, ...]]], mode: str,
                names: list[PropName], mounted: dict[int, usershares.MountEntry] | None = None) -> str:
    """``mounted``: the entries that are mount points, by node id."""
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
                       extra={"principal": ctx.principal, "root_id": ctx.principal.root_id,
                              "mounted": mounted or {}, "entry_ids": [n.id for n, _ in entries]})
    need_dead = mode != "prop" or any(k not in ctx.dialect.props for k in names)
    dead = props.dead_props_many(ctx.core, [n.id for n, _ in entries]) if need_dead else {}
    out: list[str] = [xml.MULTISTATUS_OPEN]
    # Children share the parent's href prefix: quote only their own name.
    prefix = ctx.own_href(True)
    for n, parts in entries:
        if parts == ctx.parts:
            href = ctx.own_href(n.is_dir)
        else:
            href = prefix + quote(parts[-1], safe="") + ("/" if n.is_dir else "")
        out.append(render_entry(ctx.dialect.props, href, n, mode, names, pctx, dead.get(n.id, {})))
    out.append(xml.MULTISTATUS_CLOSE)
    return "".join(out)


