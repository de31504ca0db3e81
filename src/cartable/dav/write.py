# SPDX-License-Identifier: EUPL-1.2
"""PUT, MKCOL and DELETE. A PUT body of at most 256 KiB with a Content-Length is received whole,
then written and committed in one worker-thread trip; a larger or unsized one is streamed through
the core's Upload in worker threads, one 4 MiB buffer in flight while the next is received. A 2xx
is sent only after the commit. Preconditions and the name of a new file are checked by core, in
the commit's transaction (for streamed bodies, also before the first byte is read)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from cartable.core import bounds, files
from cartable.core.errors import InvalidInput
from cartable.core.model import WriteResult
from cartable.core.writes import Upload
from cartable.dav.context import DavRequest, run
from cartable.http.headers import bounded

__all__ = ["do_put", "do_mkcol", "do_delete", "parse_mtime", "stream_body"]

_BUFFER = 4 * 1024 * 1024
_SMALL = 256 * 1024


def parse_mtime(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        mtime = float(value)
    except ValueError:
        raise InvalidInput(f"X-OC-Mtime {value!r} is not a number of seconds") from None
    if not 0 <= mtime < 2**40:
        raise InvalidInput(f"X-OC-Mtime {value!r} is out of range")
    return mtime


def _length(ctx: DavRequest) -> int | None:
    raw = ctx.header("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidInput(f"Content-Length {raw!r} is not a number")
    return int(raw)


async def do_put(ctx: DavRequest) -> Response:
    if ctx.header("content-range"):
        raise InvalidInput("partial PUT with Content-Range is not supported")
    pre = ctx.preconditions()
    mtime = parse_mtime(ctx.header("x-oc-mtime"))
    length = _length(ctx)
    checksum = bounded("OC-Checksum", ctx.header("oc-checksum"), bounds.CHECKSUMS)
    content_type = _content_type(ctx)

    def start() -> Upload:
        return Upload(ctx.core, ctx.op, ctx.parts, length=length, mtime=mtime,
                      checksum=checksum, preconditions=pre, content_type=content_type)

    if length is not None and length <= _SMALL:
        # Small bodies: receive first, then one trip to a worker thread for the whole write.
        body = bytearray()
        async for piece in ctx.request.stream():
            body += piece
            if len(body) > length:
                break
        result = await run(_write_small, start, bytes(body))
    else:
        result = await _stream(ctx, await run(start))
    headers = ctx.entity_headers(result.node)
    if mtime is not None:
        headers["X-OC-MTime"] = "accepted"
    return Response(status_code=201 if result.created else 204, headers=headers)


def _write_small(start: Callable[[], Upload], body: bytes) -> WriteResult:
    upload = start()
    upload.write(body)
    return upload.commit()


async def stream_body(request: Request, write: Callable[[bytearray], None]) -> None:
    """Feed the request body to a blocking write() in worker threads, 4 MiB at a time, one buffer
    in flight while the next is received (the body is never held whole)."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    buf = bytearray()
    try:
        async for piece in request.stream():
            buf += piece
            if len(buf) >= _BUFFER:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, write, buf)
                buf = bytearray()  # handed over whole: no copy
        if pending is not None:
            await pending
            pending = None
        if buf:
            await run(write, buf)
    finally:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)


async def _stream(ctx: DavRequest, upload: Upload) -> WriteResult:
    await stream_body(ctx.request, upload.write)
    return await run(upload.commit)


def _content_type(ctx: DavRequest) -> str | None:
    """The media type to store (None: guess from the name); 400 when too long to be stored."""
    ct = ctx.header("content-type")
    if not ct or ct.startswith("application/octet-stream") or ct.startswith("application/x-www-form"):
        return None
    media = ct.split(";")[0].strip()
    if len(media) > bounds.CONTENT_TYPE:
        raise InvalidInput(f"the Content-Type header's media type is {len(media)} characters long; "
                           f"at most {bounds.CONTENT_TYPE} are accepted")
    return media or None


async def do_mkcol(ctx: DavRequest) -> Response:
    if ctx.header("content-length") not in (None, "0") or ctx.header("transfer-encoding"):
        body = await ctx.request.body()
        if body:
            return Response("MKCOL with a request body is not supported\n", status_code=415)
    node = await run(files.mkdir, ctx.core, ctx.op, ctx.parts, ctx.preconditions())
    return Response(status_code=201, headers=ctx.entity_headers(node))


async def do_delete(ctx: DavRequest) -> Response:
    await run(files.delete, ctx.core, ctx.op, ctx.parts, ctx.preconditions())
    return Response(status_code=204)
