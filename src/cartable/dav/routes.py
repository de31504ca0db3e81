# SPDX-License-Identifier: EUPL-1.2
"""The WebDAV ASGI app: /remote.php/dav/files/{user}/... and the legacy /remote.php/webdav/...

Each request: authenticate, resolve the path from the raw (still percent-encoded) URL, parse the
If header, dispatch on the method; core errors become statuses in one place (dav/errors.py).
Preconditions (If, If-Match, If-None-Match) are handed to core, which checks them inside the
write's own transaction.

The prefix is matched on the raw path, as the rest of it is parsed: a prefix spelled with
percent-escapes ("/remote.php/dav%2Ffiles/..."), a user segment that decodes to something with a
slash, or a user name in another case than the caller's, is a 404 (another user's name: 403),
never a path silently shifted inside the caller's tree."""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import decode_url_path, split_path
from cartable.core import usershares
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, NotFound, QuotaExceeded
from cartable.core.model import Principal
from cartable.dav import copymove, locking, mounts, propfind, proppatch, read, write
from cartable.dav.context import DavConfig, DavRequest, Dialect, Handler, client_op, href_for, run_hot
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


class DavApp:
    def __init__(self, core: Core, auth: Authenticator, config: DavConfig | None = None) -> None:
        self.core, self.auth, self.config = core, auth, config or DavConfig()
        self.dialect = Dialect(handlers=dict(BASE_HANDLERS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    def _split(self, raw: str, principal: Principal) -> tuple[str, str]:
        """(the user's base URL path, the rest of the raw path below it)."""
        own = FILES_PREFIX + quote(principal.name, safe="")
        if raw.startswith(FILES_PREFIX) or raw == FILES_PREFIX.rstrip("/"):
            user_enc, _, rest = raw[len(FILES_PREFIX):].partition("/")
            user = decode_url_path(user_enc.encode("latin-1"))
            if not user or "/" in user:
                raise NotFound(f"the URL names no user: your files are at {own}/")
            if user != principal.name:
                if user.casefold() == principal.name.casefold():
                    raise NotFound(f"there are no files under {user!r}: yours are at {own}/")
                raise Forbidden(f"user {principal.name!r} cannot access the files of {user!r}")
            return own, rest
        if raw == LEGACY_PREFIX or raw.startswith(LEGACY_PREFIX + "/"):
            return LEGACY_PREFIX, raw[len(LEGACY_PREFIX):]
        raise NotFound(f"this is not a WebDAV URL: your files are at {own}/")

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        return await funnel(method, request.url.path, self._handle(request, method))

    async def _handle(self, request: Request, method: str) -> Response:
        if method == "OPTIONS":
            return await read.do_options()
        raw = request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0].decode("latin-1")
        principal = await authenticate(self.auth, request)
        base, rest = self._split(raw, principal)
        parts = split_path(decode_url_path(rest.encode("latin-1")))
        handler = self.dialect.handlers.get(method)
        if handler is None:
            return Response(f"method {method} is not supported here\n", status_code=405,
                            headers={"Allow": read.ALLOW})
        ifh = parse_if(request.headers.get("if"))
        entered = await run_hot(self.core, usershares.enter, self.core, principal, parts)
        if entered is not None:
            mount_ctx = DavRequest(request, self.core, self.auth, self.config, principal, parts, base, ifh,
                                   client_op(request.headers, principal, ifh.tokens), self.dialect, raw)
            if not entered.parts and method in ("DELETE", "MOVE"):
                return await mounts.on_mount_point(mount_ctx, method, entered)
            await mounts.refuse_crossing(mount_ctx, method, entered)
            principal, parts = entered.principal, entered.parts
            base = href_for(base, entered.mount_parts, False)
        else:
            await mounts.refuse_crossing(DavRequest(request, self.core, self.auth, self.config, principal, parts,
                                                    base, ifh, client_op(request.headers, principal, ifh.tokens),
                                                    self.dialect, raw), method, None)
        op = client_op(request.headers, principal, ifh.tokens)
        ctx = DavRequest(request, self.core, self.auth, self.config, principal, parts, base, ifh, op,
                         self.dialect, raw)
        if entered is None:
            return await handler(ctx)
        try:
            return await handler(ctx)
        except QuotaExceeded as exc:  # the owner's space is charged: say whose storage is full
            raise QuotaExceeded(f"the storage of the owner of this shared folder is full ({exc}); nothing was "
                                "written: ask them to make room") from None
