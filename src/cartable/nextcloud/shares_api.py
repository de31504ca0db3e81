# SPDX-License-Identifier: EUPL-1.2
"""The OCS Share API for public links: ``/ocs/v{1,2}.php/apps/files_sharing/api/v1/shares``
(Nextcloud's ShareAPIController), for the owner of the items.

- ``POST shares``: ``path``, ``shareType`` (3; user and group shares are not there yet: 400),
  ``permissions`` (default 1, read), ``publicUpload=true`` (read-write, 15, when no permissions
  are given), ``password``, ``expireDate`` (YYYY-MM-DD: the link works through that day, UTC),
  ``label``, ``note``, ``hideDownload``.
- ``GET shares``: the caller's links; ``path=`` only those on that item, with ``subfiles=true``
  those on its children; ``shared_with_me=true`` is an empty list (nothing can be shared with a
  user yet); ``reshares`` changes nothing (there are no reshares).
- ``GET shares/{id}``, ``PUT shares/{id}`` (``permissions``, ``password`` ("" removes it),
  ``expireDate`` ("" removes it), ``note``, ``label``, ``hideDownload``), ``DELETE shares/{id}``.

Parameters come from the query, a form body or a JSON body, as Nextcloud accepts them. Errors
are Nextcloud's: 404 for a wrong path or share id, 403 for what is not allowed, 400 for a bad
parameter, each with a message a person can act on. A share's ``password`` field is never the
hash: it is "********" when the link has a password, "" otherwise (a client that sends it back
unchanged in a PUT leaves the password as it is).
"""

from __future__ import annotations

import calendar
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from cartable.common.paths import split_path
from cartable.core import shares, usershares
from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.dav.context import run
from cartable.http.basic import client_address
from cartable.nextcloud.ocs_envelope import ArgEndpoint, Endpoint, ocs_response

__all__ = ["endpoints", "prefixed", "PATH", "share_data", "PASSWORD_MARK"]

PATH = "/apps/files_sharing/api/v1/shares"
PASSWORD_MARK = "********"
DAY = 86400
_MAX_BODY = 64 * 1024


async def _params(request: Request) -> dict[str, str]:
    """Query parameters, then the body's (form or JSON) over them."""
    out = {k: v for k, v in request.query_params.items()}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise InvalidInput("the JSON body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the JSON body must be an object")
        out.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    elif kind == "application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise InvalidInput(f"the form is larger than {_MAX_BODY} bytes")
        try:
            out.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise InvalidInput("the form is not UTF-8") from None
    elif kind:
        raise InvalidInput(f"send the parameters as a form (application/x-www-form-urlencoded) or JSON, not {kind}")
    return out


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 10:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _flag(params: dict[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _expiry(raw: str) -> float | None:
    """End of the day YYYY-MM-DD (UTC), or None for ""; InvalidInput otherwise."""
    if raw == "":
        return None
    try:
        day = time.strptime(raw.strip()[:10], "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"expireDate {raw!r} is not a date as YYYY-MM-DD") from None
    return float(calendar.timegm(day) + DAY)


def share_data(request: Request, info: shares.LinkInfo) -> dict[str, Any]:
    """One share in Nextcloud's fields."""
    rec, node = info.share, info.node
    path = "/" + "/".join(info.path)
    expiration = (time.strftime("%Y-%m-%d 00:00:00", time.gmtime(rec.expires_at - DAY))
                  if rec.expires_at is not None else None)
    base = f"{request.url.scheme}://{request.url.netloc}"
    return {
        "id": str(rec.id), "share_type": rec.share_type, "uid_owner": info.owner,
        "displayname_owner": info.owner_display, "permissions": rec.permissions, "can_edit": True,
        "can_delete": True, "stime": int(rec.created_at), "parent": None, "expiration": expiration,
        "token": rec.token, "uid_file_owner": info.owner, "displayname_file_owner": info.owner_display,
        "note": rec.note, "label": rec.label, "path": path, "item_type": "folder" if node.is_dir else "file",
        "item_permissions": 31 if node.is_dir else 19, "mimetype": "httpd/unix-directory" if node.is_dir
        else (node.content_type or "application/octet-stream"), "has_preview": False,
        "storage_id": f"home::{info.owner}", "storage": rec.space_id, "item_source": node.id,
        "file_source": node.id, "file_parent": node.parent_id, "file_target": path, "item_size": node.size,
        "item_mtime": int(node.mtime), "share_with": None, "share_with_displayname": None,
        "password": PASSWORD_MARK if info.has_password else "", "send_password_by_talk": False,
        "url": f"{base}/s/{rec.token}", "mail_send": 0, "hide_download": 1 if rec.hide_download else 0,
        "attributes": None, "download_limit": rec.download_limit, "download_count": rec.download_count,
    }


def user_share_data(info: usershares.ShareInfo, *, recipient: bool = False) -> dict[str, Any]:
    """A user or group share in Nextcloud's fields; for its recipient (shared_with_me), ``path``
    and ``file_target`` are where it is mounted in their tree."""
    rec, node = info.share, info.node
    own_path = "/" + "/".join(info.path)
    target = "/" + "/".join(info.target) if info.target is not None else "/" + node.name
    return {
        "id": str(rec.id), "share_type": rec.share_type, "uid_owner": info.sharer,
        "displayname_owner": info.sharer_display, "permissions": rec.permissions, "can_edit": not recipient,
        "can_delete": True, "stime": int(rec.created_at), "parent": None, "expiration": None, "token": None,
        "uid_file_owner": info.owner, "displayname_file_owner": info.owner_display, "note": rec.note,
        "label": rec.label, "path": target if recipient else own_path,
        "item_type": "folder" if node.is_dir else "file",
        "item_permissions": rec.permissions if recipient else 31 if node.is_dir else 19,
        "mimetype": "httpd/unix-directory" if node.is_dir else (node.content_type or "application/octet-stream"),
        "has_preview": False, "storage_id": f"shared::{target}" if recipient else f"home::{info.owner}",
        "storage": rec.space_id, "item_source": node.id, "file_source": node.id, "file_parent": node.parent_id,
        "file_target": target, "item_size": node.size, "item_mtime": int(node.mtime),
        "share_with": rec.share_with, "share_with_displayname": info.with_display,
        "mail_send": 0, "hide_download": 0, "attributes": None, "status": {}, "accepted": 1,
    }


def _perms_for_create(params: dict[str, str]) -> int:
    perms = _int(params, "permissions")
    if perms is not None:
        return perms
    return shares.READ_WRITE if _flag(params, "publicUpload") else shares.READ_ONLY


def endpoints(core: Core) -> dict[tuple[str, str], tuple[bool, Endpoint]]:
    async def create(request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        params = await _params(request)
        share_type = _int(params, "shareType")
        if share_type not in (shares.USER, shares.GROUP, shares.LINK):
            raise InvalidInput("shareType must be 0 (a user), 1 (a group) or 3 (a public link)")
        if not params.get("path"):
            raise InvalidInput("please specify a file or folder path (path=/folder)")
        parts = split_path(params["path"])
        if share_type in (shares.USER, shares.GROUP):
            with_ = params.get("shareWith") or ""
            if not with_:
                raise InvalidInput("please say whom to share with (shareWith=NAME)")
            perms_given = _int(params, "permissions")
            user_info = await run(lambda: usershares.create_share(
                core, Op(p), parts, share_type, with_,
                perms=perms_given if perms_given is not None else usershares.DEFAULT_PERMISSIONS,
                address=client_address(request)))
            return ocs_response(request, v2, user_share_data(user_info))
        expires = _expiry(params["expireDate"]) if params.get("expireDate") else None
        perms = _perms_for_create(params)
        info = await run(lambda: shares.create_link(
            core, Op(p), parts, perms=perms, password=params.get("password") or None, expires_at=expires,
            label=params.get("label", ""), note=params.get("note", ""),
            hide_download=bool(_flag(params, "hideDownload")), address=client_address(request)))
        return ocs_response(request, v2, share_data(request, info))

    async def listing(request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        params = request.query_params
        if (params.get("shared_with_me") or "").lower() == "true":
            received = await run(usershares.shared_with_me, core, p)
            return ocs_response(request, v2, [user_share_data(i, recipient=True) for i in received])
        path = params.get("path")
        parts = split_path(path) if path else None
        subfiles = (params.get("subfiles") or "").lower() == "true"
        if subfiles and parts is None:
            raise InvalidInput("subfiles=true needs a folder: path=/folder")
        in_share = parts is not None and await run(usershares.enter, core, p, parts) is not None
        found = [] if in_share else await run(lambda: shares.links(core, p, parts, subfiles=subfiles))
        made = await run(lambda: usershares.shares_of(core, p, parts, subfiles=subfiles))
        data = [share_data(request, i) for i in found] + [user_share_data(i) for i in made]
        data.sort(key=lambda d: int(d["id"]))
        return ocs_response(request, v2, data)

    return {("POST", PATH): (True, create), ("GET", PATH): (True, listing)}


def _share_id(rest: str) -> int | None:
    return int(rest) if rest.isascii() and rest.isdigit() and len(rest) < 19 else None


def prefixed(core: Core) -> dict[tuple[str, str], tuple[bool, Any, ArgEndpoint]]:
    async def get_one(request: Request, v2: bool, p: Principal | None, share_id: int) -> Response:
        assert p is not None
        user_info = await run(usershares.get_share, core, p, share_id)
        if user_info is not None:
            return ocs_response(request, v2, [user_share_data(user_info)])
        info = await run(shares.link, core, p, share_id)
        return ocs_response(request, v2, [share_data(request, info)])

    async def update(request: Request, v2: bool, p: Principal | None, share_id: int) -> Response:
        assert p is not None
        params = await _params(request)
        if await run(usershares.is_user_share, core, share_id):
            new_perms = _int(params, "permissions")
            if new_perms is None:
                raise InvalidInput("send the new permissions (permissions=NUMBER): a share with a user or group "
                                   "has nothing else to change")
            user_info = await run(lambda: usershares.update_share(core, Op(p), share_id, new_perms,
                                                                  address=client_address(request)))
            return ocs_response(request, v2, user_share_data(user_info))
        changes: dict[str, Any] = {}
        if "permissions" in params:
            changes["perms"] = _int(params, "permissions")
        elif _flag(params, "publicUpload") is not None:
            changes["perms"] = shares.READ_WRITE if _flag(params, "publicUpload") else shares.READ_ONLY
        if "password" in params and params["password"] != PASSWORD_MARK:
            changes["password"] = params["password"] or None
        if "expireDate" in params:
            changes["expires_at"] = _expiry(params["expireDate"])
        for key in ("label", "note"):
            if key in params:
                changes[key] = params[key]
        if "hideDownload" in params:
            changes["hide_download"] = bool(_flag(params, "hideDownload"))
        if not changes:
            raise InvalidInput("nothing to change: send permissions, password, expireDate, note or label")
        if changes.get("perms", 0) is None:
            raise InvalidInput("permissions must be a whole number")
        info = await run(lambda: shares.update_link(core, Op(p), share_id, address=client_address(request),
                                                    **changes))
        return ocs_response(request, v2, share_data(request, info))

    async def delete(request: Request, v2: bool, p: Principal | None, share_id: int) -> Response:
        assert p is not None
        if await run(usershares.is_user_share, core, share_id):
            await run(lambda: usershares.delete_share(core, Op(p), share_id, address=client_address(request)))
            return ocs_response(request, v2, [])
        await run(lambda: shares.delete_link(core, Op(p), share_id, address=client_address(request)))
        return ocs_response(request, v2, [])

    prefix = PATH + "/"
    return {("GET", prefix): (True, _share_id, get_one), ("PUT", prefix): (True, _share_id, update),
            ("DELETE", prefix): (True, _share_id, delete)}
