# SPDX-License-Identifier: EUPL-1.2
"""WebDAV through a public link, as Nextcloud serves it:

- ``/public.php/dav/files/{token}/...``: the token in the path; a password-protected link takes
  its password by HTTP Basic (any user name);
- ``/public.php/webdav/...`` (legacy, what rclone and older clients use): HTTP Basic with the
  token as the user name and the link's password (or nothing) as the password.

The request runs the ordinary WebDAV handlers (dav/) with the link's scoped principal
(core/shares.py ``enter``): its root is the shared item, its permissions the link's, and core
refuses what they do not allow (core/permissions.py). Methods that belong to accounts (REPORT,
SEARCH, PATCH) are not offered. Each GET of a file counts one download against the link's limit.
A Destination (MOVE, COPY) must lie under the same link's URL: anything else is 403. A wrong or
missing password is 401 with a Basic challenge, throttled as logins are; an unknown or removed
token 404; an expired link 410."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import decode_url_path, split_path
from cartable.core import files, shares
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import NotFound, Unauthenticated
from cartable.core.model import Principal
from cartable.dav import read
from cartable.dav.context import DavRequest, Dialect, Handler, client_op, run
from cartable.dav.errors import funnel
from cartable.dav.ifheader import parse_if
from cartable.dav.routes import DavApp
from cartable.http.accesslog import note_user
from cartable.http.basic import client_address

__all__ = ["PublicDavApp", "PUBLIC_FILES_PREFIX", "PUBLIC_LEGACY_PREFIX", "LINK_METHODS", "link_principal",
           "basic_pair"]

PUBLIC_FILES_PREFIX = "/public.php/dav/files/"
PUBLIC_LEGACY_PREFIX = "/public.php/webdav"
LINK_METHODS = ("GET", "HEAD", "PUT", "MKCOL", "DELETE", "PROPFIND", "PROPPATCH", "COPY", "MOVE", "LOCK", "UNLOCK")


def basic_pair(request: Request) -> tuple[str | None, str | None]:
    """(user, password) of the request's Basic credentials, (None, None) without any. The user
    name may be empty: a link's password comes with any user name."""
    header = request.headers.get("authorization")
    if not header:
        return None, None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("a public link takes its password by HTTP Basic (any user name)")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 UTF-8") from None
    user, _, password = decoded.partition(":")
    return user, password


async def link_principal(core: Core, auth: Authenticator, request: Request, token: str,
                         password: str | None) -> Principal:
    """The link's scoped principal (core/shares.py enter, in a worker thread: it may run argon2;
    the throttling delay before a password is checked is awaited here, holding no thread); the
    request log names the link, never its token."""
    address = client_address(request)
    if password:  # the throttling wait holds no thread
        delay = await run(shares.password_delay, core, auth, token, address)
        if delay > 0:
            await anyio.sleep(delay)
    principal = await run(lambda: shares.enter(core, auth, token, password, address, sleep=False))
    note_user(request.scope, f"link:{principal.link_id}")
    return principal


async def _get_counted(ctx: DavRequest) -> Response:
    """GET, counting a file's download against the link's limit first."""
    node = await run(files.stat, ctx.core, ctx.principal, ctx.parts)
    if not node.is_dir:
        await run(shares.count_download, ctx.core, ctx.principal, "/" + "/".join(ctx.parts),
                  client_address(ctx.request))
    return await read.do_get(ctx)


class PublicDavApp:
    def __init__(self, core: Core, auth: Authenticator, dav: DavApp) -> None:
        self.core, self.auth, self.config = core, auth, dav.config
        base = dav.dialect
        handlers: dict[str, Handler] = {m: h for m, h in base.handlers.items() if m in LINK_METHODS}
        handlers["GET"] = _get_counted
        # The same properties, setters and zip as the account WebDAV app (built before this one).
        self.dialect = Dialect(handlers=handlers, props=base.props, settable=base.settable, setters=base.setters,
                               header_hooks=base.header_hooks, folder_get=base.folder_get)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), "/public.php/...", self._handle(request))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        method = request.method.upper()
        if method == "OPTIONS":
            return await read.do_options()
        raw = request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0].decode("latin-1")
        user, password = basic_pair(request)
        if raw.startswith(PUBLIC_FILES_PREFIX):
            token_enc, _, rest = raw[len(PUBLIC_FILES_PREFIX):].partition("/")
            token = decode_url_path(token_enc.encode("latin-1"))
            base = PUBLIC_FILES_PREFIX + quote(token, safe="")
        elif raw == PUBLIC_LEGACY_PREFIX or raw.startswith(PUBLIC_LEGACY_PREFIX + "/"):
            if user is None:
                raise Unauthenticated("send the link's token as the user name (HTTP Basic), and its password "
                                      "if it has one")
            token, rest, base = user, raw[len(PUBLIC_LEGACY_PREFIX):], PUBLIC_LEGACY_PREFIX
        else:
            raise NotFound("public links live at /public.php/dav/files/TOKEN/")
        if not token or "/" in token:
            raise NotFound("the URL names no link: /public.php/dav/files/TOKEN/")
        principal = await link_principal(self.core, self.auth, request, token, password)
        parts = split_path(decode_url_path(rest.encode("latin-1")))
        handler = self.dialect.handlers.get(method)
        if handler is None:
            return Response(f"method {method} is not available through a public link\n", status_code=405,
                            headers={"Allow": "OPTIONS, " + ", ".join(LINK_METHODS)})
        ifh = parse_if(request.headers.get("if"))
        ctx = DavRequest(request, self.core, self.auth, self.config, principal, parts, base, ifh,
                         client_op(request.headers, principal, ifh.tokens), self.dialect, raw)
        return await handler(ctx)
