# SPDX-License-Identifier: EUPL-1.2
"""The OCS API under /ocs/v1.php and /ocs/v2.php: one router, and one module per endpoint family.

- here: capabilities, config, the current user (``cloud/user``), app passwords;
- nextcloud/provisioning.py: ``cloud/users/{id}``, ``cloud/groups`` (who is who);
- nextcloud/sharees.py: ``apps/files_sharing/api/v1/sharees`` (the share dialog's search).

The envelope (v1/v2 status codes, JSON or XML) is nextcloud/ocs_envelope.py.

Calls that create or revoke credentials are refused (HTTP 412, "CSRF check failed", as
Nextcloud's SecurityMiddleware answers) unless the request carries ``OCS-APIRequest: true`` (or a
Bearer token): a browser that holds cached Basic credentials cannot be made to send that header
by another site, so it cannot be made to mint or revoke an app password."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.common.paths import DEFAULT_POLICY, NamePolicy
from cartable.core import accounts, directory
from cartable.core.audit import Actor
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import CartableError, Throttled
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.http.basic import authenticate, client_address
from cartable.http.errormap import status_for
from cartable.nextcloud import provisioning, sharees, shares_api
from cartable.nextcloud.errors import STATUS
from cartable.nextcloud.names import filename_capabilities
from cartable.nextcloud.ocs_envelope import (
    JSON_TYPE,
    XML_TYPE_V1,
    XML_TYPE_V2,
    ArgEndpoint,
    Endpoint,
    ocs_response,
)
from cartable.nextcloud.status import version_info

__all__ = ["OcsApp", "capabilities", "ocs_response", "JSON_TYPE", "XML_TYPE_V1", "XML_TYPE_V2"]


def capabilities(names: NamePolicy = DEFAULT_POLICY, bulk_upload: bool = True) -> dict[str, Any]:
    """Only what cartable really does: the trash (undelete) and versions (with deletion, without
    labels), public links, shares with users and groups (with resharing; no share by mail). Bulk
    upload when the server offers it (setting bulk_upload)."""
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
        "files_sharing": {
            "api_enabled": True, "resharing": True, "group_sharing": True, "default_permissions": 31,
            "sharee": {"query_lookup_default": False, "always_show_unique": True},
            "user": {"send_mail": False, "expire_date": {"enabled": False}},
            "group": {"enabled": True, "expire_date": {"enabled": False}},
            "federation": {"outgoing": False, "incoming": False, "expire_date": {"enabled": False},
                           "expire_date_supported": {"enabled": False}},
            "public": {"enabled": True, "password": {"enforced": False, "askForOptionalPassword": False},
                       # enabled would mean a default expiry; any link may still be given one
                       "expire_date": {"enabled": False, "enforced": False},
                       "multiple_links": True, "send_mail": False, "upload": True, "upload_files_drop": True},
        },
    }


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


def _number(rest: str) -> int | None:
    return int(rest) if rest.isascii() and rest.isdigit() and len(rest) < 19 else None


class OcsApp:
    def __init__(self, core: Core, auth: Authenticator, *, bulk_upload: str = "auto") -> None:
        self.core, self.auth, self.bulk_upload = core, auth, bulk_upload
        # (method, path after /ocs/vN.php) → (needs a login, handler)
        self.endpoints: dict[tuple[str, str], tuple[bool, Endpoint]] = {
            **provisioning.endpoints(core), **sharees.endpoints(core), **shares_api.endpoints(core),
            ("GET", "/cloud/capabilities"): (False, self.get_capabilities),
            ("GET", "/cloud/config"): (False, self.get_config),
            ("GET", "/cloud/user"): (True, self.get_user),
            ("DELETE", "/core/apppassword"): (True, self.delete_apppassword),
            ("GET", "/core/getapppassword"): (True, self.get_apppassword),
            ("GET", "/apps/cartable/api/v1/apppasswords"): (True, self.list_apppasswords),
        }
        # (method, prefix) → (needs a login, parse the rest of the path (None: no match), handler)
        self.prefixed: dict[tuple[str, str], tuple[bool, Callable[[str], Any], ArgEndpoint]] = {
            ("DELETE", "/apps/cartable/api/v1/apppasswords/"): (True, _number, self.revoke_apppassword),
            **provisioning.prefixed(core), **shares_api.prefixed(core),
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
            for (method, prefix), (login, parse, fn) in self.prefixed.items():
                if method != request.method.upper() or not sub.startswith(prefix):
                    continue
                arg = parse(sub[len(prefix):])
                if arg is not None:
                    found = (login, lambda r, v, p, _fn=fn, _arg=arg: _fn(r, v, p, _arg))
                    break
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
        profile = await run(directory.profile, self.core, p, p.name)
        return ocs_response(request, v2, provisioning.user_data(request, profile))

    async def delete_apppassword(self, request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        if p.app_password_id is None:
            return ocs_response(request, v2, [], 403, "this request did not use an app password")
        app_id, actor = p.app_password_id, Actor(p.name, client_address(request))
        await run(lambda: accounts.revoke_app_password(self.core, p.name, app_id, actor=actor))
        return ocs_response(request, v2, [])

    async def get_apppassword(self, request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        if p.app_password_id is not None:
            return ocs_response(request, v2, [], 403, "already logged in with an app password")
        device = request.headers.get("user-agent", "client")[:200]
        token = await run(lambda: accounts.create_app_password(
            self.core, p.name, device, actor=Actor(p.name, client_address(request)), login=True))
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
        actor = Actor(p.name, client_address(request))
        await run(lambda: accounts.revoke_app_password(self.core, p.name, app_id, actor=actor))
        return ocs_response(request, v2, [])
