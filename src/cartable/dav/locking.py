# SPDX-License-Identifier: EUPL-1.2
"""LOCK and UNLOCK. The If header of a LOCK (a refresh carries its token there) is checked by
core inside the lock's transaction, like every write's."""

from __future__ import annotations

import re

from starlette.responses import Response

from cartable.core import files, locks
from cartable.core.errors import InvalidInput
from cartable.dav import xml
from cartable.dav.context import DavRequest, run
from cartable.dav.props import activelock_xml
from cartable.http.bodies import read_limited

__all__ = ["do_lock", "do_unlock", "parse_timeout"]


def parse_timeout(header: str | None) -> int | None:
    if not header:
        return None
    for part in header.split(","):
        part = part.strip()
        if part.lower() == "infinite":
            return 10**9
        m = re.fullmatch(r"(?i)second-(\d+)", part)
        if m:
            return int(m.group(1))
    return None


def _lock_body(ctx: DavRequest, lock: locks.Lock, root_parts: tuple[str, ...], is_dir: bool) -> str:
    return (f'{xml.XML_HEAD}<d:prop xmlns:d="DAV:"><d:lockdiscovery>'
            f"{activelock_xml(lock, ctx.href(root_parts, is_dir))}</d:lockdiscovery></d:prop>\n")


async def do_lock(ctx: DavRequest) -> Response:
    body = await read_limited(ctx.request, ctx.config.max_xml_body)
    timeout = parse_timeout(ctx.header("timeout"))
    if not body.strip():
        # A refresh: the token comes in the If header.
        if not ctx.if_header.tokens:
            raise InvalidInput("LOCK without a body refreshes a lock: send its token in an If header")
        lock = await run(locks.refresh, ctx.core, ctx.op, ctx.parts, timeout, ctx.preconditions())
        node = await run(files.stat, ctx.core, ctx.principal, ctx.parts)
        return Response(_lock_body(ctx, lock, ctx.parts, node.is_dir), 200,
                        media_type="application/xml; charset=utf-8")
    root = xml.parse(body)
    if root.tag != xml.clark(xml.DAV, "lockinfo"):
        raise InvalidInput("the LOCK body must be a DAV:lockinfo element")
    scope = root.find(xml.clark(xml.DAV, "lockscope"))
    exclusive = scope is None or scope.find(xml.clark(xml.DAV, "shared")) is None
    owner_el = root.find(xml.clark(xml.DAV, "owner"))
    owner = xml.serialize(owner_el) if owner_el is not None else ""
    depth = (ctx.header("depth") or "infinity").lower()
    if depth not in ("0", "infinity"):
        raise InvalidInput("Depth for LOCK must be 0 or infinity")
    lock, created = await run(locks.lock, ctx.core, ctx.op, ctx.parts, exclusive=exclusive,
                              infinite=depth == "infinity", owner_xml=owner, timeout=timeout,
                              pre=ctx.preconditions())
    node = await run(files.stat, ctx.core, ctx.principal, ctx.parts)
    return Response(_lock_body(ctx, lock, ctx.parts, node.is_dir), 201 if created else 200,
                    headers={"Lock-Token": f"<{lock.token}>"},
                    media_type="application/xml; charset=utf-8")


async def do_unlock(ctx: DavRequest) -> Response:
    header = (ctx.header("lock-token") or "").strip()
    if not (header.startswith("<") and header.endswith(">")):
        raise InvalidInput("UNLOCK needs a Lock-Token header: <opaquelocktoken:...>")
    await run(locks.unlock, ctx.core, ctx.op, ctx.parts, header[1:-1])
    return Response(status_code=204)
