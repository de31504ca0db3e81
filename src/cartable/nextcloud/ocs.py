# SPDX-License-Identifier: EUPL-1.2
"""The OCS API under /ocs/v1.php and /ocs/v2.php: capabilities, the current user, app passwords.

v1 answers HTTP 200 with statuscode 100 on success; v2 mirrors the HTTP status (statuscode 200).
JSON when the client asks (format=json or Accept: application/json), XML otherwise, with
Nextcloud's content types: ``application/json; charset=utf-8``; XML is ``text/xml; charset=UTF-8``
on v1 (its legacy OCS answer) and ``application/xml; charset=utf-8`` on v2.

Calls that create or revoke credentials are refused (HTTP 412, "CSRF check failed", as
Nextcloud's SecurityMiddleware answers) unless the request carries ``OCS-APIRequest: true`` (or a
Bearer token): a browser that holds cached Basic credentials cannot be made to send that header
by another site, so it cannot be made to mint or revoke an app password."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import DEFAULT_POLICY, NamePolicy
from cartable.core import accounts, files
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import CartableError, Throttled
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.http.basic import CHALLENGE, authenticate
from cartable.http.errormap import status_for
from cartable.nextcloud.errors import STATUS
from cartable.nextcloud.names import filename_capabilities
from cartable.nextcloud.status import version_info

__all__ = ["OcsApp", "capabilities", "ocs_response", "JSON_TYPE", "XML_TYPE_V1", "XML_TYPE_V2"]

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE_V1 = "text/xml; charset=UTF-8"
XML_TYPE_V2 = "application/xml; charset=utf-8"
# Failures answered with their own HTTP status on v1 too (not 200 + an OCS code).
_ALWAYS_HTTP = (401, 412)

def capabilities(names: NamePolicy = DEFAULT_POLICY, bulk_upload: bool = True) -> dict[str, Any]:
    """Only what cartable really does: the trash (undelete) and versions (with deletion, without
    labels), no sharing yet. Bulk upload when the server offers it (setting bulk_upload)."""
    dav: dict[str, Any] = {"chunking": "1.0", "chunkingParallelUploadDisabled": False}
    if bulk_upload:
        dav["bulkupload"] = "1.0"
    return {
        "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav",
                 "status": {"version": version_info()["string"]}},
        "bruteforce": {"delay": 0},
        "dav": dav,
        "checksums": {"supportedTypes": ["SHA1", "MD5", "SHA256", "ADLER32"], "preferredUploadType": "SHA1"},
        "files": {"bigfilechunking": True, **filename_capabilities(names), "undelete": True,
                  "versioning": True, "version_labeling": False, "version_deletion": True, "comments": False},
        "uploadConflictFiles": True,
    }


def _to_xml(value: Any, tag: str = "element") -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_to_xml(v, k)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<element>{_to_xml(v)}</element>" for v in value)
    if isinstance(value, bool):
        return "1" if value else ""
    return escape(str(value))


def ocs_response(request: Request, v2: bool, data: Any, status: int = 200, message: str = "OK") -> Response:
    ok = status < 400
    code = (200 if v2 else 100) if ok else (997 if status == 401 else status)
    meta = {"status": "ok" if ok else "failure", "statuscode": code, "message": message,
            "totalitems": "", "itemsperpage": ""}
    http_status = status if (v2 or status in _ALWAYS_HTTP) else 200
    headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else {}
    wants_json = request.query_params.get("format") == "json" or \
        "application/json" in request.headers.get("accept", "")
    if wants_json:
        return Response(json.dumps({"ocs": {"meta": meta, "data": data}}), status_code=http_status,
                        headers=headers, media_type=JSON_TYPE)
    body = f'<?xml version="1.0"?>\n<ocs><meta>{_to_xml(meta)}</meta><data>{_to_xml(data)}</data></ocs>\n'
    return Response(body, status_code=http_status, headers=headers, media_type=XML_TYPE_V2 if v2 else XML_TYPE_V1)


Endpoint = Callable[[Request, bool, Principal | None], Awaitable[Response]]

# Calls that create or revoke credentials: only for requests a page of another site cannot forge.
_GUARDED = {("GET", "/core/getapppassword"), ("DELETE", "/core/apppassword")}


# Desktop clients before 3.9 abort a whole bulk request that holds an empty file and blacklist
# its files (nextcloud/desktop#5824); Debian 12 ships 3.7.3. Their User-Agent says "mirall/X.Y".
_DESKTOP = re.compile(r"mirall/(\d+)\.(\d+)")
_BULK_SAFE_DESKTOP = (3, 9)


def offers_bulk(mode: str, user_agent: str) -> bool:
    """Whether to advertise dav.bulkupload to this client (setting bulk_upload: auto, true, false)."""
    if mode != "auto":
        return mode == "true"
    found = _DESKTOP.search(user_agent)
    return found is None or (int(found.group(1)), int(found.group(2))) >= _BULK_SAFE_DESKTOP


def _api_request(request: Request) -> bool:
    return (request.headers.get("ocs-apirequest", "").strip().lower() == "true"
            or request.headers.get("authorization", "").startswith("Bearer "))


class OcsApp:
    def __init__(self, core: Core, auth: Authenticator, *, bulk_upload: str = "auto") -> None:
        self.core, self.auth, self.bulk_upload = core, auth, bulk_upload
        # (method, path after /ocs/vN.php) → (needs a login, handler)
        self.endpoints: dict[tuple[str, str], tuple[bool, Endpoint]] = {
            ("GET", "/cloud/capabilities"): (False, self.get_capabilities),
            ("GET", "/cloud/config"): (False, self.get_config),
            ("GET", "/cloud/user"): (True, self.get_user),
            ("DELETE", "/core/apppassword"): (True, self.delete_apppassword),
            ("GET", "/core/getapppassword"): (True, self.get_apppassword),
            ("GET", "/apps/cartable/api/v1/apppasswords"): (True, self.list_apppasswords),
        }
        self.prefixed: dict[tuple[str, str], tuple[bool, Callable[..., Awaitable[Response]]]] = {
            ("DELETE", "/apps/cartable/api/v1/apppasswords/"): (True, self.revoke_apppassword),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        v2 = path.startswith("/ocs/v2.php")
        sub = path.split(".php", 1)[1].rstrip("/") if ".php" in path else ""
        found = self.endpoints.get((request.method.upper(), sub))
        if found is None:
            for (method, prefix), (login, fn) in self.prefixed.items():
                if method == request.method.upper() and sub.startswith(prefix) and sub[len(prefix):].isdigit():
                    arg = int(sub[len(prefix):])
                    found = (login, lambda r, v, p, _fn=fn, _arg=arg: _fn(r, v, p, _arg))
        if found is None:
            return ocs_response(request, v2, [], 404, f"no OCS endpoint {request.method} {sub}")
        needs_login, endpoint = found
        if (request.method.upper(), sub) in _GUARDED or (request.method.upper() == "DELETE" and sub.startswith(
                "/apps/cartable/api/v1/apppasswords/")):
            if not _api_request(request):
                return ocs_response(request, v2, [], 412, "CSRF check failed: send the OCS-APIRequest: true header")
        try:
            principal = None
            if needs_login or request.headers.get("authorization"):
                principal = await authenticate(self.auth, request)
            return await endpoint(request, v2, principal)
        except CartableError as exc:
            status = status_for(STATUS, exc)
            response = ocs_response(request, v2, [], status, str(exc))
            if isinstance(exc, Throttled):
                response.headers["Retry-After"] = str(exc.retry_after)
            return response

    async def get_capabilities(self, request: Request, v2: bool, _p: Principal | None) -> Response:
        bulk = offers_bulk(self.bulk_upload, request.headers.get("user-agent", ""))
        return ocs_response(request, v2, {"version": version_info(),
                                          "capabilities": capabilities(self.core.names, bulk)})

    async def get_config(self, request: Request, v2: bool, _p: Principal | None) -> Response:
        """Nextcloud's cloud/config (public): the OCS API version and this host."""
        data = {"version": "1.7", "website": "Nextcloud", "host": request.url.hostname or "",
                "contact": "", "ssl": "true" if request.url.scheme == "https" else "false"}
        return ocs_response(request, v2, data)

    async def get_user(self, request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        info = await run(accounts.get_user, self.core, p.name)
        usage = await run(files.usage, self.core, p)
        relative = round(100 * usage.used / usage.quota, 2) if usage.quota else 0
        data = {"id": info.name, "display-name": info.display_name, "displayname": info.display_name,
                "email": info.email or None, "enabled": not info.disabled, "groups": [],
                "language": request.headers.get("accept-language", "en").split(",")[0][:2] or "en",
                "locale": "", "backend": "Database",
                "quota": {"free": usage.free, "used": usage.used, "total": usage.quota,
                          "relative": relative, "quota": usage.quota}}
        return ocs_response(request, v2, data)

    async def delete_apppassword(self, request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        if p.app_password_id is None:
            return ocs_response(request, v2, [], 403, "this request did not use an app password")
        await run(accounts.revoke_app_password, self.core, p.name, p.app_password_id)
        return ocs_response(request, v2, [])

    async def get_apppassword(self, request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        if p.app_password_id is not None:
            return ocs_response(request, v2, [], 403, "already logged in with an app password")
        device = request.headers.get("user-agent", "client")[:200]
        token = await run(accounts.create_app_password, self.core, p.name, device)
        return ocs_response(request, v2, {"apppassword": token})

    async def list_apppasswords(self, request: Request, v2: bool, p: Principal | None) -> Response:
        """The caller's app passwords (one per device): id, name, created, last used."""
        assert p is not None
        recs = await run(accounts.list_app_passwords, self.core, p.name)
        data = [{"id": r.id, "name": r.name, "created": int(r.created_at),
                 "lastUsed": int(r.last_used_at) if r.last_used_at else 0,
                 "current": r.id == p.app_password_id} for r in recs]
        return ocs_response(request, v2, data)

    async def revoke_apppassword(self, request: Request, v2: bool, p: Principal | None, app_id: int) -> Response:
        """Revoke one of the caller's app passwords; it stops working at once."""
        assert p is not None
        await run(accounts.revoke_app_password, self.core, p.name, app_id)
        return ocs_response(request, v2, [])
