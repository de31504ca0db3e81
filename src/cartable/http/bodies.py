# SPDX-License-Identifier: EUPL-1.2
"""Size-limited request bodies."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from cartable.core.errors import InvalidInput, TooLarge

__all__ = ["read_limited", "ClientDisconnect"]


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) more than limit bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput(f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise TooLarge(f"the request body is {declared} bytes; the limit is {limit} bytes")
    buf = bytearray()
    async for piece in request.stream():
        buf += piece
        if len(buf) > limit:
            raise TooLarge(f"the request body is over the limit of {limit} bytes")
    return bytes(buf)
