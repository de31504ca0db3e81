# SPDX-License-Identifier: EUPL-1.2
"""Small helpers for the Nextcloud DAV collections that are not a user's files (trashbin,
versions): the path of a request split after its prefix and user, PROPFIND bodies, Depth, a
multistatus of entries given as {property: value}, and a file download."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cartable.common.paths import InvalidPath, decode_url_path, normalize_name
from cartable.core.errors import Forbidden, InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.core.reads import Content
from cartable.dav import xml
from cartable.dav.propfind import parse_propfind
from cartable.dav.xml import DAV
from cartable.http.bodies import read_limited
from cartable.http.downloads import download_headers

__all__ = ["PropName", "Entry", "segments", "propfind_request", "multistatus", "download", "COLLECTION",
           "raw_path", "collection"]

PropName = tuple[str, str]
COLLECTION = "<d:collection/>"


@dataclass(frozen=True)
class Entry:
    """One response of a multistatus: its href and the inner XML of each property it has."""

    href: str
    props: Mapping[PropName, str]


def raw_path(request: Request) -> str:
    return request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0].decode("latin-1")


def segments(raw: str, prefix: str, principal: Principal) -> list[str]:
    """The decoded path segments after ``prefix`` + the user's name; Forbidden for another user,
    NotFound for a URL naming no user or holding a segment that is not a name."""
    own = f"{prefix}{principal.name}/"
    if not raw.startswith(prefix):
        raise NotFound(f"this is not a URL of this collection: use {own}")
    segs = [decode_url_path(s.encode("latin-1")) for s in raw[len(prefix):].split("/") if s]
    if not segs or any("/" in s for s in segs):
        raise NotFound(f"the URL names no user: use {own}")
    if segs[0] != principal.name:
        raise Forbidden(f"user {principal.name!r} cannot access the items of {segs[0]!r}")
    try:
        return [segs[0], *(normalize_name(s) for s in segs[1:])]
    except InvalidPath as exc:
        raise InvalidInput(f"{raw}: {exc}") from None


async def propfind_request(request: Request, max_body: int) -> tuple[bool, str, list[PropName]]:
    """(Depth is 1, mode, names) of a PROPFIND; Depth infinity is refused as for files."""
    depth = (request.headers.get("depth") or "1").strip().lower()
    if depth not in ("0", "1"):
        raise InvalidInput(f"Depth {depth!r} is not supported here; use 0 or 1")
    mode, names = parse_propfind(await read_limited(request, max_body))
    return depth == "1", mode, names


def _entry(e: Entry, mode: str, names: Sequence[PropName]) -> str:
    found: list[str] = []
    missing: list[str] = []
    if mode == "propname":
        found = [xml.empty_element(ns, n) for ns, n in e.props]
    elif mode == "allprop":
        found = [xml.element(ns, n, v) for (ns, n), v in e.props.items()]
    else:
        for key in names:
            value = e.props.get(key)
            if value is None:
                missing.append(xml.empty_element(*key))
            else:
                found.append(xml.element(key[0], key[1], value))
    out = f"<d:response><d:href>{xml.escape(e.href)}</d:href>"
    if found:
        out += f"<d:propstat><d:prop>{''.join(found)}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    if missing:
        out += (f"<d:propstat><d:prop>{''.join(missing)}</d:prop>"
                "<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
    return out + "</d:response>"


def multistatus(entries: Sequence[Entry], mode: str, names: Sequence[PropName]) -> Response:
    body = xml.MULTISTATUS_OPEN + "".join(_entry(e, mode, names) for e in entries) + xml.MULTISTATUS_CLOSE
    return Response(body, status_code=207, media_type="application/xml; charset=utf-8")


def collection(href: str, name: str) -> Entry:
    return Entry(href, {(DAV, "resourcetype"): COLLECTION, (DAV, "displayname"): xml.escape(name)})


def download(content: Content, name: str, etag: str, media: str | None, head: bool,
             extra: Mapping[str, str] | None = None) -> Response:
    """A whole file as an attachment (no ranges), with the safe download headers."""
    headers = {"ETag": f'"{etag}"', **download_headers(name), **(extra or {}),
               "Content-Length": str(content.size)}
    media = media or "application/octet-stream"
    if head:
        return Response(status_code=200, headers=headers, media_type=media)
    if content.inline is not None:
        return Response(content.inline, status_code=200, headers=headers, media_type=media)
    return StreamingResponse(iterate_in_threadpool(content.iter_range()), status_code=200, headers=headers,
                             media_type=media)
