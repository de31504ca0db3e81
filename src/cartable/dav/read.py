# SPDX-License-Identifier: EUPL-1.2
"""OPTIONS, GET and HEAD. ETag and Last-Modified come from metadata, so conditional requests
never touch the chunk store. A file is always sent as an attachment, with nosniff and a
sandboxing Content-Security-Policy (http/downloads.py), on 200, 206 and HEAD alike; the folder
page gets the same policy (it runs nothing either)."""

from __future__ import annotations

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import HTMLResponse, Response, StreamingResponse

from cartable.common.timefmt import parse_http_date
from cartable.core import files, reads
from cartable.core.errors import PreconditionFailed
from cartable.core.model import Node
from cartable.dav.context import DavRequest, run, run_hot
from cartable.dav.xml import escape
from cartable.http.conditional import etag_list, parse_range, quote_etag
from cartable.http.downloads import SAFE_HEADERS, download_headers

__all__ = ["do_options", "do_get", "do_head", "ALLOW"]

ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, PROPFIND, PROPPATCH, COPY, MOVE, LOCK, UNLOCK"


async def do_options(_ctx: DavRequest | None = None) -> Response:
    return Response(status_code=200, headers={"DAV": "1, 2", "MS-Author-Via": "DAV", "Allow": ALLOW,
                                              "Accept-Ranges": "bytes", "Content-Length": "0"})


def _not_modified(ctx: DavRequest, node: Node) -> bool:
    inm = etag_list(ctx.header("if-none-match"))
    if inm is not None:
        return "*" in inm or node.etag in inm
    ims = ctx.header("if-modified-since")
    if ims:
        since = parse_http_date(ims)
        return since is not None and int(node.mtime) <= since
    return False


def _check_if_match(ctx: DavRequest, node: Node) -> None:
    im = etag_list(ctx.header("if-match"))
    if im is not None and "*" not in im and node.etag not in im:
        raise PreconditionFailed(f"{node.name} has changed (If-Match failed)")
    ius = ctx.header("if-unmodified-since")
    if ius:
        since = parse_http_date(ius)
        if since is not None and int(node.mtime) > since:
            raise PreconditionFailed(f"{node.name} was modified since {ius}")


async def _folder_page(ctx: DavRequest) -> Response:
    node, kids = await run(files.listing, ctx.core, ctx.principal, ctx.parts)
    rows = "".join(
        f'<li><a href="{escape(ctx.href((*ctx.parts, k.name), k.is_dir))}">{escape(k.name)}'
        f'{"/" if k.is_dir else ""}</a></li>' for k in kids)
    title = escape("/" + "/".join(ctx.parts))
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><h1>{title}</h1><ul>{rows}</ul></body></html>")
    return HTMLResponse(html, headers={**ctx.entity_headers(node), **SAFE_HEADERS})


async def do_get(ctx: DavRequest, head: bool = False) -> Response:
    node, content = await run_hot(ctx.core, reads.lookup, ctx.core, ctx.principal, ctx.parts)
    if content is None and not head and ctx.dialect.folder_get is not None:
        answer = await ctx.dialect.folder_get(ctx, node)
        if answer is not None:
            return answer
    _check_if_match(ctx, node)
    headers = ctx.entity_headers(node)
    if _not_modified(ctx, node):
        return Response(status_code=304, headers=headers)
    if content is None:
        return await _folder_page(ctx)
    headers["Accept-Ranges"] = "bytes"
    headers.update(download_headers(node.name))
    media = node.content_type or "application/octet-stream"
    rng = parse_range(ctx.header("range"), content.size)
    if rng is not None and ctx.header("if-range") not in (None, quote_etag(node.etag)):
        rng = None
    status, start, end = 200, 0, content.size
    if rng == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{content.size}"})
    if isinstance(rng, tuple):
        status, (start, end) = 206, rng
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{content.size}"
    headers["Content-Length"] = str(end - start)
    if head:
        return Response(status_code=status, headers=headers, media_type=media)
    if content.inline is not None:
        return Response(content.inline[start:end], status_code=status, headers=headers, media_type=media)
    return StreamingResponse(iterate_in_threadpool(content.iter_range(start, end)), status_code=status,
                             headers=headers, media_type=media)


async def do_head(ctx: DavRequest) -> Response:
    return await do_get(ctx, head=True)
