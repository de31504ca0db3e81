# SPDX-License-Identifier: EUPL-1.2
"""The OCS envelope every /ocs/v1.php and /ocs/v2.php answer is wrapped in, in JSON or XML.

v1 answers HTTP 200 with statuscode 100 on success and the failure's code otherwise (401 and
412 keep their HTTP status); v2 mirrors the HTTP status (statuscode 200 on success). An
explicit ``code`` sets the OCS statuscode when it is not the HTTP status (Nextcloud's 998, "not
found" for what the caller may not see: HTTP 404 on v2, HTTP 200 on v1). JSON when the client
asks (``format=json`` or ``Accept: application/json``), XML otherwise, with Nextcloud's content
types: ``application/json; charset=utf-8``; XML is ``text/xml; charset=UTF-8`` on v1 and
``application/xml; charset=utf-8`` on v2. In XML, list items are ``<element>``, booleans are
``1`` or empty, and None is an empty element (as Nextcloud renders them).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from cartable.core.model import Principal
from cartable.http.basic import CHALLENGE

__all__ = ["ocs_response", "wants_json", "Endpoint", "ArgEndpoint", "JSON_TYPE", "XML_TYPE_V1", "XML_TYPE_V2",
           "NOT_VISIBLE"]

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE_V1 = "text/xml; charset=UTF-8"
XML_TYPE_V2 = "application/xml; charset=utf-8"
NOT_VISIBLE = 998  # OCSController::RESPOND_NOT_FOUND
# Failures answered with their own HTTP status on v1 too (not 200 + an OCS code).
_ALWAYS_HTTP = (401, 412)

# An endpoint: (request, v2, principal or None) → response. ArgEndpoint also gets the part of
# the path after its prefix (a user id, a number).
Endpoint = Callable[[Request, bool, "Principal | None"], Awaitable[Response]]
ArgEndpoint = Callable[[Request, bool, "Principal | None", Any], Awaitable[Response]]


def _to_xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_to_xml(v)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<element>{_to_xml(v)}</element>" for v in value)
    if isinstance(value, bool):
        return "1" if value else ""
    if value is None:
        return ""
    return escape(str(value))


def wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json" or \
        "application/json" in request.headers.get("accept", "")


def ocs_response(request: Request, v2: bool, data: Any, status: int = 200, message: str = "OK",
                 code: int | None = None, headers: Mapping[str, str] | None = None) -> Response:
    ok = status < 400
    if code is None:
        code = (200 if v2 else 100) if ok else (997 if status == 401 else status)
    meta = {"status": "ok" if ok else "failure", "statuscode": code, "message": message,
            "totalitems": "", "itemsperpage": ""}
    http_status = status if (v2 or status in _ALWAYS_HTTP) else 200
    all_headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else {}
    all_headers.update(headers or {})
    if wants_json(request):
        return Response(json.dumps({"ocs": {"meta": meta, "data": data}}), status_code=http_status,
                        headers=all_headers, media_type=JSON_TYPE)
    body = f'<?xml version="1.0"?>\n<ocs><meta>{_to_xml(meta)}</meta><data>{_to_xml(data)}</data></ocs>\n'
    return Response(body, status_code=http_status, headers=all_headers,
                    media_type=XML_TYPE_V2 if v2 else XML_TYPE_V1)
