# SPDX-License-Identifier: EUPL-1.2
"""Login Flow v2 under /index.php/login/v2 (reference §13).

- ``POST /v2`` (no auth; the User-Agent names the client) → 200 JSON with the poll token, the
  poll endpoint and the browser login URL, all absolute on the request's scheme://host; 429 with
  ``Retry-After`` when the address started too many flows (a counter in the database).
- ``POST /v2/poll`` with form ``token=…`` → 404 ``[]`` until granted, then 200 JSON once
  ``{"server","loginName","appPassword"}``, then 404 again.
- ``GET /v2/flow/<login token>`` → the login page (account password, or an existing app password);
  ``POST`` of it → the grant page (password checked by the Authenticator, so throttled);
  ``POST …/grant`` with the per-flow state token → a new app password for the client;
  ``POST …/deny`` with the same state token → the flow ends (the client's polls get 404);
  ``POST …/apptoken`` → hands the pasted app password to the client. Unknown or expired flow → 403.
The state tokens' key lives in the database, so any node (or this one after a restart) can check
the grant of a flow another node started.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from cartable.core import login_flow
from cartable.core.auth import Authenticator, Credentials
from cartable.core.context import Core
from cartable.core.errors import Forbidden, NotFound, Throttled, Unauthenticated
from cartable.core.model import Principal
from cartable.dav.context import run
from cartable.http.accesslog import note_user
from cartable.http.basic import client_address, verify_credentials
from cartable.nextcloud.locales import pick
from cartable.nextcloud.login_pages import grant_page, login_page, message_page

__all__ = ["LoginFlowApp", "LOGIN_PREFIX"]

LOGIN_PREFIX = "/index.php/login/"
V2 = "/index.php/login/v2"
MAX_FORM = 16 * 1024
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _base(request: Request) -> str:
    """scheme://host[:port] as the client addressed us (no proxy header is honoured)."""
    return f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (first value of each field); {} if too large."""
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_FORM:
            return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _html(content: str, status: int = 200, extra: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers={**PAGE_HEADERS, **(extra or {})})


def _not_found_poll() -> Response:
    return JSONResponse([], status_code=404, headers={"Cache-Control": "no-store"})


class LoginFlowApp:
    def __init__(self, core: Core, auth: Authenticator) -> None:
        self.core, self.auth = core, auth
        self._secret = login_flow.state_key(core)  # shared by every node through the database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        path, method = request.url.path.rstrip("/"), request.method.upper()
        if path == V2:
            return await self.init(request) if method == "POST" else Response(status_code=405)
        if path == V2 + "/poll":
            return await self.poll(request) if method == "POST" else Response(status_code=405)
        prefix = V2 + "/flow/"
        if not path.startswith(prefix):
            return Response("Not found\n", status_code=404, media_type="text/plain")
        token, _, action = path[len(prefix):].partition("/")
        lang = pick(request.headers.get("accept-language"))
        try:
            client = await run(login_flow.client_of, self.core, token)
            if (method, action) == ("GET", ""):
                user = request.query_params.get("user", "")
                return _html(login_page(lang, prefix + token, client, user))
            if method != "POST" or action not in ("", "grant", "deny", "apptoken"):
                return Response(status_code=405)
            form = await _form(request)
            if action in ("grant", "deny"):
                return await self.grant(request, lang, token, client, form, action == "grant")
            return await self.login(request, lang, token, client, form, action == "apptoken")
        except NotFound:
            return _html(message_page(lang, "denied_title", "denied"), 403)

    async def init(self, request: Request) -> Response:
        client = request.headers.get("user-agent", "") or "client"
        try:
            await run(self.auth.count_flow_start, client_address(request))
        except Throttled as exc:
            return JSONResponse({"message": str(exc)}, status_code=429,
                                headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"})
        login_token, poll_token = await run(login_flow.start, self.core, client)
        base = _base(request)
        return JSONResponse({"poll": {"token": poll_token, "endpoint": f"{base}{V2}/poll"},
                             "login": f"{base}{V2}/flow/{login_token}"},
                            headers={"Cache-Control": "no-store"})

    async def poll(self, request: Request) -> Response:
        token = (await _form(request)).get("token", "")
        found = await run(login_flow.poll, self.core, token)
        if found is None:
            return _not_found_poll()
        login_name, app_password = found
        return JSONResponse({"server": _base(request), "loginName": login_name, "appPassword": app_password},
                            headers={"Cache-Control": "no-store"})

    async def login(self, request: Request, lang: str, token: str, client: str, form: dict[str, str],
                    app_token: bool) -> Response:
        """Check the credentials; then the grant page, or (app token) hand it over at once."""
        user, password = form.get("user", "").strip(), form.get("password", "")
        flow_url = f"{V2}/flow/{token}"
        try:
            principal: Principal = await verify_credentials(self.auth, Credentials(user, password),
                                                            client_address(request))
        except Throttled as exc:
            return _html(login_page(lang, flow_url, client, user, "throttled"), 429,
                         {"Retry-After": str(exc.retry_after)})
        except Unauthenticated:
            return _html(login_page(lang, flow_url, client, user, "wrong_login"))
        note_user(request.scope, principal.name)
        if app_token:
            if principal.app_password_id is None:
                return _html(login_page(lang, flow_url, client, user, "not_app_password"))
            try:
                await run(login_flow.grant_existing, self.core, token, principal, client_address(request))
            except Forbidden:
                return _html(login_page(lang, flow_url, client, user, "wrong_login"))
            return _html(message_page(lang, "done_title", "done"))
        state = await run(login_flow.issue_state, self.core, self._secret, token, principal)
        return _html(grant_page(lang, flow_url, client, principal.name, state))

    async def grant(self, request: Request, lang: str, token: str, client: str, form: dict[str, str],
                    allow: bool) -> Response:
        """Grant (or deny) the flow for the user the state token was issued to."""
        try:
            principal = await run(login_flow.check_state, self.core, self._secret, token,
                                  form.get("user", ""), form.get("state", ""))
            note_user(request.scope, principal.name)
            if not allow:
                await run(login_flow.deny, self.core, token)
                return _html(message_page(lang, "refused_title", "refused", client=client))
            await run(login_flow.grant, self.core, token, principal, client_address(request))
        except Forbidden:
            return _html(message_page(lang, "grant_title", "expired_grant"), 403)
        return _html(message_page(lang, "done_title", "done"))
