# SPDX-License-Identifier: EUPL-1.2
"""The body of a DAV SEARCH (RFC 5323 basicsearch, as Nextcloud's FileSearchBackend reads it)
made into a core search.

- ``select/prop``: the properties to return for each result.
- ``from/scope``: one ``href`` (``/files/USER/...``, optionally prefixed with ``/remote.php/dav``
  or a full URL) and a ``depth`` (``infinity``, the default, or ``1``).
- ``where``: ``and``, ``or``, ``not``, ``eq``, ``gt``, ``gte``, ``lt``, ``lte``, ``like`` (``%``
  wildcards; case-insensitive on names), ``is-collection``, ``is-defined``, on ``displayname``,
  ``getcontenttype``, ``getlastmodified``/``creationdate``/``nc:upload_time`` (unix seconds or
  ISO 8601), ``oc:size``/``getcontentlength``, ``oc:favorite`` (``yes``/``1``/``true``),
  ``oc:fileid``, and ``oc:owner-id`` (only the caller's own id, inside an ``and``: Nextcloud's
  photo queries send it).
- ``orderby/order``: ``prop`` + ``ascending`` (the default) or ``descending``, repeated.
- ``limit``: ``nresults`` and ``firstresult`` (Nextcloud's is in the SearchDAV namespace; any
  namespace is accepted).
Anything else is a 400 that names what was not understood."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from cartable.common.timefmt import parse_http_date
from cartable.core.errors import InvalidInput
from cartable.core.search import And, Compare, Cond, Not, Or, Order
from cartable.dav import xml

__all__ = ["SearchRequest", "parse_search"]

PropName = tuple[str, str]

# property → (core field, value type)
_FIELDS: dict[PropName, tuple[str, str]] = {
    (xml.DAV, "displayname"): ("name", "str"),
    (xml.DAV, "getcontenttype"): ("ctype", "str"),
    (xml.DAV, "getlastmodified"): ("mtime", "time"),
    (xml.DAV, "creationdate"): ("ctime", "time"),
    (xml.NC, "upload_time"): ("ctime", "time"),
    (xml.OC, "size"): ("size", "int"),
    (xml.DAV, "getcontentlength"): ("size", "int"),
    (xml.OC, "favorite"): ("favorite", "bool"),
    (xml.OC, "fileid"): ("id", "int"),
}
_OWNER = (xml.OC, "owner-id")
_COMPARISONS = ("eq", "gt", "gte", "lt", "lte", "like")
_TRUE = And(())


@dataclass
class SearchRequest:
    names: list[PropName] = field(default_factory=list)
    scope: str = ""
    depth: str = "infinity"
    where: Cond | None = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


def _dav(el: etree._Element, name: str) -> bool:
    return el.tag == xml.clark(xml.DAV, name)


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in xml.children(el) if _dav(c, name)), None)


def _show(key: PropName) -> str:
    return xml.clark(*key)


def _number(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise InvalidInput(f"{what} {text.strip()!r} is not a non-negative whole number")
    return int(text.strip())


def _value(kind: str, text: str, key: PropName) -> object:
    text = text.strip()
    if kind == "str":
        return text
    if kind == "bool":
        return text.lower() in ("yes", "1", "true")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(f"{_show(key)} is compared with {text!r}, which is not a number") from None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    http = parse_http_date(text)
    if http is not None:
        return float(http)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidInput(f"{_show(key)} is compared with {text!r}, which is neither unix seconds "
                           "nor an ISO 8601 date") from None


def _prop_of(op: etree._Element) -> PropName:
    prop = _child(op, "prop")
    inner = list(xml.children(prop)) if prop is not None else []
    if len(inner) != 1:
        raise InvalidInput(f"DAV:{xml.split_clark(op.tag)[1]} needs one DAV:prop with one property")
    return xml.split_clark(inner[0].tag)


def _operator(op: etree._Element, caller: str, top_and: bool) -> Cond:
    ns, name = xml.split_clark(op.tag)
    if ns != xml.DAV:
        raise InvalidInput(f"unsupported search operator {xml.clark(ns, name)}")
    if name in ("and", "or"):
        items = tuple(_operator(c, caller, top_and and name == "and") for c in xml.children(op))
        return And(items) if name == "and" else Or(items)
    if name == "not":
        kids = list(xml.children(op))
        if len(kids) != 1:
            raise InvalidInput("DAV:not needs exactly one operator")
        return Not(_operator(kids[0], caller, False))
    if name == "is-collection":
        return Compare("kind", "eq", "d")
    if name == "is-defined":
        _prop_of(op)
        return _TRUE
    if name not in _COMPARISONS:
        raise InvalidInput(f"unsupported search operator DAV:{name}")
    key = _prop_of(op)
    literal = _child(op, "literal")
    if literal is None:
        raise InvalidInput(f"DAV:{name} needs a DAV:literal to compare with")
    text = literal.text or ""
    if key == _OWNER:
        if name != "eq" or not top_and:
            raise InvalidInput("oc:owner-id may only be searched with DAV:eq, outside DAV:or and DAV:not")
        if text.strip() != caller:
            raise InvalidInput("oc:owner-id may only be searched for the current user")
        return _TRUE
    if key not in _FIELDS:
        raise InvalidInput(f"unsupported property for search: {_show(key)}")
    field_name, kind = _FIELDS[key]
    if name == "like" and kind != "str":
        raise InvalidInput(f"DAV:like compares text; {_show(key)} is not text")
    if field_name == "favorite" and name != "eq":
        raise InvalidInput("oc:favorite may only be compared with DAV:eq")
    return Compare(field_name, name, _value(kind, text, key))


def _orders(orderby: etree._Element) -> list[Order]:
    out: list[Order] = []
    for order in xml.children(orderby):
        if not _dav(order, "order"):
            continue
        key = _prop_of(order)
        if key not in _FIELDS:
            raise InvalidInput(f"unsupported property for order: {_show(key)}")
        out.append(Order(_FIELDS[key][0], descending=_child(order, "descending") is not None))
    return out


def parse_search(body: bytes, caller: str) -> SearchRequest:
    """InvalidInput (400) for anything not understood. caller: the user's id (oc:owner-id)."""
    root = xml.parse(body)
    if not _dav(root, "searchrequest"):
        raise InvalidInput("the SEARCH body must be a DAV:searchrequest")
    basic = _child(root, "basicsearch")
    if basic is None:
        raise InvalidInput("Unexpected xml content for searchrequest, expected basicsearch")
    out = SearchRequest()
    select = _child(basic, "select")
    if select is None:
        raise InvalidInput("Parse error: Missing {DAV:}select from {DAV:}basicsearch")
    prop = _child(select, "prop")
    out.names = [xml.split_clark(p.tag) for p in xml.children(prop)] if prop is not None else []
    source = _child(basic, "from")
    scopes = [s for s in xml.children(source) if _dav(s, "scope")] if source is not None else []
    if len(scopes) != 1:
        raise InvalidInput("a search needs exactly one DAV:scope in DAV:from")
    href, depth = _child(scopes[0], "href"), _child(scopes[0], "depth")
    out.scope = (href.text or "").strip() if href is not None else ""
    out.depth = ((depth.text or "").strip().lower() if depth is not None else "") or "infinity"
    if out.depth not in ("0", "1", "infinity"):
        raise InvalidInput(f"scope depth {out.depth!r} is not 0, 1 or infinity")
    where = _child(basic, "where")
    if where is None:
        raise InvalidInput("Parse error: Missing {DAV:}where from {DAV:}basicsearch")
    ops = list(xml.children(where))
    if len(ops) > 1:
        raise InvalidInput("DAV:where holds one operator (combine several with DAV:and)")
    out.where = _operator(ops[0], caller, True) if ops else None
    orderby = _child(basic, "orderby")
    out.order = _orders(orderby) if orderby is not None else []
    limit = _child(basic, "limit")
    if limit is not None:
        for el in xml.children(limit):
            local = xml.split_clark(el.tag)[1]
            if local == "nresults":
                out.limit = _number(el.text or "", "nresults")
            elif local == "firstresult":
                out.offset = _number(el.text or "", "firstresult")
    return out
