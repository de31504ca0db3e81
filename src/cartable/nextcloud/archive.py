# SPDX-License-Identifier: EUPL-1.2
"""GET on a folder as a zip (Nextcloud's ZipFolderPlugin): asked for with ``Accept:
application/zip`` or ``?accept=zip``; ``?files=["a","b"]`` (a JSON list, or one JSON string) or
``X-NC-Files`` headers keep only those members of the folder.

The archive is streamed as it is made: entries are stored (not compressed: most files are
compressed already, and the CPU is better spent elsewhere), each with a data descriptor, zip64
when sizes or the number of entries need it, names in UTF-8 (flag bit 11). Nothing is built in
memory or on disk first: one file's bytes at a time pass through. A file that cannot be read once
the answer has started ends the stream early (the client sees a truncated archive, never a
silently incomplete one); a file deleted meanwhile is left out."""

from __future__ import annotations

import json
import logging
import time
import zipfile
from collections.abc import Iterator
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from cartable.common.paths import split_path
from cartable.core import archive
from cartable.core.archive import ArchiveEntry
from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.core.model import Node, Principal
from cartable.dav.context import DavRequest, run

__all__ = ["folder_get", "wants_zip", "zip_stream"]

log = logging.getLogger("cartable.nextcloud.archive")

_ZIP_TYPES = {"application/zip", "zip"}
_MIN_DATE, _MAX_DATE = (1980, 1, 1, 0, 0, 0), (2107, 12, 31, 23, 59, 58)


def wants_zip(ctx: DavRequest) -> bool:
    param = ctx.request.query_params.get("accept")
    if param:
        accepted = {a.strip().lower() for a in param.split(",")}
    else:
        accepted = {a.split(";")[0].strip().lower() for a in (ctx.header("accept") or "").split(",")}
    return bool(accepted & _ZIP_TYPES)


def _members(ctx: DavRequest) -> list[tuple[str, ...]] | None:
    raw = ctx.request.query_params.get("files")
    names: list[str]
    if raw:
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidInput("files must be a JSON list of names, e.g. files=[\"a.txt\",\"b\"]") from None
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(n, str) for n in names):
            raise InvalidInput("files must be a JSON list of names (strings)")
    else:
        names = [v for v in ctx.request.headers.getlist("x-nc-files") if v]
    if not names:
        return None
    return [split_path(n) for n in names]


def _date_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    value = tuple(time.gmtime(max(0.0, mtime))[:6])
    return min(max(value, _MIN_DATE), _MAX_DATE)  # type: ignore[return-value]


class _Sink:
    """An unseekable file for zipfile: it keeps what was written until it is taken."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.buf += data
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.buf = bytes(self.buf), bytearray()
        return out


def zip_stream(core: Core, principal: Principal, entries: list[ArchiveEntry]) -> Iterator[bytes]:
    """The archive, piece by piece (blocking: iterate it in a worker thread)."""
    sink = _Sink()
    zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)  # type: ignore[arg-type]
    for entry in entries:
        info = zipfile.ZipInfo(entry.name, _date_time(entry.mtime))
        if entry.is_dir:
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        else:
            content = archive.open_file(core, principal, entry.node_id)
            if content is None:
                continue
            info.external_attr = 0o100644 << 16
            info.file_size = content.size
            with zf.open(info, "w", force_zip64=content.size >= zipfile.ZIP64_LIMIT) as out:
                for piece in content.iter_range():
                    out.write(piece)
                    if len(sink.buf) >= 1024 * 1024:
                        yield sink.take()
        if sink.buf:
            yield sink.take()
    zf.close()
    yield sink.take()


async def folder_get(ctx: DavRequest, node: Node) -> Response | None:
    """The dialect's folder_get hook: a zip when the client asks for one, else None."""
    if not wants_zip(ctx):
        return None
    members = _members(ctx)
    name, entries = await run(archive.plan, ctx.core, ctx.principal, ctx.parts, members)
    filename = name + ".zip"
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}; filename=\"{fallback}\"",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none';",
        "X-Accel-Buffering": "no",
    }
    return StreamingResponse(iterate_in_threadpool(zip_stream(ctx.core, ctx.principal, entries)),
                             headers=headers, media_type="application/zip")
