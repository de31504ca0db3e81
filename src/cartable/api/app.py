# SPDX-License-Identifier: EUPL-1.2
"""The native API's ASGI app: routes under ``/api/v1/``, one authentication (HTTP Basic with a
password or an app password, or ``Authorization: Bearer`` with an app password: http/basic.py,
throttled as every login), and one error funnel (api/errors.py). Every answer is JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cartable.api.changes import ChangesApi
from cartable.api.errors import error_response, method_not_allowed
from cartable.api.watch import ChangeWatcher
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import CartableError, NotFound
from cartable.core.model import Principal
from cartable.http.basic import authenticate

__all__ = ["ApiApp", "PREFIX"]

PREFIX = "/api/v1/"
Endpoint = Callable[[Principal, Request], Awaitable[Response]]


class ApiApp:
    def __init__(self, core: Core, auth: Authenticator, watcher: ChangeWatcher | None = None) -> None:
        self.core, self.auth = core, auth
        self.watcher = watcher or ChangeWatcher(core)
        feed = ChangesApi(core, self.watcher)
        # path below PREFIX → {method: endpoint}
        self.routes: dict[str, dict[str, Endpoint]] = {
            "changes": {"GET": feed.feed},
            "changes/wait": {"GET": feed.wait},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response
        try:
            response = await self._dispatch(request)
        except CartableError as exc:
            response = error_response(exc, request.headers.get("accept-language"))
        await response(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path[len(PREFIX):].strip("/") if request.url.path.startswith(PREFIX) else ""
        methods = self.routes.get(path)
        if methods is None:
            raise NotFound(f"no API endpoint at {request.url.path}")
        endpoint = methods.get(request.method)
        if endpoint is None:
            return method_not_allowed(request.method, sorted(methods), request.headers.get("accept-language"))
        principal = await authenticate(self.auth, request)
        return await endpoint(principal, request)
