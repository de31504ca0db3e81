# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads under /remote.php/dav/uploads/USER/ID/ (Nextcloud "chunking" v1 and v2 on one
endpoint; protocol notes §7.2, §7.3).

- ``MKCOL ID`` (optional ``OC-Total-Length``, ``Destination``) → 201; 405 if it exists; 507 if the
  declared length does not fit.
- ``PUT ID/NAME`` → 201, streamed into the core; any part names (nextcloudcmd's 16-digit indexes,
  owncloudcmd's byte offsets, v2's 1..N, Android's 6 digits, rclone's ``start-end`` ranges).
- ``PROPFIND ID`` (Depth 0/1) → 207 listing the parts, so an interrupted upload resumes.
- ``MOVE ID/.file`` + ``Destination`` → 201/204 with ETag, OC-ETag, OC-FileId; honours
  ``OC-Total-Length``/``OC-Total-File-Length``, ``If-Match`` (on the destination), ``Overwrite``,
  ``X-OC-Mtime``, ``OC-Checksum`` and the WebDAV ``If`` header, which core evaluates inside the
  assembly's commit with the same evaluator as WebDAV's (untagged lists are about ``.file``, which
  has no state; tagged lists about any path of the user's files). A new destination name must pass
  the server's naming policy (400 otherwise).
- ``DELETE ID`` → 204. GET of a part → 405 (parts cannot be downloaded, as in v2).
Only the user named in the URL may touch their uploads (403 otherwise); unknown ids → 404. The
prefix and user are matched on the raw path (an escaped prefix or a user segment with a slash: 404).
Ids and part names are names (at most 255 bytes: 400 beyond); they never become file names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import InvalidPath, decode_url_path, split_path
from cartable.core import bounds
from cartable.core import uploads as core_uploads
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import CartableError, Forbidden, InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.core.preconditions import Preconditions
from cartable.dav.context import Dialect, client_op, run
from cartable.dav.errors import funnel
from cartable.dav.ifheader import parse_if, predicate
from cartable.dav.propfind import parse_propfind
from cartable.dav.routes import FILES_PREFIX, LEGACY_PREFIX, DavApp
from cartable.dav.write import parse_mtime, stream_body
from cartable.dav.xml import escape
from cartable.http.basic import authenticate
from cartable.http.bodies import read_limited
from cartable.http.conditional import etag_list
from cartable.http.headers import bounded
from cartable.nextcloud.upload_xml import render_upload

__all__ = ["UploadsApp", "UPLOADS_PREFIX"]

log = logging.getLogger("cartable.nextcloud.uploads")

UPLOADS_PREFIX = "/remote.php/dav/uploads/"
_BUFFER = 4 * 1024 * 1024
_ALLOW_COLLECTION = "OPTIONS, MKCOL, PROPFIND, DELETE"
_ALLOW_PART = "OPTIONS, PUT, PROPFIND, MOVE"
_INT64_MAX = 2**63 - 1


@dataclass
class _Req:
    request: Request
    core: Core
    principal: Principal
    key: str | None
    name: str | None
    path: str  # the request's URL path, percent-encoded as the client sent it
    dialect: Dialect

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


def _int_header(req: _Req, name: str) -> int | None:
    raw = req.header(name)
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit() or int(raw) > _INT64_MAX:
        raise InvalidInput(f"the {name} header {raw[:40]!r} is not a number of bytes")
    return int(raw)


class UploadsApp:
    def __init__(self, core: Core, auth: Authenticator, dav: DavApp) -> None:
        self.core, self.auth, self.dav = core, auth, dav

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        return await funnel(method, request.url.path, self._handle(request, method))

    async def _handle(self, request: Request, method: str) -> Response:
        raw = request.scope.get("raw_path", request.url.path.encode()).split(b"?", 1)[0].decode("latin-1")
        if method == "OPTIONS":
            return Response(status_code=200, headers={"DAV": "1", "Allow": f"{_ALLOW_COLLECTION}, PUT, MOVE"})
        principal = await authenticate(self.auth, request)
        if not raw.startswith(UPLOADS_PREFIX):
            raise NotFound(f"this is not an uploads URL: use {UPLOADS_PREFIX}{principal.name}/ID/")
        segs = [decode_url_path(s.encode("latin-1")) for s in raw[len(UPLOADS_PREFIX):].split("/") if s]
        if not segs or any("/" in s for s in segs):
            raise NotFound(f"the URL names no user or upload: use {UPLOADS_PREFIX}{principal.name}/ID/")
        if segs[0] != principal.name:
            raise Forbidden(f"user {principal.name!r} cannot access the uploads of {segs[0]!r}")
        if len(segs) > 3:
            raise NotFound("upload collections hold parts only, not folders")
        req = _Req(request, self.core, principal, segs[1] if len(segs) > 1 else None,
                   segs[2] if len(segs) > 2 else None, raw, self.dav.dialect)
        return await self._dispatch(method, req)

    async def _dispatch(self, method: str, req: _Req) -> Response:
        if req.key is None:
            if method == "PROPFIND":
                return await _propfind_root(req)
            return Response("only PROPFIND is supported on the uploads root\n", 405,
                            headers={"Allow": "OPTIONS, PROPFIND"})
        if req.name is None:
            handler = {"MKCOL": _mkcol, "PROPFIND": _propfind, "DELETE": _delete}.get(method)
            allow = _ALLOW_COLLECTION
        elif req.name == core_uploads.ASSEMBLE_NAME:
            handler = {"MOVE": _move}.get(method)
            allow = "OPTIONS, MOVE"
        else:
            handler = {"PUT": _put, "PROPFIND": _propfind}.get(method)
            allow = _ALLOW_PART
        if handler is None:
            return Response(f"{method} is not supported here\n", 405, headers={"Allow": allow})
        return await handler(req)


async def _propfind_root(req: _Req) -> Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:"><d:response>'
            f"<d:href>{escape(req.path.rstrip('/') + '/')}</d:href><d:propstat><d:prop>"
            "<d:resourcetype><d:collection/></d:resourcetype></d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>\n")
    return Response(body, 207, media_type="application/xml; charset=utf-8")


async def _mkcol(req: _Req) -> Response:
    assert req.key is not None
    if req.header("content-length") not in (None, "0") or req.header("transfer-encoding"):
        if await req.request.body():
            return Response("MKCOL with a request body is not supported\n", status_code=415)
    destination = req.header("destination")
    dst_parts: tuple[str, ...] | None = None
    if destination:
        try:
            dst_parts = _destination_parts(req, destination)
        except (CartableError, InvalidPath):
            dst_parts = None  # checked for real at MOVE time
    await run(core_uploads.begin, req.core, req.principal, req.key, _int_header(req, "OC-Total-Length"),
              destination, dst_parts=dst_parts)
    return Response(status_code=201)


async def _propfind(req: _Req) -> Response:
    assert req.key is not None
    depth = (req.header("depth") or "1").strip().lower()
    if depth not in ("0", "1", "infinity"):
        raise InvalidInput(f"Depth {depth!r} is not 0, 1 or infinity")
    mode, names = parse_propfind(await read_limited(req.request, 1024 * 1024))
    info = await run(core_uploads.list_parts, req.core, req.principal, req.key)
    base = req.path if req.name is None else req.path.rsplit("/", 1)[0]
    body = render_upload(base, info, req.name, depth, mode, names)
    if body is None:
        raise NotFound(f"upload {req.key!r} has no part {req.name!r}")
    return Response(body, 207, media_type="application/xml; charset=utf-8")


async def _delete(req: _Req) -> Response:
    assert req.key is not None
    await run(core_uploads.abort, req.core, req.principal, req.key)
    return Response(status_code=204)


async def _put(req: _Req) -> Response:
    assert req.key is not None and req.name is not None
    if req.header("content-range"):
        raise InvalidInput("partial PUT with Content-Range is not supported")
    writer = await run(core_uploads.PartWriter, req.core, req.principal, req.key, req.name,
                       length=_int_header(req, "Content-Length"))
    committed = False
    try:
        await stream_body(req.request, writer.write)
        await run(writer.commit)
        committed = True
    finally:
        if not committed:
            await run(writer.abandon)
    return Response(status_code=201)


def _tree_parts(req: _Req, url: str) -> tuple[str, ...] | None:
    """The path inside the user's files of a URL or absolute path; None when it is elsewhere.
    InvalidPath for a hostile path."""
    path = urlsplit(url.strip()).path
    if path.startswith(FILES_PREFIX):
        user_enc, _, rest = path[len(FILES_PREFIX):].partition("/")
        if decode_url_path(user_enc.encode("latin-1", "replace")) != req.principal.name:
            return None
    elif path == LEGACY_PREFIX or path.startswith(LEGACY_PREFIX + "/"):
        rest = path[len(LEGACY_PREFIX):]
    else:
        return None
    return split_path(decode_url_path(rest.encode("latin-1", "replace")))


def _destination_parts(req: _Req, destination: str) -> tuple[str, ...]:
    """The path inside the user's files of a Destination (absolute path or full URL)."""
    parts = _tree_parts(req, destination)
    if parts is None:
        raise Forbidden(f"Destination {destination!r} is not inside {FILES_PREFIX}{req.principal.name}/")
    if not parts:
        raise Forbidden("an upload cannot replace the root folder")
    return parts


def _tagged_parts(req: _Req, url: str) -> tuple[str, ...] | None:
    try:
        return _tree_parts(req, url)
    except InvalidPath:
        return None


async def _move(req: _Req) -> Response:
    assert req.key is not None
    destination = req.header("destination")
    if not destination:
        info = await run(core_uploads.list_parts, req.core, req.principal, req.key)
        destination = info.destination
    if not destination:
        raise InvalidInput("MOVE of .file needs a Destination header")
    dst = _destination_parts(req, destination)
    totals = {v for v in (_int_header(req, "OC-Total-Length"), _int_header(req, "OC-Total-File-Length"))
              if v is not None}
    if len(totals) > 1:
        raise InvalidInput("OC-Total-Length and OC-Total-File-Length disagree")
    ifh = parse_if(req.header("if"))
    overwrite = (req.header("overwrite") or "T").strip().upper() != "F"
    # If-Match is about the destination; the If header's untagged lists about .file (no state).
    pre = Preconditions(etag_list(req.header("if-match")), None if overwrite else ["*"],
                        predicate(ifh, None, lambda url: _tagged_parts(req, url)))
    mtime = parse_mtime(req.header("x-oc-mtime"))
    op = client_op(req.request.headers, req.principal, ifh.tokens)
    checksum = bounded("OC-Checksum", req.header("oc-checksum"), bounds.CHECKSUMS)
    result = await run(core_uploads.assemble, req.core, op, req.key, dst,
                       total_length=next(iter(totals), None), mtime=mtime,
                       checksum=checksum, preconditions=pre)
    headers = req.dialect.entity_headers(result.node)
    if mtime is not None:
        headers["X-OC-MTime"] = "accepted"
    return Response(status_code=201 if result.created else 204, headers=headers)
