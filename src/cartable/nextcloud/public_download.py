# SPDX-License-Identifier: EUPL-1.2
"""The plain download URL of a public link, as Nextcloud gives it out:

- ``/s/{token}`` redirects to ``/s/{token}/download`` (there is no web page yet);
- ``/s/{token}/download``: a file link sends the file; a folder link sends the folder as a
  streamed zip (nextcloud/archive.py), or only what ``?path=/sub`` and ``?files=`` name (one
  name, or a JSON list of names, inside ``path``); a single file named by ``files`` is sent as
  itself. Each answer counts one download against the link's limit.

A password-protected link takes its password by HTTP Basic (any user name): a browser asks for
it. The bytes always come as an attachment with nosniff and a sandboxing Content-Security-Policy
(http/downloads.py): content served through a link never runs as a page of this site."""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cartable.common.paths import decode_url_path, split_path
from cartable.core import archive, files, reads, shares
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.dav.errors import funnel
from cartable.http.basic import client_address
from cartable.http.downloads import SAFE_HEADERS, attachment, download_headers
from cartable.nextcloud.archive import zip_stream
from cartable.nextcloud.public_dav import basic_pair, link_principal

__all__ = ["LinkDownloadApp", "SHARE_PREFIX"]

SHARE_PREFIX = "/s/"


def _names(raw: str | None) -> list[str] | None:
    """``files`` as Nextcloud accepts it: one name, or a JSON list of names."""
    if not raw:
        return None
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidInput('files must be a name or a JSON list of names, e.g. files=["a.txt","b"]') from None
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise InvalidInput("files must be a JSON list of names (strings)")
        return value
    return [raw]


class LinkDownloadApp:
    def __init__(self, core: Core, auth: Authenticator) -> None:
        self.core, self.auth = core, auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), "/s/...", self._handle(request))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        raw = request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0].decode("latin-1")
        token_enc, _, rest = raw[len(SHARE_PREFIX):].partition("/")
        token = decode_url_path(token_enc.encode("latin-1"))
        if not token or rest not in ("", "download"):
            raise NotFound("a link's download URL is /s/TOKEN/download")
        if request.method.upper() not in ("GET", "HEAD"):
            return Response("only GET and HEAD here\n", status_code=405, headers={"Allow": "GET, HEAD"})
        if rest == "":
            return RedirectResponse(SHARE_PREFIX + quote(token, safe="") + "/download", status_code=303)
        _, password = basic_pair(request)
        principal = await link_principal(self.core, self.auth, request, token, password)
        sub = split_path(request.query_params.get("path") or "/")
        names = _names(request.query_params.get("files"))
        node = await run(files.stat, self.core, principal, sub)
        if names is not None and len(names) == 1 and node.is_dir:
            one = (*sub, *split_path(names[0]))
            if not (await run(files.stat, self.core, principal, one)).is_dir:
                return await self._file(request, principal, one)
        if not node.is_dir:
            return await self._file(request, principal, sub)
        members = [split_path(n) for n in names] if names is not None else None
        name, entries = await run(archive.plan, self.core, principal, sub, members)
        if request.method.upper() == "GET":
            await run(shares.count_download, self.core, principal, "/" + "/".join(sub) + " (zip)",
                      client_address(request))
        headers = {**SAFE_HEADERS, "Content-Disposition": attachment(name + ".zip"), "X-Accel-Buffering": "no"}
        if request.method.upper() == "HEAD":
            return Response(status_code=200, headers=headers, media_type="application/zip")
        return StreamingResponse(iterate_in_threadpool(zip_stream(self.core, principal, entries)),
                                 headers=headers, media_type="application/zip")

    async def _file(self, request: Request, principal: Principal, parts: tuple[str, ...]) -> Response:
        content = await run(reads.open_content, self.core, principal, parts)
        headers = {**download_headers(content.node.name), "Content-Length": str(content.size)}
        media = content.node.content_type or "application/octet-stream"
        if request.method.upper() == "HEAD":
            return Response(status_code=200, headers=headers, media_type=media)
        await run(shares.count_download, self.core, principal, "/" + "/".join(parts), client_address(request))
        if content.inline is not None:
            return Response(content.inline, headers=headers, media_type=media)
        return StreamingResponse(iterate_in_threadpool(content.iter_range()), headers=headers, media_type=media)
