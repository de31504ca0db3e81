# SPDX-License-Identifier: EUPL-1.2
"""status.php: what Nextcloud clients ask first to recognise a server."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

__all__ = ["VERSION", "VERSION_STRING", "status_app", "version_info"]

# Clients gate features on the version (share-types in PROPFIND from 10, Depth 0 polling from
# 8.1, warnings for old servers): report a current Nextcloud, the same everywhere.
VERSION = (28, 0, 4, 1)
VERSION_STRING = "28.0.4"


def version_info() -> dict[str, object]:
    return {"major": VERSION[0], "minor": VERSION[1], "micro": VERSION[2], "string": VERSION_STRING,
            "edition": "", "extendedSupport": False}


async def status_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = {"installed": True, "maintenance": False, "needsDbUpgrade": False,
            "version": ".".join(map(str, VERSION)), "versionstring": VERSION_STRING, "edition": "",
            "productname": "cartable", "extendedSupport": False}
    response = JSONResponse(body, headers={"Access-Control-Allow-Origin": "*"})
    await response(scope, receive, send)
