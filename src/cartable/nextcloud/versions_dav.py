# SPDX-License-Identifier: EUPL-1.2
"""Versions over WebDAV, as Nextcloud serves them (apps/files_versions/lib/Sabre):

- ``PROPFIND /remote.php/dav/versions/USER/versions/FILEID/`` (Depth 1) lists the file's old
  versions, newest first, each named as Nextcloud names them: by its timestamp (the file's mtime
  while it held that content, in seconds; ``.ID`` added when two share one), with
  ``getlastmodified``, ``getcontentlength``, ``getetag`` and ``getcontenttype``.
- ``GET .../FILEID/VERSION`` downloads one.
- ``MOVE`` (or ``COPY``) of ``.../FILEID/VERSION`` to ``/remote.php/dav/versions/USER/restore/target``
  restores it (201): it becomes the file's content, the current content an old version
  (core/versions.py).
- ``DELETE .../FILEID/VERSION`` deletes one old version (204).
Another user's versions are 403 by URL; a file id that is not the caller's live file is 404."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.timefmt import http_date
from cartable.core import versions
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, InvalidInput, NotFound
from cartable.core.model import Node
from cartable.dav.context import DavConfig, client_op, run
from cartable.dav.errors import funnel
from cartable.dav.xml import DAV, NC, escape
from cartable.http.basic import authenticate
from cartable.nextcloud import davlists
from cartable.nextcloud.davlists import Entry, PropName

__all__ = ["VersionsApp", "VERSIONS_PREFIX"]

VERSIONS_PREFIX = "/remote.php/dav/versions/"
_ALLOW = "OPTIONS, PROPFIND, GET, HEAD, MOVE, COPY, DELETE"


def _int(seg: str, what: str) -> int:
    if not seg.isdigit() or len(seg) > 18:
        raise NotFound(f"{seg!r} is not a {what}")
    return int(seg)


class VersionsApp:
    def __init__(self, core: Core, auth: Authenticator, config: DavConfig | None = None) -> None:
        self.core, self.auth = core, auth
        self.config = config or DavConfig()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), request.url.path, self.handle(request))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        if method == "OPTIONS":
            return Response(status_code=200, headers={"DAV": "1", "Allow": _ALLOW})
        principal = await authenticate(self.auth, request)
        segs = davlists.segments(davlists.raw_path(request), VERSIONS_PREFIX, principal)
        base = VERSIONS_PREFIX + quote(principal.name, safe="")
        if len(segs) <= 2 and method == "PROPFIND":
            if len(segs) == 1:
                kids = [davlists.collection(base + "/versions/", "versions"),
                        davlists.collection(base + "/restore/", "restore")]
                return await self._collection(request, base + "/", principal.name, kids)
            if segs[1] in ("versions", "restore"):
                return await self._collection(request, f"{base}/{segs[1]}/", segs[1], [])
        if len(segs) < 3 or segs[1] != "versions" or len(segs) > 4:
            if method == "PROPFIND":
                raise NotFound(f"nothing at {request.url.path}; versions live under {base}/versions/FILEID/")
            return Response(f"{method} is not supported here\n", 405, headers={"Allow": "OPTIONS, PROPFIND"})
        file_id = _int(segs[2], "file id")
        if len(segs) == 3:
            if method != "PROPFIND":
                return Response(f"{method} is not supported on a file's versions\n", 405,
                                headers={"Allow": "OPTIONS, PROPFIND"})
            deep, mode, names = await davlists.propfind_request(request, self.config.max_xml_body)
            node, old = await run(versions.listing, self.core, principal, file_id)
            href = f"{base}/versions/{file_id}/"
            entries = [davlists.collection(href, str(file_id))]
            if deep:
                entries += [self._entry(href, node, v) for v in old]
            return davlists.multistatus(entries, mode, names)
        version_id = await run(versions.version_id, self.core, principal, file_id, segs[3])
        op = client_op(request.headers, principal, frozenset())
        if method == "PROPFIND":
            _deep, mode, names = await davlists.propfind_request(request, self.config.max_xml_body)
            node, info, _content = await run(versions.open_version, self.core, principal, file_id, version_id)
            return davlists.multistatus([self._entry(f"{base}/versions/{file_id}/", node, info)], mode, names)
        if method in ("GET", "HEAD"):
            node, info, content = await run(versions.open_version, self.core, principal, file_id, version_id)
            return davlists.download(content, node.name, info.etag, node.content_type, method == "HEAD",
                                     {"Last-Modified": http_date(info.mtime)})
        if method == "DELETE":
            await run(versions.delete, self.core, op, file_id, version_id)
            return Response(status_code=204)
        if method in ("MOVE", "COPY"):
            self._check_restore_destination(request, base)
            await run(versions.restore, self.core, op, file_id, version_id)
            return Response(status_code=201)
        return Response(f"{method} is not supported on a version\n", 405, headers={"Allow": _ALLOW})

    async def _collection(self, request: Request, href: str, name: str, children: list[Entry]) -> Response:
        deep, mode, names = await davlists.propfind_request(request, self.config.max_xml_body)
        return davlists.multistatus([davlists.collection(href, name), *(children if deep else [])], mode, names)

    def _check_restore_destination(self, request: Request, base: str) -> None:
        raw = request.headers.get("destination")
        if not raw:
            raise InvalidInput(f"MOVE needs a Destination header: {base}/restore/target restores the version")
        url = urlsplit(raw)
        if url.netloc and url.netloc != (request.headers.get("host") or url.netloc):
            raise Forbidden(f"the destination {raw} is on another server")
        if not url.path.startswith(base + "/restore/") or url.path.rstrip("/") == base + "/restore":
            raise Forbidden(f"a version can only be restored, by MOVE to {base}/restore/target")

    @staticmethod
    def _entry(href: str, node: Node, v: versions.VersionInfo) -> Entry:
        props: dict[PropName, str] = {
            (DAV, "resourcetype"): "",
            (DAV, "displayname"): escape(node.name),
            (DAV, "getlastmodified"): http_date(v.mtime),
            (DAV, "getcontentlength"): str(v.size),
            (DAV, "getcontenttype"): escape(node.content_type or "application/octet-stream"),
            (DAV, "getetag"): f'"{v.etag}"',
            (NC, "version-label"): "",
        }
        return Entry(f"{href}{quote(v.name, safe='')}", props)
