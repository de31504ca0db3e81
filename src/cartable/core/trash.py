# SPDX-License-Identifier: EUPL-1.2
"""The trash: deleting moves an item and everything below it to its owner's trash, in one step.

**Delete** (``detach``, called by every deletion in core: DELETE, the target replaced by a MOVE
or COPY, anything else that removes a node): the item's node is detached from the tree
(``parent_id`` NULL) and one ``trash`` row records where it was (its parent's id, its name, its
path for display), its size and when. Nothing below it is touched: a folder of 5,000 files costs
the same few statements as one file. Its chunks stay referenced; its ancestors lose its size
(the live tree is what the quota and the clients see); the space's ``trash_bytes`` gains it; the
journal gets a "delete" entry. Locks rooted on the item are removed (RFC 4918: a DELETE removes
the locks of what it deletes).

The item's name in the trash is Nextcloud's ``NAME.d<TIMESTAMP>`` (whole seconds); two items of
one name deleted in the same second get successive timestamps.

**Restore**: the node goes back under its original parent folder (by id, so wherever that folder
has moved or however it was renamed since), under its own name; if that name is taken there, under
``NAME (restored).EXT``, then ``NAME (restored 2).EXT``... (Nextcloud's rule); if the parent is
gone (purged, or itself in the trash), at the root of the space. A part of a trashed folder can be
restored alone: its folder is in the trash, so it goes to the root, and the trashed item keeps
the rest. The live quota is checked (507 if
the item does not fit), the ancestors gain its size and new etags, and the journal gets a "create"
entry for it: a sync client sees a delete, then a create. One transaction, a few statements, for
a folder of any size.

**Purge** (one item, the whole trash, retention by age, or core/retention.py making room): the
item's subtree is deleted for good, walking it: its rows, versions and properties, and its chunk
references released (the GC reclaims the bytes after its grace period).

A trashed node is unreachable from the space's root: path lookups, listings, SEARCH (which
excludes the trash explicitly: store/meta/search.py), favorites and the versions endpoint by
file id never see it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cartable.common.faults import hit
from cartable.core import manifest, permissions, tree
from cartable.core.context import Core
from cartable.core.errors import DataMissing, Forbidden, NotFound
from cartable.core.model import Node, Principal
from cartable.core.quota import check_quota
from cartable.core.reads import Content
from cartable.core.tree import Op, display
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import content
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import props as props_repo
from cartable.store.meta import search as search_repo
from cartable.store.meta import shares as shares_repo
from cartable.store.meta import trash as trash_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import SpaceRecord
from cartable.store.meta.trash import TrashRecord

__all__ = ["TrashItem", "detach", "items", "lookup", "open_file", "restore", "purge", "empty",
           "purge_item", "purge_space", "expire", "item_name", "restored_name"]

DAY = 86400.0
_ITEM = re.compile(r"^(?P<name>.+)\.d(?P<stamp>[0-9]{1,15})$", re.DOTALL)
_EXPIRE_BATCH = 100


@dataclass(frozen=True, slots=True)
class TrashItem:
    """One trashed item: its row and its node (kept as it was)."""

    record: TrashRecord
    node: Node

    @property
    def name(self) -> str:
        return item_name(self.record)


def item_name(rec: TrashRecord) -> str:
    return f"{rec.name}.d{rec.deleted_at}"


def restored_name(name: str, n: int, is_dir: bool) -> str:
    """The n-th name tried when ``name`` is taken (n=1: "NAME (restored).EXT", then "(restored 2)")."""
    stem, ext = name, ""
    if not is_dir and "." in name.lstrip("."):
        dot = name.rindex(".")
        stem, ext = name[:dot], name[dot:]
    return f"{stem} (restored){ext}" if n == 1 else f"{stem} (restored {n}){ext}"


def detach(tx: Tx, op: Op, space: SpaceRecord, node: Node, parts: Sequence[str], now: float) -> None:
    """Inside the caller's write transaction (space locked, locks checked): move node and its
    subtree to the trash. The caller propagates ``-node.size`` to the ancestors and journals."""
    if node.parent_id is None:
        raise Forbidden("the root folder cannot be deleted")
    stamp = int(now)
    while trash_repo.stamp_taken(tx, space.id, node.name, stamp):
        stamp += 1
    nodes_repo.update_node(tx, node.id, parent_id=None)
    trash_repo.insert(tx, space_id=space.id, node_id=node.id, parent_id=node.parent_id, name=node.name,
                      location="/".join(parts), kind=node.kind, size=node.size, deleted_at=stamp,
                      deleted_by=op.principal.user_id)
    trash_repo.add_bytes(tx, space.id, trash_delta=node.size)
    locks_repo.delete_for(tx, [node.id])
    if node.is_dir and locks_repo.any_active(tx, now):
        locks_repo.delete_for(tx, [n.id for n in nodes_repo.subtree(tx, node.id)[1:]])
    hit("trash.delete.before_commit")


def _record(tx: Tx, space: SpaceRecord, name: str) -> TrashRecord:
    m = _ITEM.match(name)
    rec = trash_repo.by_name(tx, space.id, m.group("name"), int(m.group("stamp"))) if m else None
    if rec is None:
        raise NotFound(f"there is no {name!r} in your trash")
    return rec


def _node(tx: Tx, rec: TrashRecord) -> Node:
    node = nodes_repo.get(tx, rec.node_id)
    if node is None:
        raise DataMissing(f"the trashed item {item_name(rec)!r} has no node; run `cartable admin fsck`")
    return node


def items(core: Core, principal: Principal) -> list[TrashItem]:
    """The caller's trash, most recently deleted first (one snapshot)."""
    permissions.require_account(principal, "the trash")
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        recs = trash_repo.of_space(tx, space.id)
        out = []
        for rec in recs:
            out.append(TrashItem(rec, _node(tx, rec)))
        return out


def lookup(core: Core, principal: Principal, name: str,
           inside: Sequence[str] = ()) -> tuple[TrashItem, Node, list[Node]]:
    """A trashed item, the node at ``inside`` below it (the item itself when empty) and, for a
    folder, its children: browsing a trashed folder."""
    permissions.require_account(principal, "the trash")
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        rec = _record(tx, space, name)
        item = TrashItem(rec, _node(tx, rec))
        node = tree.resolve_from(tx, item.node.id, inside) if inside else item.node
        return item, node, (nodes_repo.children(tx, node.id) if node.is_dir else [])


def open_file(core: Core, principal: Principal, name: str, inside: Sequence[str] = ()) -> Content:
    """The content of a trashed file (or of a file inside a trashed folder), to download."""
    permissions.require_account(principal, "the trash")
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        rec = _record(tx, space, name)
        top = _node(tx, rec)
        node = tree.resolve_from(tx, top.id, inside) if inside else top
        if node.is_dir:
            raise NotFound(f"{name}{display(inside) if inside else ''} is a folder; it has no content")
        ver = content.get_version(tx, node.version_id) if node.version_id is not None else None
    if ver is None:
        return Content(core, node, 0, [], b"")
    return Content(core, node, ver.size, manifest.unpack(ver.manifest), ver.inline_data)


def _is_live_folder(tx: Tx, space: SpaceRecord, folder_id: int | None) -> Node | None:
    if folder_id is None:
        return None
    folder = nodes_repo.get(tx, folder_id)
    if folder is None or not folder.is_dir or folder.space_id != space.id:
        return None
    if folder.id == space.root_id:
        return folder
    return folder if search_repo.paths_of(tx, [folder.id], space.root_id) else None


def restore(core: Core, op: Op, name: str, inside: Sequence[str] = ()) -> tuple[Node, tuple[str, ...]]:
    """Put a trashed item back (module doc), or only the part of it at ``inside`` (its folder is
    in the trash, so it goes to the root); returns the node and its path from the root."""
    permissions.require_account(op.principal, "the trash")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        rec = _record(tx, space, name)
        node = _node(tx, rec)
        trashed_above: list[int] = []
        if inside:
            node = tree.resolve_from(tx, node.id, inside)
            trashed_above = nodes_repo.ancestor_ids(tx, node.id)  # up to the trashed item
            parent = tree.root_of(tx, space)
        else:
            parent = _is_live_folder(tx, space, rec.parent_id) or tree.root_of(tx, space)
        ancestors = [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)]
        parent_path = tree.path_of(tx, parent.id)
        tree.check_locks(tx, op, display(parent_path), tree.covering_locks(tx, parent.id, ancestors[1:], now))
        check_quota(core, tx, space, node.size)
        new_name, n = node.name, 0
        while nodes_repo.child(tx, parent.id, new_name) is not None:
            n += 1
            new_name = restored_name(node.name, n, node.is_dir)
        nodes_repo.update_node(tx, node.id, parent_id=parent.id, name=new_name)
        if inside:
            tree.propagate(tx, trashed_above, -node.size, now)
            trash_repo.shrink(tx, rec.id, node.size)
        else:
            trash_repo.delete(tx, rec.id)
        trash_repo.add_bytes(tx, space.id, trash_delta=-node.size)
        tree.propagate(tx, ancestors, node.size, now)
        back = nodes_repo.get(tx, node.id)
        assert back is not None
        tree.record(tx, op, "create", [back], now)
        hit("trash.restore.before_commit")
        return back, (*parent_path, new_name)


def purge_item(tx: Tx, rec: TrashRecord, now: float) -> tuple[int, int]:
    """Inside the caller's write transaction (space locked): delete a trashed item for good.
    Returns (trash bytes, old versions' bytes) released."""
    below = nodes_repo.subtree(tx, rec.node_id) if nodes_repo.get(tx, rec.node_id) is not None else []
    ids = [n.id for n in below]
    current = {n.version_id for n in below if n.version_id is not None}
    vers = content.versions_of(tx, ids)
    old_bytes = sum(v.size for v in vers if v.id not in current)
    content.unref_chunks(tx, manifest.ref_counts(v.manifest for v in vers), now)
    content.delete_versions(tx, [v.id for v in vers])
    props_repo.delete_for(tx, ids)
    locks_repo.delete_for(tx, ids)
    shares_repo.delete_for_nodes(tx, ids)  # a link on something gone for good goes with it
    nodes_repo.delete_many(tx, list(reversed(ids)))
    trash_repo.delete(tx, rec.id)
    trash_repo.add_bytes(tx, rec.space_id, trash_delta=-rec.size, versions_delta=-old_bytes)
    hit("trash.purge.before_commit")
    return rec.size, old_bytes


def purge(core: Core, op: Op, name: str) -> None:
    """Delete one trashed item for good."""
    permissions.require_account(op.principal, "the trash")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        purge_item(tx, _record(tx, space, name), now)


def empty(core: Core, op: Op) -> int:
    """Delete everything in the caller's trash for good, one item per transaction (each purge is
    atomic; a crash midway leaves the rest in the trash). Returns how many items went."""
    permissions.require_account(op.principal, "the trash")
    done = 0
    while True:
        now = core.clock()
        with core.db.write() as tx:
            space = tree.space_of(tx, op.principal, for_update=True)
            oldest = trash_repo.oldest(tx, space.id, 1)
            if not oldest:
                return done
            purge_item(tx, oldest[0], now)
        done += 1


def purge_space(tx: Tx, space_id: int, now: float) -> None:
    """Inside the caller's write transaction: purge the whole trash of a space (account deletion)."""
    while True:
        oldest = trash_repo.oldest(tx, space_id, _EXPIRE_BATCH)
        if not oldest:
            return
        for rec in oldest:
            purge_item(tx, rec, now)


def expire(core: Core) -> int:
    """Purge items deleted more than ``trash_retention_days`` ago, each in its own transaction
    (space lock first); returns how many."""
    cutoff = core.clock() - core.limits.trash_retention_days * DAY
    done = 0
    while True:
        with core.db.read() as tx:
            due = trash_repo.expired(tx, cutoff, _EXPIRE_BATCH)
        for rec in due:
            with core.db.write() as tx:
                accounts_repo.lock_space(tx, rec.space_id)
                still = trash_repo.get(tx, rec.id)
                if still is not None:
                    purge_item(tx, still, core.clock())
                    done += 1
        if len(due) < _EXPIRE_BATCH:
            return done
