# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads under /remote.php/dav/uploads/USER/ID/ (to be implemented)."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.dav.routes import DavApp

__all__ = ["UploadsApp", "UPLOADS_PREFIX"]

UPLOADS_PREFIX = "/remote.php/dav/uploads/"


class UploadsApp:
    def __init__(self, core: Core, auth: Authenticator, dav: DavApp) -> None:
        self.core, self.auth, self.dav = core, auth, dav

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("chunked uploads are not available yet\n", status_code=501)(scope, receive, send)
