# SPDX-License-Identifier: EUPL-1.2
"""The WebDAV ASGI app: /remote.php/dav/files/{user}/... and the legacy /remote.php/webdav/...

Each request: authenticate, resolve the path from the raw (still percent-encoded) URL, parse the
If header, dispatch on the method; core errors become statuses in one place (dav/errors.py)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import decode_url_path, split_path
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, NotFound
from cartable.core.tree import Op
from cartable.dav import copymove, locking, propfind, proppatch, read, write
from cartable.dav.context import DavConfig, DavRequest, Dialect, Handler
from cartable.dav.errors import funnel
from cartable.dav.ifheader import parse_if
from cartable.http.basic import authenticate

__all__ = ["DavApp", "FILES_PREFIX", "LEGACY_PREFIX", "BASE_HANDLERS"]

log = logging.getLogger("cartable.dav")

FILES_PREFIX = "/remote.php/dav/files/"
LEGACY_PREFIX = "/remote.php/webdav"

BASE_HANDLERS: dict[str, Handler] = {
    "GET": read.do_get,
    "HEAD": read.do_head,
    "PUT": write.do_put,
    "MKCOL": write.do_mkcol,
    "DELETE": write.do_delete,
    "PROPFIND": propfind.do_propfind,
    "PROPPATCH": proppatch.do_proppatch,
    "COPY": copymove.do_copy,
    "MOVE": copymove.do_move,
    "LOCK": locking.do_lock,
    "UNLOCK": locking.do_unlock,
}
_NO_IF_CHECK = {"GET", "HEAD", "PROPFIND"}


class DavApp:
    def __init__(self, core: Core, auth: Authenticator, config: DavConfig | None = None) -> None:
        self.core, self.auth, self.config = core, auth, config or DavConfig()
        self.dialect = Dialect(handlers=dict(BASE_HANDLERS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    def _split(self, raw: str) -> tuple[str | None, str, str]:
        """(user in the URL or None for the legacy root, base prefix, rest of the path)."""
        if raw.startswith(FILES_PREFIX):
            user_enc, _, rest = raw[len(FILES_PREFIX):].partition("/")
            user = decode_url_path(user_enc.encode("latin-1"))
            if not user:
                raise NotFound("the URL names no user: use /remote.php/dav/files/USER/")
            return user, FILES_PREFIX + user_enc, rest
        return None, LEGACY_PREFIX, raw[len(LEGACY_PREFIX):]

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        return await funnel(method, request.url.path, self._handle(request, method))

    async def _handle(self, request: Request, method: str) -> Response:
        if method == "OPTIONS":
            return await read.do_options()
        raw = request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0]
        user, base, rest = self._split(raw.decode("latin-1"))
        client = request.client.host if request.client else ""
        principal = await authenticate(self.auth, request.headers.get("authorization"), client)
        if user is not None and user != principal.name:
            raise Forbidden(f"user {principal.name!r} cannot access the files of {user!r}")
        base = FILES_PREFIX + quote(principal.name, safe="") if user is not None else base
        parts = split_path(decode_url_path(rest.encode("latin-1")))
        handler = self.dialect.handlers.get(method)
        if handler is None:
            return Response(f"method {method} is not supported here\n", status_code=405,
                            headers={"Allow": read.ALLOW})
        ifh = parse_if(request.headers.get("if"))
        op = Op(principal, ifh.tokens, request.headers.get("x-cartable-device"),
                request.headers.get("x-cartable-operation"))
        ctx = DavRequest(request, self.core, self.auth, self.config, principal, parts, base, ifh, op,
                         self.dialect, raw.decode("latin-1"))
        if method not in _NO_IF_CHECK and method != "LOCK":
            await locking.check_if_header(ctx)
        return await handler(ctx)
