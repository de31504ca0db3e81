# SPDX-License-Identifier: EUPL-1.2
"""Nextcloud's provisioning API, the part clients read to show who is who (reference §2.4):

- ``GET cloud/user``: the caller (nextcloud/ocs.py), with the same fields as below plus
  ``enabled``.
- ``GET cloud/users/{id}``: an account's profile (id, displayname and display-name, email,
  quota {free, used, total, relative, quota}, groups, language, backend...). The caller's own,
  or anyone's for an administrator, who also gets ``enabled``. Anyone else's is what Nextcloud
  answers a non-admin: OCS statuscode 998 with an empty message (HTTP 404 on v2, HTTP 200 on
  v1); cartable gives the same answer for an account that does not exist, so the endpoint
  cannot be used to probe for names (Nextcloud says 404 "User does not exist" there). An
  administrator naming an unknown account gets 404 "User does not exist".
- ``GET cloud/groups?search=&limit=&offset=``: ``{"groups": [names]}``, to every logged-in user
  (Nextcloud's getGroups is NoAdminRequired). ``cloud/groups/details`` adds display names and
  member counts, for administrators only.

Fields cartable does not keep (phone, address, website...) are empty strings, as Nextcloud
sends for an account that never filled them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cartable.core import directory, groups
from cartable.core.context import Core
from cartable.core.errors import Forbidden, InvalidInput, NotVisible
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.nextcloud.ocs_envelope import NOT_VISIBLE, ArgEndpoint, Endpoint, ocs_response

__all__ = ["endpoints", "prefixed", "user_data"]

_EMPTY_FIELDS = ("phone", "address", "website", "twitter", "fediverse", "organisation", "role", "headline",
                 "biography")


def user_data(request: Request, profile: directory.Profile) -> dict[str, Any]:
    """The provisioning API's user record (AUserData::getUserData's fields that make sense here)."""
    info = profile.user
    relative = round(100 * info.used / info.quota, 2) if info.quota else 0
    language = request.headers.get("accept-language", "en").split(",")[0][:2] if profile.own else ""
    data: dict[str, Any] = {}
    if profile.full or profile.own:
        data["enabled"] = not info.disabled
    data.update({
        "id": info.name, "lastLogin": 0, "backend": "Database", "subadmin": [],
        "quota": {"free": max(0, info.quota - info.used), "used": info.used, "total": info.quota,
                  "relative": relative, "quota": info.quota},
        "manager": "", "email": info.email or None, "additional_mail": [],
        "displayname": info.display_name, "display-name": info.display_name,
        **{name: "" for name in _EMPTY_FIELDS}, "profile_enabled": "1",
        "groups": [g.name for g in profile.groups],
        "language": language or ("en" if profile.own else ""), "locale": "",
        "notify_email": None,
        "backendCapabilities": {"setDisplayName": False, "setPassword": False},
    })
    return data


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 9:
        raise InvalidInput(f"{name} must be a whole number")
    return int(raw)


def endpoints(core: Core) -> dict[tuple[str, str], tuple[bool, Endpoint]]:
    async def get_groups(request: Request, v2: bool, p: Principal | None) -> Response:
        search = request.query_params.get("search", "")
        limit = _int_param(request, "limit", None)
        offset = _int_param(request, "offset", 0) or 0
        if limit is not None and limit < 0:  # Nextcloud's -1: no limit
            limit = None
        found = await run(lambda: groups.search_groups(core, search, limit=limit, offset=offset))
        return ocs_response(request, v2, {"groups": [g.name for g in found]})

    async def get_groups_details(request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        if not p.is_admin:
            raise Forbidden("only administrators may read the details of groups")
        search = request.query_params.get("search", "")
        limit = _int_param(request, "limit", None)
        offset = _int_param(request, "offset", 0) or 0
        found = await run(lambda: groups.search_groups(core, search, limit=limit, offset=offset))
        details = []
        for g in found:
            members = await run(groups.members, core, g.name)
            details.append({"id": g.name, "displayname": g.display_name, "usercount": len(members),
                            "disabled": sum(1 for m in members if m.disabled), "canAdd": False,
                            "canRemove": False})
        return ocs_response(request, v2, {"groups": details})

    return {
        ("GET", "/cloud/groups"): (True, get_groups),
        ("GET", "/cloud/groups/details"): (True, get_groups_details),
    }


def _user_id(rest: str) -> str | None:
    return rest if rest and "/" not in rest else None


def prefixed(core: Core) -> dict[tuple[str, str], tuple[bool, Any, ArgEndpoint]]:
    async def get_user(request: Request, v2: bool, p: Principal | None, user_id: str) -> Response:
        assert p is not None
        try:
            profile = await run(directory.profile, core, p, user_id)
        except NotVisible:
            return ocs_response(request, v2, [], 404, "", code=NOT_VISIBLE)
        return ocs_response(request, v2, user_data(request, profile))

    return {("GET", "/cloud/users/"): (True, _user_id, get_user)}
