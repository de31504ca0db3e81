# SPDX-License-Identifier: EUPL-1.2
"""The Nextcloud WebDAV dialect on top of dav/: oc: and nc: properties (oc:favorite settable with
PROPPATCH), OC-* response headers, PATCH with X-Recalculate-Hash, REPORT oc:filter-files
(favorites) and GET of a folder as a zip."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from cartable.core import favorites, files, usershares
from cartable.core.context import Core
from cartable.core.model import Node, Principal
from cartable.dav import xml
from cartable.dav.context import DavRequest, Dialect, run
from cartable.dav.props import LiveProp, PropContext
from cartable.dav.xml import NC, OC, escape
from cartable.http.conditional import quote_etag
from cartable.nextcloud import archive, report

__all__ = ["install", "oc_id", "permissions"]

OCS_NS = "http://open-collaboration-services.org/ns"

# Only what works: no R (reshare) until sharing exists, no S/M (nothing is shared or mounted).
FILE_PERMISSIONS = "GDNVW"
FOLDER_PERMISSIONS = "GDNVCK"
FAVORITE = (OC, "favorite")


def oc_id(node_id: int, instance: str) -> str:
    """Nextcloud's oc:id: the file id zero-padded to 8 digits, then the instance id."""
    return f"{node_id:08d}{instance}"


def permissions(node: Node, mask: int = 31) -> str:
    """oc:permissions for a node reached with core's permission mask (Principal.permissions):
    everything in a user's own space is theirs to change; a link narrows it (G read, W update,
    C/K create, D delete, N/V rename/move: delete and create)."""
    full = FOLDER_PERMISSIONS if node.is_dir else FILE_PERMISSIONS
    if mask & 31 == 31:
        return full
    allowed = {"G": mask & 1, "W": mask & 2, "C": mask & 4, "K": mask & 4, "D": mask & 8,
               "N": mask & 12 == 12, "V": mask & 12 == 12}
    return "".join(c for c in full if allowed[c])


def _checksums(node: Node) -> str | None:
    if node.is_dir or not node.checksums:
        return None
    return "".join(f"<oc:checksum>{escape(c)}</oc:checksum>" for c in node.checksums.split())


def _principal(ctx: PropContext) -> Principal | None:
    p = ctx.extra.get("principal")
    return p if isinstance(p, Principal) else None


def _mount_entry(ctx: PropContext, node: Node) -> usershares.MountEntry | None:
    mounted = ctx.extra.get("mounted")
    entry = mounted.get(node.id) if isinstance(mounted, dict) else None
    return entry if isinstance(entry, usershares.MountEntry) else None


def _share_mask(ctx: PropContext, node: Node) -> int | None:
    """The share permissions of a node reached through a share with the user (a mount point in
    the listing of their folder, or anything below one), or None for their own."""
    entry = _mount_entry(ctx, node)
    if entry is not None:
        return entry.permissions
    p = _principal(ctx)
    return p.permissions if p is not None and p.share_id is not None else None


def _owner(core: Core, ctx: PropContext, node: Node) -> tuple[str, str] | None:
    """(name, display name) of the item's owner: the caller, or the owner of a share's item."""
    entry = _mount_entry(ctx, node)
    if entry is not None:
        return entry.owner, entry.owner_display
    p = _principal(ctx)
    if p is None:
        return None
    if p.share_id is None:
        return p.name, p.display_name
    cached = ctx.extra.get("share_owner")
    if not isinstance(cached, tuple):
        cached = ctx.extra["share_owner"] = usershares.owner_of(core, p.space_id) or ("", "")
    return cached


def _sharing(core: Core, ctx: PropContext, node: Node) -> list[tuple[int, str, str]]:
    """The shares on the caller's own item (computed once for every entry of the answer)."""
    found = ctx.extra.get("sharing")
    if not isinstance(found, dict):
        p = _principal(ctx)
        ids = ctx.extra.get("entry_ids")
        ids = ids if isinstance(ids, list) else [node.id]
        found = ctx.extra["sharing"] = usershares.sharing_of(core, p, ids) if p is not None else {}
    if node.id not in found and node.id not in (ctx.extra.get("entry_ids") or []):
        p = _principal(ctx)
        found.update(usershares.sharing_of(core, p, [node.id]) if p is not None else {})
    return list(found.get(node.id, []))


def _share_types(core: Core) -> Callable[[PropContext, Node], str | None]:
    def get(ctx: PropContext, node: Node) -> str | None:
        types = sorted({t for t, _w, _d in _sharing(core, ctx, node)})
        return "".join(f"<oc:share-type>{t}</oc:share-type>" for t in types)
    return get


def _sharees(core: Core) -> Callable[[PropContext, Node], str | None]:
    def get(ctx: PropContext, node: Node) -> str | None:
        return "".join(f"<nc:sharee><nc:id>{escape(w)}</nc:id><nc:display-name>{escape(d)}</nc:display-name>"
                       f"<nc:type>{t}</nc:type></nc:sharee>" for t, w, d in _sharing(core, ctx, node) if t != 3)
    return get


def _permissions(ctx: PropContext, node: Node) -> str:
    """oc:permissions; S (shared with me) and R (may reshare) for what a share reaches."""
    mask = _share_mask(ctx, node)
    if mask is None:
        p = _principal(ctx)
        return permissions(node, p.permissions if p is not None else 31)
    letters = permissions(node, mask & 15)
    p = _principal(ctx)
    if _mount_entry(ctx, node) is not None or (p is not None and node.id == p.root_id):
        # the mount point itself is the recipient's: they may leave (delete) or rename/move it
        full = FOLDER_PERMISSIONS if node.is_dir else FILE_PERMISSIONS
        letters = "".join(c for c in full if c in letters or c in "DNV")
    return "S" + ("R" if mask & 16 else "") + letters


def _share_permissions(ctx: PropContext, node: Node) -> str:
    mask = _share_mask(ctx, node)
    return str(mask if mask is not None else 31 if node.is_dir else 19)


def _favorite(core: Core) -> Callable[[PropContext, Node], str | None]:
    def get(ctx: PropContext, node: Node) -> str | None:
        principal = _principal(ctx)
        if principal is None:
            return None
        ids = ctx.extra.get("favorites")
        if not isinstance(ids, set):
            ids = ctx.extra["favorites"] = favorites.favorite_ids(core, principal)  # once per answer
        return "1" if node.id in ids else "0"

    return get


async def _set_favorite(ctx: DavRequest, element: str | None) -> None:
    """PROPPATCH oc:favorite: 1 (or true) marks, anything else or a remove unmarks (Nextcloud's
    TagsPlugin reads it the same way)."""
    on = False
    if element is not None:
        text = (xml.parse(element.encode("utf-8")).text or "").strip().lower()
        on = text in ("1", "true")
    await run(favorites.set_favorite, ctx.core, ctx.op, ctx.parts, on)


def _register_props(dialect: Dialect, instance: str, core: Core) -> None:
    for prop in (
        LiveProp(OC, "favorite", _favorite(core), in_allprop=False),
        LiveProp(OC, "id", lambda _c, n: oc_id(n.id, instance)),
        LiveProp(OC, "fileid", lambda _c, n: str(n.id)),
        LiveProp(OC, "permissions", _permissions),
        LiveProp(OCS_NS, "share-permissions", _share_permissions, in_allprop=False),
        LiveProp(OC, "size", lambda _c, n: str(n.size)),
        LiveProp(OC, "checksums", lambda _c, n: _checksums(n), in_allprop=False),
        LiveProp(OC, "share-types", _share_types(core), in_allprop=False),
        LiveProp(NC, "sharees", _sharees(core), in_allprop=False),
        LiveProp(OC, "data-fingerprint",
                 lambda c, n: "" if n.id == c.extra.get("root_id") else None, in_allprop=False),
        LiveProp(OC, "owner-id", lambda c, n: escape(o[0]) if (o := _owner(core, c, n)) else None,
                 in_allprop=False),
        LiveProp(OC, "owner-display-name",
                 lambda c, n: escape(o[1]) if (o := _owner(core, c, n)) else None, in_allprop=False),
        LiveProp(OC, "comments-unread", lambda _c, _n: "0", in_allprop=False),
        LiveProp(NC, "has-preview", lambda _c, _n: "false", in_allprop=False),
        LiveProp(NC, "mount-type", lambda c, n: "shared" if _share_mask(c, n) is not None else "",
                 in_allprop=False),
        LiveProp(NC, "is-encrypted", lambda _c, n: "0" if n.is_dir else None, in_allprop=False),
        LiveProp(NC, "creation_time", lambda _c, n: str(int(n.ctime)), in_allprop=False),
        LiveProp(NC, "upload_time", lambda _c, n: str(int(n.ctime)), in_allprop=False),
    ):
        dialect.props.register(prop)


def _headers(instance: str) -> Callable[[Node], dict[str, str]]:
    def hook(node: Node) -> dict[str, str]:
        headers = {"OC-ETag": quote_etag(node.etag), "OC-FileId": oc_id(node.id, instance)}
        if node.checksums and not node.is_dir:
            headers["OC-Checksum"] = node.checksums.split()[0]
        return headers

    return hook


async def do_patch(ctx: DavRequest) -> Response:
    """PATCH + X-Recalculate-Hash: the desktop asks after a checksum mismatch on download."""
    algo = (ctx.header("x-recalculate-hash") or "").strip()
    if not algo:
        return Response("PATCH is only supported with X-Recalculate-Hash\n", status_code=405)
    value = await run(files.recalculate_checksum, ctx.core, ctx.op, ctx.parts, algo, ctx.preconditions())
    return Response(status_code=204, headers={"OC-Checksum": value})


def install(dialect: Dialect, instance: str, core: Core) -> None:
    """Teach one WebDAV app the Nextcloud dialect: oc:/nc: properties, OC-* headers, PATCH,
    REPORT (favorites), settable oc:favorite, folders as zip."""
    _register_props(dialect, instance, core)
    dialect.header_hooks.append(_headers(instance))
    dialect.handlers["PATCH"] = do_patch
    dialect.handlers["REPORT"] = report.do_report
    dialect.settable.add(FAVORITE)
    dialect.setters[FAVORITE] = _set_favorite
    dialect.folder_get = archive.folder_get
