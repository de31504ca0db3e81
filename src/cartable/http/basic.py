# SPDX-License-Identifier: EUPL-1.2
"""HTTP Basic credentials → a core Principal (through core.auth, in a worker thread)."""

from __future__ import annotations

import base64
import binascii

from anyio import to_thread

from cartable.core.auth import Authenticator
from cartable.core.errors import Unauthenticated
from cartable.core.model import Principal

__all__ = ["parse_basic", "authenticate", "CHALLENGE"]

CHALLENGE = 'Basic realm="cartable", charset="UTF-8"'


def parse_basic(header: str | None) -> tuple[str, str]:
    if not header:
        raise Unauthenticated("this resource needs a user name and password (HTTP Basic)")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated(f"authentication scheme {scheme!r} is not supported; use Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 UTF-8") from None
    login, sep, secret = decoded.partition(":")
    if not sep or not login:
        raise Unauthenticated("the Basic credentials must be user:password")
    return login, secret


async def authenticate(auth: Authenticator, header: str | None, address: str) -> Principal:
    login, secret = parse_basic(header)
    return await to_thread.run_sync(auth.authenticate, login, secret, address)
