# SPDX-License-Identifier: EUPL-1.2
"""COPY and MOVE (RFC 4918 §9.8-9.9): Destination as a full URL or an absolute path,
Overwrite (default T) and Depth."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

from cartable.core import files
from cartable.core.errors import Forbidden, InvalidInput
from cartable.dav.context import DavRequest, run
from cartable.dav.write import parse_mtime

__all__ = ["do_copy", "do_move", "destination_parts"]


def destination_parts(ctx: DavRequest) -> tuple[str, ...]:
    raw = ctx.header("destination")
    if not raw:
        raise InvalidInput("COPY and MOVE need a Destination header")
    url = urlsplit(raw)
    if url.netloc and url.netloc != (ctx.header("host") or url.netloc):
        raise Forbidden(f"the destination {raw} is on another server")
    parts = ctx.parts_in_tree(url.path)
    if parts is None:
        raise Forbidden(f"the destination {raw} is outside your files ({ctx.base}/)")
    return parts


def _overwrite(ctx: DavRequest) -> bool:
    value = (ctx.header("overwrite") or "T").strip().upper()
    if value not in ("T", "F"):
        raise InvalidInput("Overwrite must be T or F")
    return value == "T"


async def do_copy(ctx: DavRequest) -> Response:
    dst = destination_parts(ctx)
    depth = (ctx.header("depth") or "infinity").lower()
    if depth not in ("0", "infinity"):
        raise InvalidInput("Depth for COPY must be 0 or infinity")
    if dst == ctx.parts:
        raise Forbidden("the source and the destination are the same")
    created = await run(files.copy, ctx.core, ctx.op, ctx.parts, dst, overwrite=_overwrite(ctx),
                        depth_infinity=depth == "infinity", pre=ctx.preconditions())
    return Response(status_code=201 if created else 204)


async def do_move(ctx: DavRequest) -> Response:
    dst = destination_parts(ctx)
    depth = (ctx.header("depth") or "infinity").lower()
    if depth != "infinity":
        raise InvalidInput("Depth for MOVE must be infinity")
    if dst == ctx.parts:
        raise Forbidden("the source and the destination are the same")
    mtime = parse_mtime(ctx.header("x-oc-mtime"))
    created = await run(files.move, ctx.core, ctx.op, ctx.parts, dst, overwrite=_overwrite(ctx), mtime=mtime,
                        pre=ctx.preconditions())
    node = await run(files.stat, ctx.core, ctx.principal, dst)
    headers = ctx.entity_headers(node)
    if mtime is not None:
        headers["X-OC-MTime"] = "accepted"
    return Response(status_code=201 if created else 204, headers=headers)
