# SPDX-License-Identifier: EUPL-1.2
"""Shares with users and groups, and the mount points where recipients see them.

A user share (type 0, ``share_with`` the user's name) or a group share (type 1, ``share_with``
the group's name) is a row of ``shares`` (store/meta/shares.py). Each recipient sees the shared
item **mounted** in their own tree: a row of ``share_mounts`` (store/meta/mounts.py) names the
folder of their space that holds it and the entry's name there, made when the share reaches them
(at once for a user and the group's members, when a member is added for later ones), under the
``share_folder`` setting (made if missing), under a free name when taken ("Cours (2)").

Crossing a mount (``enter``): the request's path is looked up from the recipient's root; when it
goes through a mount point, the rest resolves from the shared node with a scoped principal whose
root is that node, whose permissions are the share's (narrowed by the caller's own), whose space
(locks, quota, trash) is the owner's, and whose ``share_id`` is the share. Core's permission
checks (core/permissions.py) then apply exactly as for a public link: nothing above the shared
node can be named, read-only refuses writes, and writes are charged to the owner's quota.

Rules:
- The owner of an item shares it, or a recipient with the share bit (16) reshares what they
  hold: never wider than the caller's own permissions (Forbidden). Never the root of a space,
  never with oneself or the item's owner, never twice with the same recipient (AlreadyExists).
  Every share includes read; on a file create and delete are dropped.
- Deleting the share (its maker), or a recipient leaving the group, hides the mount; nothing of
  the owner's is deleted. A recipient deleting their mount point leaves the share: a user share
  is deleted, a group share is hidden for them only (the row stays, marked left).
- Journal: a mount appearing is a "create" of a folder (or file) entry in the recipient's space,
  its node id the shared node's; disappearing is "unshare" (never "delete": a sync client
  removes its local copy without treating it as a deletion of the owner's files).
- Audit: ``share.created``, ``share.updated``, ``share.deleted``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cartable.common.hashing import new_etag
from cartable.common.paths import split_path
from cartable.core import audit, permissions, shares, tree
from cartable.core.accounts import name_key
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from cartable.core.model import Node, Principal
from cartable.core.tree import Op, display
from cartable.core.units import unit_of_work
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import groups as groups_repo
from cartable.store.meta import mounts as mounts_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import search as search_repo
from cartable.store.meta import shares as repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.mounts import Mount
from cartable.store.meta.records import ShareRecord

__all__ = ["USER", "GROUP", "DEFAULT_PERMISSIONS", "ShareInfo", "Entered", "create_share", "shares_of",
           "shared_with_me", "get_share", "update_share", "delete_share", "refresh_user", "enter", "mounts_in",
           "leave", "move_mount", "is_user_share", "folder_etags", "MountEntry", "owner_of", "sharing_of"]

USER, GROUP = 0, 1
DEFAULT_PERMISSIONS = permissions.ALL  # Nextcloud's default for a user or group share (31)


@dataclass(frozen=True, slots=True)
class ShareInfo:
    """A user or group share: the row, the shared node, its path from the owner's root, who made
    it, who owns the item, the recipient's display name, and (for a recipient) their mount path."""

    share: ShareRecord
    node: Node
    path: tuple[str, ...]
    sharer: str
    sharer_display: str
    owner: str
    owner_display: str
    with_display: str
    target: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Entered:
    """A path that crosses a mount: the scoped principal, the parts below the mount point, and
    the mount point's parts in the recipient's tree."""

    principal: Principal
    parts: tuple[str, ...]
    mount_parts: tuple[str, ...]
    mount: Mount


def _actor(principal: Principal, address: str) -> audit.Actor:
    return audit.Actor(principal.name, address)


def _live_path(tx: Tx, space_id: int, node: Node) -> tuple[str, ...] | None:
    space = accounts_repo.space(tx, space_id)
    if space is None:
        return None
    if node.id == space.root_id:
        return ()
    return search_repo.paths_of(tx, [node.id], space.root_id).get(node.id)


def _info(tx: Tx, rec: ShareRecord, target: tuple[str, ...] | None = None) -> ShareInfo | None:
    node = nodes_repo.get(tx, rec.node_id)
    space = accounts_repo.space(tx, rec.space_id)
    sharer = accounts_repo.user_by_id(tx, rec.owner_id)
    if node is None or space is None or sharer is None:
        return None
    owner = (accounts_repo.user_by_id(tx, space.owner_id) if space.owner_id is not None else None) or sharer
    path = _live_path(tx, rec.space_id, node)
    if path is None:
        return None
    with_display = rec.share_with or ""
    if rec.share_type == USER:
        u = accounts_repo.user_by_name(tx, name_key(with_display))
        with_display = u.display_name if u is not None and u.display_name else with_display
    else:
        g = groups_repo.group_by_key(tx, name_key(with_display))
        with_display = g.display_name if g is not None else with_display
    return ShareInfo(rec, node, path, sharer.name, sharer.display_name, owner.name, owner.display_name,
                     with_display, target)


def _check_perms(perms: int, node: Node, held: int) -> int:
    if not 0 < perms <= permissions.ALL:
        raise InvalidInput(f"permissions {perms} are not a combination of read 1, update 2, create 4, "
                           "delete 8 and share 16")
    if not perms & permissions.READ:
        raise InvalidInput(f"permissions {perms}: a share with a user or group always includes read (1)")
    if not node.is_dir:
        perms &= ~(permissions.CREATE | permissions.DELETE)
    wider = perms & ~held
    if wider:
        names = ", ".join(n for bit, n in permissions.NAMES.items() if wider & bit)
        raise Forbidden(f"you cannot give permissions you do not hold yourself ({names}): a reshare is never "
                        "wider than the share it comes from")
    return perms


def _share_folder(core: Core, tx: Tx, user_id: int, space_id: int, now: float, op: Op) -> Node:
    """The recipient's share folder, made (with its missing parents) if needed."""
    space = accounts_repo.space(tx, space_id)
    if space is None:
        raise Forbidden("the recipient has no storage space")
    node = nodes_repo.get(tx, space.root_id)
    assert node is not None
    for name in split_path(core.limits.share_folder):
        child = nodes_repo.child(tx, node.id, name)
        if child is None:
            child_id = nodes_repo.insert(tx, space_id=space.id, parent_id=node.id, name=name, kind="d", size=0,
                                         mtime=now, ctime=now, etag=new_etag())
            tree.propagate(tx, [node.id, *nodes_repo.ancestor_ids(tx, node.id)], 0, now)
            child = nodes_repo.get(tx, child_id)
            assert child is not None
            tree.record(tx, op, "create", [child], now)
        elif not child.is_dir:
            child = node  # a file where the folder should be: mount beside it
            break
        node = child
    return node


def _free_name(tx: Tx, user_id: int, parent_id: int, name: str) -> str:
    stem, ext = name, ""
    if "." in name.lstrip("."):
        dot = name.rindex(".")
        stem, ext = name[:dot], name[dot:]
    candidate, n = name, 1
    while nodes_repo.child(tx, parent_id, candidate) is not None or \
            mounts_repo.named(tx, user_id, parent_id, candidate) is not None:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


def _mount_node(node: Node, space_id: int, parent_id: int, name: str) -> Node:
    """The shared node as it appears at a mount point (the recipient's space, parent and name)."""
    return replace(node, space_id=space_id, parent_id=parent_id, name=name)


def _materialize(core: Core, tx: Tx, op: Op, user_id: int, rec: ShareRecord, now: float) -> None:
    """A mount of rec for user_id, unless they have one (live, left or stale) or own the item."""
    if mounts_repo.any_of(tx, user_id, rec.id) is not None:
        return
    user = accounts_repo.user_by_id(tx, user_id)
    node = nodes_repo.get(tx, rec.node_id)
    space = accounts_repo.home_space(tx, user_id) if user is not None else None
    if user is None or node is None or space is None or space.id == rec.space_id or user_id == rec.owner_id:
        return
    folder = _share_folder(core, tx, user_id, space.id, now, op)
    name = _free_name(tx, user_id, folder.id, node.name)
    mounts_repo.insert(tx, share_id=rec.id, user_id=user_id, parent_id=folder.id, name=name, created_at=now)
    tree.propagate(tx, [folder.id, *nodes_repo.ancestor_ids(tx, folder.id)], 0, now)
    tree.record(tx, op, "create", [_mount_node(node, space.id, folder.id, name)], now)


def _unshare_entry(tx: Tx, op: Op, user_id: int, rec: ShareRecord, parent_id: int, name: str, now: float) -> None:
    space = accounts_repo.home_space(tx, user_id)
    node = nodes_repo.get(tx, rec.node_id)
    if space is None or node is None:
        return
    if nodes_repo.get(tx, parent_id) is not None:
        tree.propagate(tx, [parent_id, *nodes_repo.ancestor_ids(tx, parent_id)], 0, now)
    tree.record(tx, op, "unshare", [_mount_node(node, space.id, parent_id, name)], now)


def refresh_user(core: Core, tx: Tx, user_id: int, now: float, op: Op | None = None) -> None:
    """Bring the user's mounts in line with the shares that reach them (after a membership
    change): mounts for new ones, "unshare" entries for those that no longer reach them."""
    op = op or Op(Principal(user_id, "", "", False, 0, 0))
    spaces = set()
    for mount in mounts_repo.delete_unreachable(tx, user_id):
        rec = repo.by_id(tx, mount.share_id)
        if rec is not None and not mount.left_share:
            _unshare_entry(tx, op, user_id, rec, mount.parent_id, mount.name, now)
        if rec is not None:
            spaces.add(rec.space_id)
    for space_id in sorted(spaces):
        _settle_reshares(core, tx, op, space_id, now)
    for rec in mounts_repo.reaching(tx, user_id):
        _materialize(core, tx, op, user_id, rec, now)


def _recipient_ids(tx: Tx, rec: ShareRecord) -> list[int]:
    if rec.share_type == USER:
        u = accounts_repo.user_by_name(tx, name_key(rec.share_with or ""))
        return [u.id] if u is not None else []
    g = groups_repo.group_by_key(tx, name_key(rec.share_with or ""))
    return groups_repo.member_ids(tx, g.id) if g is not None else []


def _item_owner_id(tx: Tx, space_id: int) -> int | None:
    space = accounts_repo.space(tx, space_id)
    return space.owner_id if space is not None else None


@unit_of_work
def create_share(core: Core, op: Op, parts: Sequence[str], share_type: int, share_with: str, *,
                 perms: int = permissions.ALL, address: str = "") -> ShareInfo:
    """Share the caller's item at parts (their own, or inside a share they may reshare) with a
    user or a group. NotFound for an unknown user or group; InvalidInput for oneself."""
    entered = enter(core, op.principal, parts)
    if entered is not None:  # a reshare of (something inside) a share with the caller
        op, parts = replace(op, principal=entered.principal), entered.parts
    principal = op.principal
    if principal.link_id is not None:
        raise Forbidden("sharing is not available through a public link")
    if share_type not in (USER, GROUP):
        raise InvalidInput(f"share type {share_type} is not a user (0) or a group (1) share")
    if principal.share_id is not None and not permissions.can(principal, permissions.SHARE):
        raise Forbidden("this share does not give the share permission: you cannot reshare it")
    now = core.clock()
    with core.db.write() as tx:
        space, node = shares.shareable(tx, principal, parts)
        mask = _check_perms(perms, node, principal.permissions)
        owner_id = _item_owner_id(tx, space.id)
        if share_type == USER:
            target = accounts_repo.user_by_name(tx, name_key(share_with))
            if target is None or target.disabled:
                raise NotFound(f"there is no user {share_with[:80]!r} to share with: check the name")
            if target.id == principal.user_id:
                raise InvalidInput("you cannot share with yourself")
            if target.id == owner_id:
                raise InvalidInput(f"{target.name!r} owns this item already")
            name = target.name
        else:
            group = groups_repo.group_by_key(tx, name_key(share_with))
            if group is None:
                raise NotFound(f"there is no group {share_with[:80]!r} to share with: check the name")
            name = group.name
        for other in repo.of_node(tx, node.id):
            if other.share_type == share_type and other.share_with == name:
                raise AlreadyExists(f"{display(parts) or '/'} is already shared with {name!r}: change that share "
                                    "instead")
        share_id = repo.insert(tx, node_id=node.id, space_id=space.id, owner_id=principal.user_id,
                               share_type=share_type, share_with=name, token=None, permissions=mask,
                               password_hash=None, expires_at=None, download_limit=None, download_count=0,
                               label="", note="", hide_download=False, created_at=now)
        rec = repo.by_id(tx, share_id)
        assert rec is not None
        tree.record(tx, op, "props", [node], now)
        for uid in _recipient_ids(tx, rec):
            if uid != principal.user_id:
                _materialize(core, tx, op, uid, rec, now)
        kind = "user" if share_type == USER else "group"
        audit.record_in(tx, core, "share.created", _actor(principal, address), object=f"share:{share_id}",
                        detail=f"{kind} {name} on {display(parts)}, permissions {mask}")
        info = _info(tx, rec)
        assert info is not None
        return info


def shares_of(core: Core, principal: Principal, parts: Sequence[str] | None = None, *,
              subfiles: bool = False) -> list[ShareInfo]:
    """The user and group shares the caller made: all, on the item at parts, or (subfiles) on
    the children of the folder at parts."""
    permissions.require_account(principal, "sharing")
    entered = enter(core, principal, parts) if parts is not None else None
    if entered is not None:  # an item inside a share with the caller: the reshares they made of it
        principal, parts = entered.principal, entered.parts
    with core.db.read() as tx:
        node_ids: list[int] | None = None
        if parts is not None:
            node = tree.resolve(tx, principal.root_id, parts)
            node_ids = [c.id for c in nodes_repo.children(tx, node.id)] if subfiles else [node.id]
        found = [_info(tx, rec) for rec in repo.of_owner(tx, principal.user_id, node_ids)
                 if rec.share_type in (USER, GROUP)]
    return [i for i in found if i is not None]


def _mount_parts(tx: Tx, principal: Principal, mount: Mount) -> tuple[str, ...] | None:
    space = accounts_repo.space(tx, principal.space_id)
    if space is None:
        return None
    if mount.mount.parent_id == space.root_id:
        return (mount.mount.name,)
    parent = search_repo.paths_of(tx, [mount.mount.parent_id], space.root_id).get(mount.mount.parent_id)
    return None if parent is None else (*parent, mount.mount.name)


def shared_with_me(core: Core, principal: Principal) -> list[ShareInfo]:
    """The shares that reach the caller, with where each is mounted in their tree."""
    permissions.require_account(principal, "sharing")
    with core.db.read() as tx:
        out = []
        for mount in mounts_repo.of_user(tx, principal.user_id):
            target = _mount_parts(tx, principal, mount)
            info = _info(tx, mount.share, target) if target is not None else None
            if info is not None:
                out.append(info)
    return out


def _own(tx: Tx, principal: Principal, share_id: int) -> ShareRecord:
    rec = repo.by_id(tx, share_id)
    if rec is None or rec.owner_id != principal.user_id or rec.share_type not in (USER, GROUP):
        raise NotFound(f"you have no share {share_id}")
    return rec


def get_share(core: Core, principal: Principal, share_id: int) -> ShareInfo | None:
    """The caller's user or group share, or None if share_id is not one (a link, or unknown)."""
    with core.db.read() as tx:
        rec = repo.by_id(tx, share_id)
        if rec is None or rec.owner_id != principal.user_id or rec.share_type not in (USER, GROUP):
            return None
        info = _info(tx, rec)
    if info is None:
        raise NotFound(f"the item of share {share_id} is in the trash")
    return info


def is_user_share(core: Core, share_id: int) -> bool:
    with core.db.read() as tx:
        rec = repo.by_id(tx, share_id)
    return rec is not None and rec.share_type in (USER, GROUP)


@unit_of_work
def update_share(core: Core, op: Op, share_id: int, perms: int, *, address: str = "") -> ShareInfo:
    """New permissions for the caller's share (never wider than the caller's own on the item)."""
    principal = op.principal
    permissions.require_account(principal, "sharing")
    now = core.clock()
    with core.db.write() as tx:
        rec = _own(tx, principal, share_id)
        node = nodes_repo.get(tx, rec.node_id)
        if node is None:
            raise NotFound(f"the item of share {share_id} is gone; nothing was changed")
        held = _held(tx, principal.user_id, rec)
        mask = _check_perms(perms, node, held)
        repo.update(tx, share_id, permissions=mask)
        _settle_reshares(core, tx, op, rec.space_id, now)
        tree.record(tx, op, "props", [node], now)
        audit.record_in(tx, core, "share.updated", _actor(principal, address), object=f"share:{share_id}",
                        detail=f"permissions {mask}")
        new = repo.by_id(tx, share_id)
        assert new is not None
        info = _info(tx, new)
    if info is None:
        raise NotFound(f"the item of share {share_id} is in the trash")
    return info


def _held(tx: Tx, user_id: int, rec: ShareRecord) -> int:
    """What user_id holds on rec's item: everything in their own space; otherwise the bits of
    the shares mounted in their tree on the item or one of its ancestors (rec itself aside)."""
    space = accounts_repo.home_space(tx, user_id)
    if space is not None and space.id == rec.space_id:
        return permissions.ALL
    above = {rec.node_id, *nodes_repo.ancestor_ids(tx, rec.node_id)}
    best = 0
    for mount in mounts_repo.of_user(tx, user_id):
        if mount.share.id != rec.id and mount.share.node_id in above:
            best |= mount.share.permissions
    return best


def _remove(tx: Tx, op: Op, rec: ShareRecord, now: float) -> None:
    """Delete a share: "unshare" entries for the recipients who see it, its mounts with it."""
    live = {m.mount.user_id for uid in _recipient_ids(tx, rec)
            for m in mounts_repo.of_user(tx, uid) if m.share.id == rec.id}
    for mount in mounts_repo.by_share(tx, rec.id):
        if mount.user_id in live:
            _unshare_entry(tx, op, mount.user_id, rec, mount.parent_id, mount.name, now)
    repo.delete(tx, rec.id)  # mounts go with it (ON DELETE CASCADE)


def _settle_reshares(core: Core, tx: Tx, op: Op, space_id: int, now: float) -> None:
    """After a share of the space was removed or narrowed: a reshare whose maker no longer holds
    the share bit on its item goes; one wider than what its maker still holds is narrowed. Until
    nothing changes (a reshare of a reshare)."""
    changed = True
    while changed:
        changed = False
        for rec in repo.of_space(tx, space_id, (USER, GROUP)):
            held = _held(tx, rec.owner_id, rec)
            if held == permissions.ALL:
                continue
            if not held & permissions.SHARE or not held & permissions.READ:
                _remove(tx, op, rec, now)
                audit.record_in(tx, core, "share.deleted", audit.SYSTEM, object=f"share:{rec.id}",
                                detail="reshare whose maker lost the share it came from")
                changed = True
            elif rec.permissions & ~held:
                repo.update(tx, rec.id, permissions=rec.permissions & held)
                audit.record_in(tx, core, "share.updated", audit.SYSTEM, object=f"share:{rec.id}",
                                detail=f"permissions {rec.permissions & held}: narrowed to what its maker holds")
                changed = True


@unit_of_work
def delete_share(core: Core, op: Op, share_id: int, *, address: str = "") -> None:
    """Remove the caller's share: every recipient's mount disappears ("unshare" in their
    journals); the owner's files stay."""
    principal = op.principal
    permissions.require_account(principal, "sharing")
    now = core.clock()
    with core.db.write() as tx:
        rec = _own(tx, principal, share_id)
        _remove(tx, op, rec, now)
        _settle_reshares(core, tx, op, rec.space_id, now)
        node = nodes_repo.get(tx, rec.node_id)
        if node is not None:
            tree.record(tx, op, "props", [node], now)
        audit.record_in(tx, core, "share.deleted", _actor(principal, address), object=f"share:{share_id}",
                        detail=f"{'user' if rec.share_type == USER else 'group'} {rec.share_with} on node "
                               f"{rec.node_id}")


def _mount_at(tx: Tx, principal: Principal, parts: Sequence[str]) -> tuple[Mount, int] | None:
    """The mount the path crosses, and how many parts name the mount point; None if none."""
    mine = mounts_repo.of_user(tx, principal.user_id)
    if not mine:
        return None
    by_place = {(m.mount.parent_id, m.mount.name): m for m in mine}
    parent_id = principal.root_id
    for i, name in enumerate(parts):
        mount = by_place.get((parent_id, name))
        if mount is not None:
            return mount, i + 1
        node = nodes_repo.child(tx, parent_id, name)
        if node is None or not node.is_dir:
            return None
        parent_id = node.id
    return None


def enter(core: Core, principal: Principal, parts: Sequence[str]) -> Entered | None:
    """The scoped principal for a path of an account that goes through one of its mounts (see
    the module docstring), or None when the path stays in its own space."""
    if principal.link_id is not None or principal.share_id is not None or not parts:
        return None
    with core.db.read() as tx:
        found = _mount_at(tx, principal, parts)
        if found is None:
            return None
        mount, n = found
        node = nodes_repo.get(tx, mount.share.node_id)
        owner = accounts_repo.user_by_id(tx, mount.share.owner_id)
        if node is None or owner is None or owner.disabled or _live_path(tx, mount.share.space_id, node) is None:
            raise NotFound(f"{display(parts[:n])} is a share whose item is no longer available")
    scoped = Principal(principal.user_id, principal.name, principal.display_name, False, mount.share.space_id,
                       node.id, principal.app_password_id, principal.permissions & mount.share.permissions,
                       share_id=mount.share.id)
    return Entered(scoped, tuple(parts[n:]), tuple(parts[:n]), mount)


@dataclass(frozen=True, slots=True)
class MountEntry:
    """A mount point as an entry of its folder: the shared node under its mount name (in the
    caller's space), the share's permissions narrowed by the caller's, the item's owner."""

    node: Node
    permissions: int
    owner: str
    owner_display: str


def mounts_in(core: Core, principal: Principal, folder: Node) -> list[MountEntry]:
    """The mount points in one of the caller's folders, by name."""
    if principal.link_id is not None or principal.share_id is not None or not folder.is_dir:
        return []
    with core.db.read() as tx:
        out = []
        for mount in mounts_repo.under(tx, principal.user_id, folder.id):
            node = nodes_repo.get(tx, mount.share.node_id)
            if node is None or _live_path(tx, mount.share.space_id, node) is None:
                continue
            owner = _space_owner(tx, mount.share.space_id)
            out.append(MountEntry(_mount_node(node, principal.space_id, folder.id, mount.mount.name),
                                  mount.share.permissions & principal.permissions, *(owner or ("", ""))))
    return out


def _space_owner(tx: Tx, space_id: int) -> tuple[str, str] | None:
    space = accounts_repo.space(tx, space_id)
    user = accounts_repo.user_by_id(tx, space.owner_id) if space is not None and space.owner_id is not None else None
    return None if user is None else (user.name, user.display_name or user.name)


def owner_of(core: Core, space_id: int) -> tuple[str, str] | None:
    """(name, display name) of the user whose space it is."""
    with core.db.read() as tx:
        return _space_owner(tx, space_id)


def sharing_of(core: Core, principal: Principal, node_ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
    """For the caller's own items among node_ids: {node id: [(share type, with, display name)]}
    of the shares on them (a link has no "with"). {} inside a share or through a link."""
    if principal.link_id is not None or principal.share_id is not None or not node_ids:
        return {}
    out: dict[int, list[tuple[int, str, str]]] = {}
    with core.db.read() as tx:
        for rec in repo.of_nodes(tx, list(node_ids)):
            if rec.space_id != principal.space_id:
                continue
            shown = rec.share_with or ""
            if rec.share_type == USER:
                u = accounts_repo.user_by_name(tx, name_key(shown))
                shown = u.display_name or u.name if u is not None else shown
            elif rec.share_type == GROUP:
                g = groups_repo.group_by_key(tx, name_key(shown))
                shown = g.display_name if g is not None else shown
            out.setdefault(rec.node_id, []).append((rec.share_type, rec.share_with or "", shown))
    return out


def folder_etags(core: Core, principal: Principal, folders: Sequence[Node]) -> dict[int, str]:
    """ETags for those of the caller's own folders that hold a mount point at any depth: their
    own etag combined with the etag (and permissions) of every mounted node below them, so that a
    change inside a share (by anyone) changes the etag of the mount point's ancestors in each
    recipient's tree, as a client polling its root expects. {} for a caller without mounts (one
    query)."""
    if principal.link_id is not None or principal.share_id is not None:
        return {}
    wanted = {n.id: n.etag for n in folders if n.is_dir and n.space_id == principal.space_id}
    if not wanted:
        return {}
    with core.db.read() as tx:
        mine = mounts_repo.of_user(tx, principal.user_id)
        if not mine:
            return {}
        below: dict[int, list[str]] = {}
        for mount in mine:
            shared = nodes_repo.get(tx, mount.share.node_id)
            if shared is None:
                continue
            for folder_id in (mount.mount.parent_id, *nodes_repo.ancestor_ids(tx, mount.mount.parent_id)):
                if folder_id in wanted:
                    below.setdefault(folder_id, []).append(f"{mount.share.permissions}:{shared.etag}")
    return {fid: hashlib.sha1("\n".join([wanted[fid], *sorted(parts)]).encode()).hexdigest()
            for fid, parts in below.items()}


@unit_of_work
def leave(core: Core, op: Op, entered: Entered, *, address: str = "") -> None:
    """The recipient deletes their mount point: leave the share (a user share is deleted, a
    group share hidden for them). The owner's files stay."""
    principal = op.principal
    now = core.clock()
    with core.db.write() as tx:
        mount = entered.mount
        rec = repo.by_id(tx, mount.share.id)
        if rec is None:
            raise NotFound(f"{display(entered.mount_parts)} is no longer shared with you")
        _unshare_entry(tx, op, principal.user_id, rec, mount.mount.parent_id, mount.mount.name, now)
        if rec.share_type == USER:
            repo.delete(tx, rec.id)
        else:
            mounts_repo.leave(tx, mount.mount.id)
        _settle_reshares(core, tx, op, rec.space_id, now)
        audit.record_in(tx, core, "share.deleted", _actor(principal, address), object=f"share:{rec.id}",
                        detail=f"left by {principal.name}")


@unit_of_work
def move_mount(core: Core, op: Op, entered: Entered, dst: Sequence[str]) -> bool:
    """Rename or move the caller's mount point to dst in their own tree (never into another
    mount). True if it was renamed onto a free name; AlreadyExists when dst is taken."""
    principal = op.principal
    if not dst:
        raise Forbidden("a shared folder cannot replace your root folder")
    now = core.clock()
    with core.db.write() as tx:
        if _mount_at(tx, principal, dst[:-1]) is not None:
            raise Forbidden("a share cannot be moved into another share")
        parent = tree.resolve_parent(tx, principal.root_id, dst)
        tree.check_new(core.names, dst)
        mount = entered.mount
        if nodes_repo.child(tx, parent.id, dst[-1]) is not None or \
                mounts_repo.named(tx, principal.user_id, parent.id, dst[-1]) is not None:
            raise AlreadyExists(f"{display(dst)} already exists: choose another name")
        node = nodes_repo.get(tx, mount.share.node_id)
        if node is None:
            raise NotFound(f"{display(entered.mount_parts)} is no longer shared with you")
        mounts_repo.move(tx, mount.mount.id, parent.id, dst[-1])
        _unshare_entry(tx, op, principal.user_id, mount.share, mount.mount.parent_id, mount.mount.name, now)
        tree.propagate(tx, [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)], 0, now)
        tree.record(tx, op, "create", [_mount_node(node, principal.space_id, parent.id, dst[-1])], now)
    return True
