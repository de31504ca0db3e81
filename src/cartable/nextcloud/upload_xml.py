# SPDX-License-Identifier: EUPL-1.2
"""PROPFIND answers for upload collections: the collection and its parts, with the few
properties resuming clients ask for (resourcetype, getcontentlength, getetag, getlastmodified,
getcontenttype). Unknown properties are listed under 404, as RFC 4918 wants."""

from __future__ import annotations

from urllib.parse import quote

from cartable.common.timefmt import http_date
from cartable.core.uploads import PartInfo, UploadInfo
from cartable.dav import xml
from cartable.http.conditional import quote_etag

__all__ = ["render_upload"]

PropName = tuple[str, str]
Values = dict[PropName, str]


def _collection_values(info: UploadInfo) -> Values:
    return {(xml.DAV, "resourcetype"): "<d:collection/>",
            (xml.DAV, "getetag"): xml.escape(quote_etag(info.etag)),
            (xml.DAV, "getlastmodified"): http_date(info.touched_at)}


def _part_values(part: PartInfo) -> Values:
    return {(xml.DAV, "resourcetype"): "",
            (xml.DAV, "getcontentlength"): str(part.size),
            (xml.DAV, "getcontenttype"): "application/octet-stream",
            (xml.DAV, "getetag"): xml.escape(quote_etag(part.etag)),
            (xml.DAV, "getlastmodified"): http_date(part.mtime)}


def _response(href: str, values: Values, mode: str, names: list[PropName]) -> str:
    found: list[str] = []
    missing: list[str] = []
    if mode == "propname":
        found = [xml.empty_element(ns, n) for ns, n in values]
    elif mode == "allprop":
        found = [xml.element(ns, n, v) for (ns, n), v in values.items()]
    else:
        for key in names:
            if key in values:
                found.append(xml.element(key[0], key[1], values[key]))
            else:
                missing.append(xml.empty_element(*key))
    out = f"<d:response><d:href>{xml.escape(href)}</d:href>"
    if found:
        out += f"<d:propstat><d:prop>{''.join(found)}</d:prop><d:status>{xml.status_line(200)}</d:status></d:propstat>"
    if missing:
        out += (f"<d:propstat><d:prop>{''.join(missing)}</d:prop>"
                f"<d:status>{xml.status_line(404)}</d:status></d:propstat>")
    return out + "</d:response>"


def render_upload(base: str, info: UploadInfo, part: str | None, depth: str, mode: str,
                  names: list[PropName]) -> str | None:
    """The multistatus body. base: the collection's URL path as the client spelt it (hrefs go
    under it); part: a part's name when the request named one (None if it does not exist)."""
    base = base if base.endswith("/") else base + "/"
    out = [xml.MULTISTATUS_OPEN]
    if part is not None:
        found = [p for p in info.parts if p.name == part]
        if not found:
            return None
        out.append(_response(base + quote(part, safe=""), _part_values(found[0]), mode, names))
    else:
        out.append(_response(base, _collection_values(info), mode, names))
        if depth != "0":
            out.extend(_response(base + quote(p.name, safe=""), _part_values(p), mode, names)
                       for p in info.parts)
    out.append(xml.MULTISTATUS_CLOSE)
    return "".join(out)
