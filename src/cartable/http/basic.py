# SPDX-License-Identifier: EUPL-1.2
"""Credentials from HTTP → a core Principal.

``Authorization: Basic`` carries a login and its password or app password;
``Authorization: Bearer`` carries an app password alone, which names its user (as Nextcloud
accepts for client tokens). Both go through the same Authenticator, so both are throttled.
Blocking work (database, argon2) runs in worker threads; the throttling delay is awaited here,
so a delayed attempt holds no thread.
"""

from __future__ import annotations

import base64
import binascii

import anyio
from anyio import to_thread
from starlette.requests import Request

from cartable.core.auth import Authenticator, Credentials
from cartable.core.errors import Unauthenticated
from cartable.core.model import Principal
from cartable.http.accesslog import note_user

__all__ = ["parse_authorization", "authenticate", "verify_credentials", "client_address", "CHALLENGE"]

CHALLENGE = 'Basic realm="cartable", charset="UTF-8"'


def parse_authorization(header: str | None) -> Credentials:
    if not header:
        raise Unauthenticated("this resource needs a user name and password (HTTP Basic) or an app password "
                              "(Bearer)")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        token = value.strip()
        if not token:
            raise Unauthenticated("the Bearer token is empty")
        return Credentials(None, token)
    if scheme.lower() != "basic":
        raise Unauthenticated(f"authentication scheme {scheme!r} is not supported; use Basic or Bearer")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 UTF-8") from None
    login, sep, secret = decoded.partition(":")
    if not sep or not login:
        raise Unauthenticated("the Basic credentials must be user:password")
    return Credentials(login, secret)


def client_address(request: Request) -> str:
    """The peer's address (no forwarded header is trusted)."""
    return request.client.host if request.client else ""


async def verify_credentials(auth: Authenticator, cred: Credentials, address: str) -> Principal:
    """Check credentials, waiting the throttling delay without holding a thread."""
    if auth.inline:
        principal = auth.cached(cred)
        if principal is not None:
            return principal
    found = await to_thread.run_sync(auth.check, cred, address)
    if isinstance(found, Principal):
        return found
    if found.delay > 0:
        await anyio.sleep(found.delay)
    return await to_thread.run_sync(auth.verify, cred, address, found)


async def authenticate(auth: Authenticator, request: Request) -> Principal:
    """The Principal the request's Authorization header proves (Unauthenticated or Throttled
    otherwise); its name goes to the request log."""
    cred = parse_authorization(request.headers.get("authorization"))
    principal = await verify_credentials(auth, cred, client_address(request))
    note_user(request.scope, principal.name)
    return principal
