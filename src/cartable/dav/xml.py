# SPDX-License-Identifier: EUPL-1.2
"""All of WebDAV's XML: safe parsing with limits, Clark names, and cheap string builders for
responses (a 5,000-entry PROPFIND is built from templates, not a tree).

Request bodies are parsed by lxml with a hardened parser (no DTD loading, no entity resolution,
no network, no huge trees), any DOCTYPE or entity is refused outright, before and after parsing
(so UTF-16 and UTF-32 bodies cannot hide one), and nesting is limited. defusedxml is not used:
its lxml module is deprecated and due for removal (its authors point to exactly this parser
configuration instead), and its ElementTree flavour would mean a second XML library.
tests/dav/test_hostile.py sends billion-laughs, external entities and deep nesting in three
encodings to every method that reads XML."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr

from lxml import etree

from cartable.core.errors import InvalidInput

__all__ = ["DAV", "OC", "NC", "NSMAP", "parse", "clark", "split_clark", "escape",
           "element", "empty_element", "XML_HEAD", "MULTISTATUS_OPEN", "MULTISTATUS_CLOSE",
           "status_line", "serialize", "XMLError", "children"]

DAV = "DAV:"
OC = "http://owncloud.org/ns"
NC = "http://nextcloud.org/ns"
SABRE = "http://sabredav.org/ns"
NSMAP = {DAV: "d", OC: "oc", NC: "nc", SABRE: "s"}
XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
MULTISTATUS_OPEN = (XML_HEAD + '<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
                    'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">')
MULTISTATUS_CLOSE = "</d:multistatus>\n"
MAX_DEPTH = 64

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 412: "Precondition Failed", 423: "Locked", 424: "Failed Dependency",
            507: "Insufficient Storage"}


class XMLError(InvalidInput):
    """The request body is not acceptable XML."""


def _parser() -> etree.XMLParser:
    # No DTD loading, no entity resolution, no network, no huge trees.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True,
                           remove_pis=True)


def parse(body: bytes) -> etree._Element:
    """Parse a request body; XMLError (→ 400) for malformed XML, any DTD or entity, or nesting
    deeper than MAX_DEPTH."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise XMLError("XML with a DOCTYPE or entities is refused")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise XMLError(f"the request body is not well-formed XML: {exc}") from None
    if root is None:
        raise XMLError("the request body is empty XML")
    _check_no_dtd(root)
    _check_depth(root)
    return root


def _check_no_dtd(root: etree._Element) -> None:
    # The byte test above misses a DOCTYPE in UTF-16 or UTF-32; the parsed document does not.
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise XMLError("XML with a DOCTYPE or entities is refused")


def _check_depth(root: etree._Element) -> None:
    stack = [(root, 1)]
    while stack:
        el, d = stack.pop()
        if d > MAX_DEPTH:
            raise XMLError(f"the XML is nested deeper than {MAX_DEPTH} levels")
        if isinstance(el, etree._Entity):
            raise XMLError("XML with a DOCTYPE or entities is refused")
        stack.extend((c, d + 1) for c in el)


def clark(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}" if ns else name


def split_clark(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def escape(text: str) -> str:
    return _escape(text)


def _qname(ns: str, name: str) -> tuple[str, str]:
    """(qualified name, extra xmlns attribute) for use inside the multistatus root."""
    prefix = NSMAP.get(ns)
    if prefix is not None:
        return f"{prefix}:{name}", ""
    if not ns:
        return name, ' xmlns=""'
    return f"x:{name}", f" xmlns:x={quoteattr(ns)}"


def element(ns: str, name: str, inner: str) -> str:
    q, decl = _qname(ns, name)
    return f"<{q}{decl}>{inner}</{q}>"


def empty_element(ns: str, name: str) -> str:
    q, decl = _qname(ns, name)
    return f"<{q}{decl}/>"


def status_line(code: int) -> str:
    return f"HTTP/1.1 {code} {_REASONS.get(code, '')}".rstrip()


def serialize(el: etree._Element) -> str:
    """A property element as self-contained XML (its namespace declarations included)."""
    return etree.tostring(el, encoding="unicode", with_tail=False)


def children(el: etree._Element) -> Iterable[etree._Element]:
    return (c for c in el if isinstance(c.tag, str))
