# SPDX-License-Identifier: EUPL-1.2
"""Bulk upload: ``POST /remote.php/dav/bulk`` (Nextcloud's BulkUploadPlugin; protocol notes §7.5).

The body is multipart/related (nextcloud/multipart.py); each part is one file with its headers:
``Content-Length`` (required), ``X-File-Path`` (relative to the caller's files root),
``X-File-MD5`` (required, checked), ``X-File-Mtime`` or ``X-OC-Mtime``, and optionally
``OC-Checksum`` (checked and stored, as on PUT). Each file succeeds or fails on its own, and a
success is durable (core/bulk.py commits files in batches, a savepoint each): the answer is 200
with a JSON object keyed by the exact ``X-File-Path`` of each part,
``{"error": false, "etag": "<unquoted>", "fileid": "<oc:id>", "permissions": "GDNVW"}`` (with
``"X-OC-MTime": "accepted"`` when the part gave an mtime, which the desktop client looks for) or
``{"error": true, "message": "..."}``; one failing file (bad MD5 or name, missing folder, quota,
lock) does not fail the others. A malformed or truncated body answers 400 with the same object
for the files before the fault: those were committed, and no file is ever half written.

Limits: a part over ``MAX_PART`` bytes is refused (its bytes are skipped, never held; the desktop
client only bulk-uploads files smaller than its 10 MB chunk size), and a request holds at most
``MAX_PARTS`` parts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures import Future
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import InvalidPath, split_path
from cartable.core.auth import Authenticator
from cartable.core.bulk import BulkWriter
from cartable.core.context import Core
from cartable.core.errors import CartableError, InvalidInput
from cartable.core.model import WriteResult
from cartable.core.tree import Op
from cartable.dav.context import run
from cartable.dav.errors import funnel
from cartable.dav.write import parse_mtime
from cartable.http.basic import authenticate
from cartable.nextcloud.multipart import BadMultipart, MultipartReader, Part, boundary_of
from cartable.nextcloud.props import FILE_PERMISSIONS, oc_id

__all__ = ["BulkApp", "BULK_PATH", "MAX_PART", "MAX_PARTS"]

log = logging.getLogger("cartable.nextcloud.bulk")

BULK_PATH = "/remote.php/dav/bulk"
MAX_PART = 16 * 1024 * 1024
MAX_PARTS = 10_000

Result = dict[str, Any]


def _error(message: str) -> Result:
    return {"error": True, "message": message}


class BulkApp:
    def __init__(self, core: Core, auth: Authenticator, instance: str) -> None:
        self.core, self.auth, self.instance = core, auth, instance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await funnel(request.method.upper(), request.url.path, self.handle(request))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.url.path.rstrip("/") != BULK_PATH:
            return Response("not found\n", status_code=404)
        if request.method.upper() != "POST":
            return Response("only POST is supported on the bulk endpoint\n", status_code=405,
                            headers={"Allow": "POST"})
        principal = await authenticate(self.auth, request)
        boundary = boundary_of(request.headers.get("content-type"))
        op = Op(principal, frozenset(), request.headers.get("x-cartable-device"),
                request.headers.get("x-cartable-operation"))
        writer = BulkWriter(self.core, op)
        reader = MultipartReader(request.stream(), boundary, max_part=MAX_PART, max_parts=MAX_PARTS)
        order: list[str] = []
        results: dict[str, Result | tuple[Future[WriteResult], bool]] = {}
        status, fault = 200, None
        try:
            while (part := await reader.next_part()) is not None:
                path = part.header("x-file-path") or ""
                if path not in results:
                    order.append(path)
                results[path] = await self._one(writer, part)
            await reader.drain()
        except BadMultipart as exc:
            status, fault = 400, str(exc)
        except ClientDisconnect:
            status, fault = 400, "the client went away during the upload"
        await run(writer.flush)  # the files before a fault are committed too, each on its own
        answer = {path: await self._settle(results[path]) for path in order}
        if fault is not None:
            log.info("bulk upload of %s refused at part %d: %s", principal.name, len(order), fault)
            return Response(json.dumps(answer), status_code=status, media_type="application/json",
                            headers={"X-Error-Message": fault.encode("ascii", "replace").decode()})
        return Response(json.dumps(answer), status_code=200, media_type="application/json")

    async def _one(self, writer: BulkWriter, part: Part) -> Result | tuple[Future[WriteResult], bool]:
        """Check one part and hand it to the writer; a failed check is this file's result."""
        if part.body is None:
            return _error(f"the file is {part.length} bytes; a bulk upload takes files up to "
                          f"{MAX_PART} bytes: upload it with PUT")
        try:
            raw = part.header("x-file-path")
            if not raw:
                raise InvalidInput("the part has no X-File-Path")
            parts = split_path(raw)
            if not parts:
                raise InvalidInput("X-File-Path names the root folder, not a file")
            md5 = (part.header("x-file-md5") or "").strip().lower()
            if not md5:
                raise InvalidInput("the part has no X-File-MD5")
            if hashlib.md5(part.body).hexdigest() != md5:
                raise InvalidInput("the file's MD5 is not the X-File-MD5 the client sent; nothing was stored")
            mtime = parse_mtime(part.header("x-file-mtime") or part.header("x-oc-mtime"))
        except (CartableError, InvalidPath) as exc:
            return _error(str(exc))
        checksum = part.header("oc-checksum") or f"MD5:{md5}"
        future = await run(writer.submit, parts, part.body, mtime=mtime, checksum=checksum)
        return future, mtime is not None

    async def _settle(self, result: Result | tuple[Future[WriteResult], bool]) -> Result:
        if isinstance(result, dict):
            return result
        future, with_mtime = result
        try:
            written = await asyncio.wrap_future(future)
        except (CartableError, InvalidPath) as exc:
            return _error(str(exc))
        except Exception:
            log.exception("bulk upload: a file could not be written")
            return _error("internal server error; the file was not stored")
        node = written.node
        answer: Result = {"error": False, "etag": node.etag, "fileid": oc_id(node.id, self.instance),
                          "permissions": FILE_PERMISSIONS}
        if with_mtime:
            answer["X-OC-MTime"] = "accepted"  # the desktop client reads it as it reads PUT's header
        return answer
