# SPDX-License-Identifier: EUPL-1.2
"""WebDAV on a mount point (a share with the user, core/usershares.py): DELETE leaves the share,
MOVE renames or moves the mount point in the user's own tree; a MOVE or COPY between the user's
own files and a share (or two shares) is refused with 403 (its source and destination would
belong to two spaces: not supported yet)."""

from __future__ import annotations

from starlette.responses import Response

from cartable.common.paths import InvalidPath
from cartable.core import usershares
from cartable.core.errors import AlreadyExists, Forbidden, PreconditionFailed
from cartable.core.usershares import Entered
from cartable.dav.context import DavRequest, run
from cartable.dav.copymove import destination_parts

__all__ = ["on_mount_point", "refuse_crossing"]


async def on_mount_point(ctx: DavRequest, method: str, entered: Entered) -> Response:
    if method == "DELETE":
        await run(usershares.leave, ctx.core, ctx.op, entered)
        return Response(status_code=204)
    dst = destination_parts(ctx)
    if dst == ctx.parts:
        raise Forbidden("the source and the destination are the same")
    try:
        await run(usershares.move_mount, ctx.core, ctx.op, entered, dst)
    except AlreadyExists as exc:
        raise PreconditionFailed(str(exc)) from None
    return Response(status_code=201)


async def refuse_crossing(ctx: DavRequest, method: str, entered: Entered | None) -> None:
    """Forbidden for a MOVE or COPY whose destination is not in the same space as its source."""
    if method not in ("MOVE", "COPY") or ctx.header("destination") is None:
        return
    try:
        dst = destination_parts(ctx)
    except (Forbidden, InvalidPath):
        return  # the handler answers it
    other = await run(usershares.enter, ctx.core, ctx.principal, dst)
    if entered is None and other is None:
        return
    if entered is not None and other is not None and other.mount.mount.id == entered.mount.mount.id:
        return
    raise Forbidden(f"{method} between your own files and a folder shared with you (or between two shares) is "
                    "not supported: download and upload instead")
