# SPDX-License-Identifier: EUPL-1.2
"""REPORT oc:filter-files on any folder of the caller's tree: the favorites below it (Nextcloud's
FilesReportPlugin). The body names the properties to return (DAV:prop), the filter rules
(oc:filter-rules, which must not be empty: oc:favorite 1; oc:systemtag and oc:circle match
nothing, as cartable has neither) and optionally a page: DAV:limit with DAV:nresults and
nc:firstresult, or the older oc:search with oc:limit and oc:offset. Every entry's href is its
full path in the caller's tree, whatever folder the REPORT was sent to."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response

from cartable.core import favorites
from cartable.core.errors import InvalidInput
from cartable.dav import xml
from cartable.dav.context import DavRequest, run
from cartable.http.bodies import read_limited
from cartable.nextcloud.multistatus import PropName, render_nodes

__all__ = ["do_report", "parse_filter_files", "FilterFiles"]

_FILTER_FILES = xml.clark(xml.OC, "filter-files")


@dataclass
class FilterFiles:
    names: list[PropName] = field(default_factory=list)
    favorite: bool = False
    matches_nothing: bool = False  # a rule on system tags or circles, which cartable has none of
    limit: int | None = None
    offset: int = 0


def _int(el: object, what: str) -> int:
    text = (getattr(el, "text", None) or "").strip()
    if not text.isdigit():
        raise InvalidInput(f"{what} {text!r} is not a non-negative number")
    return int(text)


def parse_filter_files(body: bytes) -> FilterFiles:
    root = xml.parse(body)
    if root.tag != _FILTER_FILES:
        raise InvalidInput("this REPORT needs an oc:filter-files body (the only report supported here)")
    out = FilterFiles()
    rules = 0
    for child in xml.children(root):
        if child.tag == xml.clark(xml.DAV, "prop"):
            out.names = [xml.split_clark(p.tag) for p in xml.children(child)]
        elif child.tag == xml.clark(xml.OC, "filter-rules"):
            for rule in xml.children(child):
                rules += 1
                if rule.tag == xml.clark(xml.OC, "favorite"):
                    out.favorite = True
                else:
                    out.matches_nothing = True
        elif child.tag == xml.clark(xml.DAV, "limit"):
            for el in xml.children(child):
                if el.tag == xml.clark(xml.DAV, "nresults"):
                    out.limit = _int(el, "nresults")
                elif xml.split_clark(el.tag)[1] == "firstresult":
                    out.offset = _int(el, "firstresult")
        elif child.tag == xml.clark(xml.OC, "search"):
            for el in xml.children(child):
                if el.tag == xml.clark(xml.OC, "limit"):
                    out.limit = _int(el, "oc:limit")
                elif el.tag == xml.clark(xml.OC, "offset"):
                    out.offset = _int(el, "oc:offset")
    if not rules:
        raise InvalidInput("Missing filter-rule block in request: an empty filter would list every file")
    return out


async def do_report(ctx: DavRequest) -> Response:
    query = parse_filter_files(await read_limited(ctx.request, ctx.config.max_xml_body))
    entries = []
    if query.favorite and not query.matches_nothing:
        entries = await run(favorites.under, ctx.core, ctx.principal, ctx.parts, limit=query.limit,
                            offset=query.offset)
    else:
        await run(favorites.under, ctx.core, ctx.principal, ctx.parts, limit=0)  # 404 for a bad target
    body = await run(render_nodes, ctx, entries, query.names)
    return Response(body, status_code=207, media_type="application/xml; charset=utf-8")
