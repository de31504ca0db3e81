# SPDX-License-Identifier: EUPL-1.2
"""The DAV root, ``/remote.php/dav/``: DAV SEARCH (RFC 5323 basicsearch) over the caller's own
files, as the Nextcloud mobile apps (recent, favorites, media, the search box) and the web use it.

``SEARCH /remote.php/dav/`` with a ``text/xml`` body (nextcloud/search_xml.py) answers 207 with
one entry per result, ``/remote.php/dav/files/USER/path``, with the selected properties. The
scope must be a folder of the caller's tree: another user's tree is 403, a missing folder 404.
OPTIONS advertises ``DASL: <DAV:basicsearch>``. Anything else below the root that no other
route serves is 404."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import decode_url_path, split_path
from cartable.core import search
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.dav.context import DavRequest, run
from cartable.dav.errors import funnel
from cartable.dav.ifheader import parse_if
from cartable.dav.routes import FILES_PREFIX, DavApp
from cartable.http.basic import authenticate
from cartable.http.bodies import read_limited
from cartable.nextcloud.multistatus import render_nodes
from cartable.nextcloud.search_xml import parse_search

__all__ = ["DavRootApp", "DAV_ROOT", "scope_parts"]

DAV_ROOT = "/remote.php/dav/"
_ROOT_PATHS = ("/remote.php/dav", "/remote.php/dav/")


def scope_parts(href: str, principal: Principal) -> tuple[str, ...]:
    """The caller's path named by a search scope href: ``/files/USER/...``, optionally after
    ``/remote.php/dav``, or a full URL. Forbidden for another user's files."""
    path = urlsplit(href).path
    if path.startswith("/remote.php/dav/"):
        path = path[len("/remote.php/dav"):]
    if not path.startswith("/files/"):
        raise InvalidInput(f"the search scope {href!r} is not /files/USER/... in the DAV tree")
    user_enc, _, rest = path[len("/files/"):].partition("/")
    user = decode_url_path(user_enc.encode("latin-1", "replace"))
    if user != principal.name:
        raise Forbidden(f"user {principal.name!r} cannot search the files of {user!r}")
    return split_path(decode_url_path(rest.encode("latin-1", "replace")))


class DavRootApp:
    def __init__(self, core: Core, auth: Authenticator, dav: DavApp) -> None:
        self.core, self.auth, self.dav = core, auth, dav

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), request.url.path, self.handle(request))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        if request.url.path not in _ROOT_PATHS:
            raise NotFound(f"nothing at {request.url.path}; files live under {FILES_PREFIX}USER/")
        if method == "OPTIONS":
            return Response(status_code=200, headers={"DAV": "1, 2", "DASL": "<DAV:basicsearch>",
                                                      "Allow": "OPTIONS, SEARCH", "Content-Length": "0"})
        if method != "SEARCH":
            return Response(f"{method} is not supported on the DAV root; use SEARCH\n", status_code=405,
                            headers={"Allow": "OPTIONS, SEARCH"})
        principal = await authenticate(self.auth, request)
        query = parse_search(await read_limited(request, self.dav.config.max_xml_body), principal.name)
        parts = scope_parts(query.scope, principal)
        found = await run(search.search, self.core, principal, parts, where=query.where, order=query.order,
                          limit=query.limit, offset=query.offset, children_only=query.depth != "infinity")
        ctx = DavRequest(request, self.core, self.auth, self.dav.config, principal, parts,
                         FILES_PREFIX + quote(principal.name, safe=""), parse_if(None), Op(principal),
                         self.dav.dialect)
        body = await run(render_nodes, ctx, found, query.names)
        return Response(body, status_code=207, media_type="application/xml; charset=utf-8")
