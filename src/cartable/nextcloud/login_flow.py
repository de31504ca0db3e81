# SPDX-License-Identifier: EUPL-1.2
"""Login Flow v2 under /index.php/login/v2 (to be implemented)."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from cartable.core.auth import Authenticator
from cartable.core.context import Core

__all__ = ["LoginFlowApp", "LOGIN_PREFIX"]

LOGIN_PREFIX = "/index.php/login/"


class LoginFlowApp:
    def __init__(self, core: Core, auth: Authenticator) -> None:
        self.core, self.auth = core, auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("login flow not available yet\n", status_code=501)(scope, receive, send)
