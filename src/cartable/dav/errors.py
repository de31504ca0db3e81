# SPDX-License-Identifier: EUPL-1.2
"""Core error → WebDAV status and DAV:error body, in one table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from cartable.common.paths import InvalidPath
from cartable.core import errors as e
from cartable.dav.xml import XML_HEAD, escape
from cartable.http.basic import CHALLENGE
from cartable.http.errormap import ErrorMap, status_for

__all__ = ["STATUS", "error_response", "xml_error", "funnel", "STORAGE_UNAVAILABLE"]

log = logging.getLogger("cartable.dav")

STATUS: ErrorMap = {
    e.NotFound: 404,
    e.NotVisible: 404,
    e.LinkExpired: 410,
    e.InvalidName: 400,
    e.InvalidInput: 400,
    e.Conflict: 409,
    e.AlreadyExists: 405,
    e.PreconditionFailed: 412,
    e.Gone: 410,
    e.Forbidden: 403,
    e.Unauthenticated: 401,
    e.Throttled: 429,
    e.Locked: 423,
    e.QuotaExceeded: 507,
    e.TooLarge: 413,
    e.ChecksumMismatch: 400,
    e.StorageUnavailable: 503,
    e.DataMissing: 500,
    e.CartableError: 500,
}

STORAGE_UNAVAILABLE = "the storage is temporarily unavailable; try again later"
_CONDITIONS = {e.Locked: "lock-token-submitted", e.QuotaExceeded: "quota-not-exceeded"}


def xml_error(status: int, message: str, condition: str | None = None, headers: dict[str, str] | None = None,
              ) -> Response:
    cond = f"<d:{condition}/>" if condition else ""
    body = (f'{XML_HEAD}<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">{cond}'
            f"<s:message>{escape(message)}</s:message></d:error>\n")
    return Response(body, status_code=status, headers=headers,
                    media_type="application/xml; charset=utf-8")


def error_response(exc: Exception) -> Response:
    if isinstance(exc, InvalidPath):
        return xml_error(400, str(exc))
    assert isinstance(exc, e.CartableError)
    status = status_for(STATUS, exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = CHALLENGE
    if isinstance(exc, e.Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, e.StorageUnavailable) and not isinstance(exc, e.DataMissing):
        # Its message may name server paths (chunk store errors): the log gets it, the client a
        # generic one. DataMissing names only the file and the missing row, and is logged by core.
        log.error("storage unavailable: %s", exc)
        return xml_error(status, STORAGE_UNAVAILABLE)
    return xml_error(status, str(exc), _CONDITIONS.get(type(exc)), headers)


async def funnel(method: str, path: str, work: Awaitable[Response]) -> Response:
    """Run a handler; every failure becomes an answer here, in one place per adapter family."""
    try:
        return await work
    except (e.CartableError, InvalidPath) as exc:
        return error_response(exc)
    except ClientDisconnect:
        log.info("client went away during %s %s; nothing was committed", method, path)
        return Response(status_code=400)
    except Exception:
        log.exception("internal error on %s %s", method, path)
        return xml_error(500, "internal server error; the operation was not completed")
