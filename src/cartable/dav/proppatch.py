# SPDX-License-Identifier: EUPL-1.2
"""PROPPATCH (RFC 4918 §9.2): set and remove dead properties in document order, atomically.
Live properties are protected: the whole request then fails (403 for them, 424 for the rest).
A namespace or name longer than the database stores is a 400. Core journals the change ("props")
and moves no etag (core/props.py)."""

from __future__ import annotations

from starlette.responses import Response

from cartable.core import bounds, files, props
from cartable.core.errors import InvalidInput
from cartable.core.props import PropChange
from cartable.dav import xml
from cartable.dav.context import DavRequest, run
from cartable.http.bodies import read_limited

__all__ = ["do_proppatch", "parse_proppatch"]


def _check_bounds(ns: str, name: str) -> None:
    if len(ns) > bounds.PROP_NS:
        raise InvalidInput(f"a property namespace is {len(ns)} characters long; at most {bounds.PROP_NS} "
                           "are accepted")
    if len(name) > bounds.PROP_NAME:
        raise InvalidInput(f"the property name {name[:40]!r}… is {len(name)} characters long; at most "
                           f"{bounds.PROP_NAME} are accepted")


def parse_proppatch(body: bytes) -> list[PropChange]:
    root = xml.parse(body)
    if root.tag != xml.clark(xml.DAV, "propertyupdate"):
        raise InvalidInput("the PROPPATCH body must be a DAV:propertyupdate element")
    changes: list[PropChange] = []
    for action in xml.children(root):
        if action.tag not in (xml.clark(xml.DAV, "set"), xml.clark(xml.DAV, "remove")):
            raise InvalidInput("DAV:propertyupdate may only contain set and remove")
        is_set = action.tag == xml.clark(xml.DAV, "set")
        for prop in xml.children(action):
            if prop.tag != xml.clark(xml.DAV, "prop"):
                raise InvalidInput("set and remove must contain DAV:prop")
            for el in xml.children(prop):
                ns, name = xml.split_clark(el.tag)
                _check_bounds(ns, name)
                changes.append(PropChange(ns, name, xml.serialize(el) if is_set else None))
    if not changes:
        raise InvalidInput("PROPPATCH changes no property")
    return changes


async def do_proppatch(ctx: DavRequest) -> Response:
    changes = parse_proppatch(await read_limited(ctx.request, ctx.config.max_xml_body))
    node = await run(files.stat, ctx.core, ctx.principal, ctx.parts)  # 404 before any 207
    dialect = ctx.dialect
    protected = [c for c in changes if (c.ns, c.name) in dialect.props and (c.ns, c.name) not in dialect.settable]
    if protected:
        stats = [(c, 403 if c in protected else 424) for c in changes]
    else:
        dead = [c for c in changes if (c.ns, c.name) not in dialect.setters]
        for c in changes:
            if (c.ns, c.name) in dialect.setters:
                await dialect.setters[(c.ns, c.name)](ctx, c.xml)
        if dead:
            await run(props.patch, ctx.core, ctx.op, ctx.principal, ctx.parts, dead, ctx.preconditions())
        stats = [(c, 200) for c in changes]
    node_href = ctx.own_href(node.is_dir)
    body = [xml.MULTISTATUS_OPEN, f"<d:response><d:href>{xml.escape(node_href)}</d:href>"]
    for c, code in stats:
        body.append(f"<d:propstat><d:prop>{xml.empty_element(c.ns, c.name)}</d:prop>"
                    f"<d:status>{xml.status_line(code)}</d:status></d:propstat>")
    body.append("</d:response>" + xml.MULTISTATUS_CLOSE)
    return Response("".join(body), status_code=207, media_type="application/xml; charset=utf-8")
