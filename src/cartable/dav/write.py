# SPDX-License-Identifier: EUPL-1.2
"""PUT, MKCOL and DELETE. A PUT body is streamed through the core's Upload in worker threads,
one buffer in flight while the next is received; a 2xx is sent only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from cartable.core import files
from cartable.core.errors import InvalidInput
from cartable.core.model import WriteResult
from cartable.core.preconditions import Preconditions
from cartable.core.writes import Upload
from cartable.dav.context import DavRequest, run
from cartable.http.conditional import etag_list

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
    pre = Preconditions(etag_list(ctx.header("if-match")), etag_list(ctx.header("if-none-match")))
    mtime = parse_mtime(ctx.header("x-oc-mtime"))
    length = _length(ctx)

    def start() -> Upload:
        return Upload(ctx.core, ctx.op, ctx.parts, length=length, mtime=mtime,
                      checksum=ctx.header("oc-checksum"), preconditions=pre, content_type=_content_type(ctx))

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
    ct = ctx.header("content-type")
    if not ct or ct.startswith("application/octet-stream") or ct.startswith("application/x-www-form"):
        return None
    return ct.split(";")[0].strip()[:255] or None


async def do_mkcol(ctx: DavRequest) -> Response:
    if ctx.header("content-length") not in (None, "0") or ctx.header("transfer-encoding"):
        body = await ctx.request.body()
        if body:
            return Response("MKCOL with a request body is not supported\n", status_code=415)
    node = await run(files.mkdir, ctx.core, ctx.op, ctx.parts)
    return Response(status_code=201, headers=ctx.entity_headers(node))


async def do_delete(ctx: DavRequest) -> Response:
    im = etag_list(ctx.header("if-match"))
    await run(files.delete, ctx.core, ctx.op, ctx.parts, if_match=im[0] if im else None)
    return Response(status_code=204)
