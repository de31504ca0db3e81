# SPDX-License-Identifier: EUPL-1.2
"""The trash over WebDAV, as Nextcloud serves it (apps/files_trashbin/lib/Sabre):

- ``PROPFIND /remote.php/dav/trashbin/USER/trash/`` (Depth 1) lists the trashed items, each named
  ``NAME.d<TIMESTAMP>``, with ``nc:trashbin-filename``, ``nc:trashbin-original-location`` (its
  path when deleted, from the user's root), ``nc:trashbin-deletion-time`` (POSIX seconds),
  ``nc:trashbin-title``, ``nc:trashbin-deleted-by-id``/``-display-name``, the usual file
  properties and ``oc:permissions`` ``GD``. A trashed folder can be browsed (PROPFIND below it) and
  a trashed file downloaded (GET).
- ``MOVE trash/ITEM`` with ``Destination: .../trashbin/USER/restore/ANYNAME`` restores the item
  (201) where core/trash.py says: its place, beside it as "NAME (restored)", or the root. The
  name in the destination is ignored, as Nextcloud ignores it.
- ``DELETE trash/ITEM`` purges one item (204); ``DELETE trash/`` empties the trash (204).
A part of a trashed folder may be restored alone (MOVE of ``trash/ITEM/PATH``: to the root, its
folder being in the trash) but not purged alone (403). Another user's trash is 403; an unknown
item 404."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.timefmt import http_date
from cartable.core import trash
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, InvalidInput
from cartable.core.model import Node, Principal
from cartable.core.tree import Op
from cartable.dav.context import DavConfig, client_op, run
from cartable.dav.errors import funnel
from cartable.dav.xml import DAV, NC, OC, escape
from cartable.http.basic import authenticate
from cartable.nextcloud import davlists
from cartable.nextcloud.davlists import COLLECTION, Entry, PropName
from cartable.nextcloud.props import oc_id

__all__ = ["TrashbinApp", "TRASHBIN_PREFIX"]

TRASHBIN_PREFIX = "/remote.php/dav/trashbin/"
_ALLOW_ITEM = "OPTIONS, PROPFIND, GET, HEAD, MOVE, DELETE"


class TrashbinApp:
    def __init__(self, core: Core, auth: Authenticator, instance: str, config: DavConfig | None = None) -> None:
        self.core, self.auth, self.instance = core, auth, instance
        self.config = config or DavConfig()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), request.url.path, self.handle(request))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        if method == "OPTIONS":
            return Response(status_code=200, headers={"DAV": "1", "Allow": _ALLOW_ITEM})
        principal = await authenticate(self.auth, request)
        segs = davlists.segments(davlists.raw_path(request), TRASHBIN_PREFIX, principal)
        base = TRASHBIN_PREFIX + quote(principal.name, safe="")
        op = client_op(request.headers, principal, frozenset())
        if len(segs) == 1:
            return await self._home(request, method, base)
        if segs[1] == "restore" and len(segs) == 2 and method == "PROPFIND":
            return await self._collection(request, base + "/restore/", "restore", [])
        if segs[1] != "trash":
            raise Forbidden(f"only {base}/trash/ holds items; restore by MOVE to {base}/restore/NAME")
        if len(segs) == 2:
            return await self._root(request, method, op, base)
        return await self._item(request, method, op, base, segs[2], tuple(segs[3:]))

    async def _collection(self, request: Request, href: str, name: str, children: list[Entry]) -> Response:
        deep, mode, names = await davlists.propfind_request(request, self.config.max_xml_body)
        return davlists.multistatus([davlists.collection(href, name), *(children if deep else [])], mode, names)

    async def _home(self, request: Request, method: str, base: str) -> Response:
        if method != "PROPFIND":
            return Response(f"{method} is not supported here\n", 405, headers={"Allow": "OPTIONS, PROPFIND"})
        kids = [davlists.collection(base + "/trash/", "trash"), davlists.collection(base + "/restore/", "restore")]
        return await self._collection(request, base + "/", base.rsplit("/", 1)[-1], kids)

    async def _root(self, request: Request, method: str, op: Op, base: str) -> Response:
        if method == "DELETE":
            await run(trash.empty, self.core, op)
            return Response(status_code=204)
        if method != "PROPFIND":
            return Response(f"{method} is not supported on the trash\n", 405,
                            headers={"Allow": "OPTIONS, PROPFIND, DELETE"})
        items = await run(trash.items, self.core, op.principal)
        kids = [self._entry(base + "/trash/" + quote(i.name, safe="") + ("/" if i.node.is_dir else ""),
                            i, i.node, (), op.principal) for i in items]
        return await self._collection(request, base + "/trash/", "trash", kids)

    async def _item(self, request: Request, method: str, op: Op, base: str, name: str,
                    inside: tuple[str, ...]) -> Response:
        if method == "PROPFIND":
            deep, mode, names = await davlists.propfind_request(request, self.config.max_xml_body)
            item, node, kids = await run(trash.lookup, self.core, op.principal, name, inside)
            href = base + "/trash/" + "/".join(quote(p, safe="") for p in (name, *inside))
            entries = [self._entry(href + ("/" if node.is_dir else ""), item, node, inside, op.principal)]
            if deep:
                entries += [self._entry(href + "/" + quote(k.name, safe="") + ("/" if k.is_dir else ""), item, k,
                                        (*inside, k.name), op.principal) for k in kids]
            return davlists.multistatus(entries, mode, names)
        if method in ("GET", "HEAD"):
            content = await run(trash.open_file, self.core, op.principal, name, inside)
            node = content.node
            return davlists.download(content, node.name, node.etag, node.content_type, method == "HEAD",
                                     {"Last-Modified": http_date(node.mtime)})
        if inside and method == "DELETE":
            raise Forbidden("a part of a trashed folder cannot be deleted alone; delete the whole folder")
        if method == "DELETE":
            await run(trash.purge, self.core, op, name)
            return Response(status_code=204)
        if method == "MOVE":
            self._check_restore_destination(request, base)
            await run(trash.restore, self.core, op, name, inside)
            return Response(status_code=201)
        return Response(f"{method} is not supported on a trashed item\n", 405, headers={"Allow": _ALLOW_ITEM})

    def _check_restore_destination(self, request: Request, base: str) -> None:
        raw = request.headers.get("destination")
        if not raw:
            raise InvalidInput(f"MOVE needs a Destination header: {base}/restore/NAME restores the item")
        url = urlsplit(raw)
        if url.netloc and url.netloc != (request.headers.get("host") or url.netloc):
            raise Forbidden(f"the destination {raw} is on another server")
        if not url.path.startswith(base + "/restore/") or url.path.rstrip("/") == base + "/restore":
            raise Forbidden(f"a trashed item can only be restored, by MOVE to {base}/restore/NAME")

    def _entry(self, href: str, item: trash.TrashItem, node: Node, inside: tuple[str, ...],
               principal: Principal) -> Entry:
        rec = item.record
        location = "/".join((rec.location, *inside))
        props: dict[PropName, str] = {
            (NC, "trashbin-filename"): escape(node.name),
            (NC, "trashbin-original-location"): escape(location),
            (NC, "trashbin-title"): escape(node.name),
            (NC, "trashbin-deletion-time"): str(rec.deleted_at),
            (DAV, "displayname"): escape(node.name),
            (DAV, "resourcetype"): COLLECTION if node.is_dir else "",
            (DAV, "getlastmodified"): http_date(node.mtime),
            (DAV, "getetag"): f'"{node.etag}"',
            (OC, "size"): str(node.size),
            (OC, "fileid"): str(node.id),
            (OC, "id"): oc_id(node.id, self.instance),
            (OC, "permissions"): "GD",
            (NC, "has-preview"): "false",
            (NC, "mount-type"): "",
        }
        if rec.deleted_by == principal.user_id:
            props[(NC, "trashbin-deleted-by-id")] = escape(principal.name)
            props[(NC, "trashbin-deleted-by-display-name")] = escape(principal.display_name)
        if not node.is_dir:
            props[(DAV, "getcontentlength")] = str(node.size)
            props[(DAV, "getcontenttype")] = escape(node.content_type or "application/octet-stream")
        return Entry(href, props)
