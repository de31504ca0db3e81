# SPDX-License-Identifier: EUPL-1.2
"""The share dialog's recipient search: ``GET /ocs/v{1,2}.php/apps/files_sharing/api/v1/sharees``
(Nextcloud's ShareesAPIController::search), for every logged-in user.

Parameters: ``search`` (trimmed; empty lists everyone, as Nextcloud's default enumeration does),
``itemType`` (required: 400 "Missing itemType" without it), ``page`` (from 1), ``perPage``
(default 200, at most 25 as Nextcloud's ``sharing.maxAutocompleteResults``), ``shareType`` (0
users, 1 groups; one value or ``shareType[]=`` several; others are ignored: cartable shares with
users and groups only). ``lookup`` is ignored (no lookup server: ``lookupEnabled`` is false).

The answer has Nextcloud's shape: ``exact`` and partial lists per kind (users, groups, remotes,
remote_groups, emails, circles, rooms; the partial side also has lookup), a user as
``{label, subline, icon, value: {shareType: 0, shareWith}, shareWithDisplayNameUnique, status}``
and a group as ``{label, value: {shareType: 1, shareWith}}``. When a list filled its page, a
``Link: <...page=N+1...>; rel="next"`` header points at the next one. Matching rules are
core/directory.py's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from cartable.core import directory
from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.nextcloud.ocs_envelope import Endpoint, ocs_response

__all__ = ["endpoints", "PATH", "MAX_PER_PAGE"]

PATH = "/apps/files_sharing/api/v1/sharees"
MAX_PER_PAGE = 25  # Nextcloud's sharing.maxAutocompleteResults default
USER, GROUP = 0, 1
_KINDS = ("users", "groups", "remotes", "remote_groups", "emails", "circles", "rooms")


def _user(s: directory.Sharee) -> dict[str, Any]:
    return {"label": s.display_name, "subline": "", "icon": "icon-user",
            "value": {"shareType": USER, "shareWith": s.name},
            "shareWithDisplayNameUnique": s.email or s.name, "status": []}


def _group(s: directory.Sharee) -> dict[str, Any]:
    return {"label": s.display_name, "value": {"shareType": GROUP, "shareWith": s.name}}


def _positive(request: Request, name: str, default: int, message: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) <= 0:
        raise InvalidInput(message)
    return int(raw)


def _share_types(request: Request) -> set[int]:
    raw = request.query_params.getlist("shareType") + request.query_params.getlist("shareType[]")
    if not raw:
        return {USER, GROUP}
    return {int(v) for v in raw if v.isascii() and v.isdigit() and len(v) < 4}


def endpoints(core: Core) -> dict[tuple[str, str], tuple[bool, Endpoint]]:
    async def search(request: Request, v2: bool, p: Principal | None) -> Response:
        assert p is not None
        params = request.query_params
        per_page = min(_positive(request, "perPage", 200, "Invalid perPage argument"), MAX_PER_PAGE)
        page = _positive(request, "page", 1, "Invalid page")
        item_type = params.get("itemType")
        if item_type is None:
            raise InvalidInput("Missing itemType")
        kinds = _share_types(request)
        text = params.get("search", "")
        found = await run(lambda: directory.search_sharees(
            core, p, text, limit=per_page, offset=per_page * (page - 1), users=USER in kinds,
            groups=GROUP in kinds))
        data: dict[str, Any] = {"exact": {k: [] for k in _KINDS}, **{k: [] for k in _KINDS}, "lookup": [],
                                "lookupEnabled": False}
        data["exact"]["users"] = [_user(s) for s in found.exact_users]
        data["exact"]["groups"] = [_group(s) for s in found.exact_groups]
        data["users"] = [_user(s) for s in found.users]
        data["groups"] = [_group(s) for s in found.groups]
        headers = {}
        if found.more:
            query = urlencode([("search", text), ("itemType", item_type), ("perPage", per_page),
                               ("page", page + 1), *(("shareType[]", k) for k in sorted(kinds))])
            base = f"{request.url.scheme}://{request.url.netloc}/ocs/v{2 if v2 else 1}.php{PATH}"
            headers["Link"] = f'<{base}?{query}>; rel="next"'
        return ocs_response(request, v2, data, headers=headers)

    return {("GET", PATH): (True, search)}
