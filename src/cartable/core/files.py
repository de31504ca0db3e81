# SPDX-License-Identifier: EUPL-1.2
"""Reading and reshaping the tree: stat, list, mkdir, delete, move, copy, usage.

Every mutation is one metadata transaction: under the space lock it resolves its nodes, checks the
caller's preconditions (If-Match, If-None-Match, the WebDAV If header: core/preconditions.py), the
tree, the name of anything new (core.names), locks and quota, then changes rows, propagates etags
and sizes to the ancestors and appends to the change journal; or it changes nothing.

What a deletion removes (DELETE, or the target a MOVE or COPY replaces) goes to the owner's trash
in one step (core/trash.py: one row, whatever the size of the subtree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cartable.common.hashing import new_etag
from cartable.core import manifest, permissions, reads, retention, trash, tree
from cartable.core.checksums import new_hasher
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, Conflict, Forbidden, PreconditionFailed
from cartable.core.model import Node, Principal, Usage
from cartable.core.preconditions import Preconditions
from cartable.core.quota import check_quota, quota_of
from cartable.core.tree import Op, check_new, display
from cartable.core.units import unit_of_work
from cartable.store.meta import content, journal
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import props as props_repo
from cartable.store.meta import shares as shares_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import SpaceRecord

__all__ = ["stat", "listing", "mkdir", "delete", "move", "copy", "usage", "remove_subtree", "detach_subtree",
           "instance_id", "recalculate_checksum"]

_NO_PRECONDITIONS = Preconditions()


def stat(core: Core, principal: Principal, parts: Sequence[str]) -> Node:
    # The poll's lookup: on the raw driver (store/meta/raw.py).
    permissions.require(principal, permissions.READ, f"reading {display(parts)}")
    with core.db.fast_read() as tx:
        return tree.resolve_from(tx, principal.root_id, parts)


def listing(core: Core, principal: Principal, parts: Sequence[str]) -> tuple[Node, list[Node]]:
    """The node and, for a folder, its children (sorted by name), from one snapshot."""
    permissions.require(principal, permissions.READ, f"listing {display(parts)}")
    with core.db.fast_read() as tx:
        node = tree.resolve_from(tx, principal.root_id, parts)
        return node, (nodes_repo.children(tx, node.id) if node.is_dir else [])


def usage(core: Core, principal: Principal) -> Usage:
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        return Usage(tree.root_of(tx, space).size, quota_of(core, space))


@unit_of_work
def mkdir(core: Core, op: Op, parts: Sequence[str], pre: Preconditions = _NO_PRECONDITIONS) -> Node:
    permissions.require(op.principal, permissions.CREATE, f"creating the folder {display(parts)}")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        parent = tree.resolve_parent(tx, op.principal.root_id, parts)
        existing = nodes_repo.child(tx, parent.id, parts[-1])
        pre.check(tx, op.principal.root_id, existing, display(parts), now)
        if existing is not None:
            raise AlreadyExists(f"{display(parts)} already exists")
        check_new(core.names, parts)
        ancestors = [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)]
        tree.check_locks(tx, op, display(parts[:-1]),
                         tree.covering_locks(tx, parent.id, ancestors[1:], now))
        node_id = nodes_repo.insert(tx, space_id=space.id, parent_id=parent.id, name=parts[-1], kind="d",
                                    size=0, mtime=now, ctime=now, etag=new_etag())
        tree.propagate(tx, ancestors, 0, now)
        node = nodes_repo.get(tx, node_id)
        assert node is not None
        tree.record(tx, op, "create", [node], now)
        return node


def remove_subtree(core: Core, tx: Tx, top: Node, now: float) -> list[Node]:
    """Delete top and everything below for good (rows, versions, props, locks; chunk references
    released), bypassing the trash: for a whole space going away (account deletion). Does not
    propagate or journal: the caller does."""
    below, held = detach_subtree(tx, top)
    content.unref_chunks(tx, held, now)
    return below


def detach_subtree(tx: Tx, top: Node) -> tuple[list[Node], Counter[bytes]]:
    """Delete top and everything below (rows, versions, props, locks); returns them and the chunk
    references their versions held, which the caller must release in the same transaction (in its
    one sorted pass over chunk rows: ``content.change_refs``)."""
    below = nodes_repo.subtree(tx, top.id)
    ids = [n.id for n in below]
    vers = content.versions_of(tx, ids)
    held = manifest.ref_counts(v.manifest for v in vers)
    content.delete_versions(tx, [v.id for v in vers])
    props_repo.delete_for(tx, ids)
    locks_repo.delete_for(tx, ids)
    shares_repo.delete_for_nodes(tx, ids)
    nodes_repo.delete_many(tx, list(reversed(ids)))
    return below, held


def _check_subtree_locks(tx: Tx, op: Op, parts: Sequence[str], node: Node, ancestors: Sequence[int],
                         now: float) -> None:
    tree.check_locks(tx, op, display(parts), tree.covering_locks(tx, node.id, ancestors, now))
    if node.is_dir and locks_repo.any_active(tx, now):
        ids = [n.id for n in nodes_repo.subtree(tx, node.id)[1:]]
        tree.check_locks(tx, op, display(parts), locks_repo.on_nodes(tx, ids, now))


@unit_of_work
def delete(core: Core, op: Op, parts: Sequence[str], pre: Preconditions = _NO_PRECONDITIONS) -> None:
    permissions.require(op.principal, permissions.DELETE, f"deleting {display(parts)}")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        if not parts:
            raise Forbidden("the root folder cannot be deleted")
        node = tree.resolve(tx, op.principal.root_id, parts)
        pre.check(tx, op.principal.root_id, node, display(parts), now)
        ancestors = nodes_repo.ancestor_ids(tx, node.id)
        _check_subtree_locks(tx, op, parts, node, ancestors, now)
        trash.detach(tx, op, space, node, parts, now)
        tree.propagate(tx, ancestors, -node.size, now)
        tree.record(tx, op, "delete", [node], now)


def _is_inside(tx: Tx, node: Node, maybe_ancestor: Node) -> bool:
    return node.id == maybe_ancestor.id or maybe_ancestor.id in nodes_repo.ancestor_ids(tx, node.id)


def _prepare_target(core: Core, tx: Tx, op: Op, space: SpaceRecord, src: Node, dst: Sequence[str],
                    overwrite: bool, now: float) -> tuple[Node, Node | None, list[int]]:
    """Check the destination; returns (parent, existing node or None, parent's ancestors)."""
    parent = tree.resolve_parent(tx, op.principal.root_id, dst)
    if _is_inside(tx, parent, src) and src.is_dir:
        raise Forbidden(f"cannot put {src.name!r} inside itself ({display(dst)})")
    existing = nodes_repo.child(tx, parent.id, dst[-1])
    ancestors = [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)]
    if existing is not None and existing.id == src.id:
        return parent, existing, ancestors
    if existing is not None and not overwrite:
        raise PreconditionFailed(f"{display(dst)} already exists and Overwrite is F")
    if existing is not None and existing.is_dir and _is_inside(tx, src, existing):
        raise Forbidden(f"{display(dst)} holds {src.name!r}; it cannot be replaced by it")
    if existing is not None:
        permissions.require(op.principal, permissions.UPDATE | permissions.DELETE, f"replacing {display(dst)}")
        _check_subtree_locks(tx, op, dst, existing, ancestors, now)
    else:
        check_new(core.names, dst)
        tree.check_locks(tx, op, display(dst[:-1]), tree.covering_locks(tx, parent.id, ancestors[1:], now))
    return parent, existing, ancestors


@unit_of_work
def move(core: Core, op: Op, src: Sequence[str], dst: Sequence[str], *, overwrite: bool = True,
         mtime: float | None = None, pre: Preconditions = _NO_PRECONDITIONS) -> bool:
    """Rename or move; the moved node keeps its id and etag (and takes mtime if given: rclone
    sends X-OC-Mtime on MOVE). ``pre`` is about the source. Returns True if dst was created.
    Needs DELETE (the source goes) and CREATE (the destination comes); replacing a destination
    needs UPDATE and DELETE too."""
    permissions.require(op.principal, permissions.DELETE | permissions.CREATE, f"moving {display(src)}")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        if not src or not dst:
            raise Forbidden("the root folder cannot be moved or replaced")
        node = tree.resolve(tx, op.principal.root_id, src)
        pre.check(tx, op.principal.root_id, node, display(src), now)
        src_anc = nodes_repo.ancestor_ids(tx, node.id)
        _check_subtree_locks(tx, op, src, node, src_anc, now)
        parent, existing, dst_anc = _prepare_target(core, tx, op, space, node, dst, overwrite, now)
        if existing is not None and existing.id == node.id:
            return False  # moving onto itself changes nothing
        if existing is not None:
            trash.detach(tx, op, space, existing, dst, now)
            tree.propagate(tx, dst_anc, -existing.size, now)
            tree.record(tx, op, "delete", [existing], now)
        tree.propagate(tx, src_anc, -node.size, now)
        try:
            if mtime is None:
                nodes_repo.update_node(tx, node.id, parent_id=parent.id, name=dst[-1])
            else:
                nodes_repo.update_node(tx, node.id, parent_id=parent.id, name=dst[-1], mtime=mtime)
        except RowConflict:
            raise Conflict(f"{display(dst)} was created meanwhile") from None
        tree.propagate(tx, dst_anc, node.size, now)
        moved = nodes_repo.get(tx, node.id)
        assert moved is not None
        tree.record(tx, op, "move", [moved], now)
        return existing is None


@unit_of_work
def copy(core: Core, op: Op, src: Sequence[str], dst: Sequence[str], *, overwrite: bool = True,
         depth_infinity: bool = True, pre: Preconditions = _NO_PRECONDITIONS) -> bool:
    """Copy a file or folder (with Depth 0, a folder without its members). New ids, new etags.
    ``pre`` is about the source. Needs READ (of the source) and CREATE."""
    permissions.require(op.principal, permissions.READ | permissions.CREATE, f"copying {display(src)}")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        if not dst:
            raise Forbidden("the root folder cannot be replaced")
        node = tree.resolve(tx, op.principal.root_id, src)
        pre.check(tx, op.principal.root_id, node, display(src), now)
        parent, existing, dst_anc = _prepare_target(core, tx, op, space, node, dst, overwrite, now)
        if existing is not None and existing.id == node.id:
            raise Forbidden(f"cannot copy {display(src)} onto itself")
        items = nodes_repo.subtree(tx, node.id) if node.is_dir and depth_infinity else [node]
        total = sum(n.size for n in items if not n.is_dir)
        freed = existing.size if existing is not None else 0
        check_quota(core, tx, space, total - freed)
        released: Counter[bytes] = Counter()
        if existing is not None:
            trash.detach(tx, op, space, existing, dst, now)
            tree.propagate(tx, dst_anc, -existing.size, now)
            tree.record(tx, op, "delete", [existing], now)
        created = _copy_rows(tx, space, items, node, parent.id, dst[-1], now, released)
        tree.propagate(tx, dst_anc, total, now)
        tree.record(tx, op, "create", created, now)
        retention.settle(core, tx, space, now)
        return existing is None


def _copy_rows(tx: Tx, space: SpaceRecord, items: list[Node], top: Node, parent_id: int, name: str,
               now: float, released: Counter[bytes]) -> list[Node]:
    """Copy the rows; the copies' chunk references are added, and ``released`` ones released, in
    one sorted pass."""
    new_ids: dict[int, int] = {}
    versions = {v.id: v for v in content.versions_of(tx, [n.id for n in items if not n.is_dir])}
    refs: Counter[bytes] = Counter()
    created: list[Node] = []
    for n in items:
        is_top = n.id == top.id
        new_parent = parent_id if is_top else new_ids[n.parent_id]  # type: ignore[index]
        size = n.size if not n.is_dir or not is_top or len(items) > 1 else 0
        new_id = nodes_repo.insert(tx, space_id=space.id, parent_id=new_parent, name=name if is_top else n.name,
                                   kind=n.kind, size=size, mtime=n.mtime, ctime=now, etag=new_etag(),
                                   content_type=n.content_type, checksums=n.checksums)
        new_ids[n.id] = new_id
        if not n.is_dir and n.version_id is not None:
            v = versions[n.version_id]
            vid = content.insert_version(tx, node_id=new_id, size=v.size, manifest=v.manifest,
                                         inline_data=v.inline_data, created_at=now)
            nodes_repo.update_node(tx, new_id, version_id=vid)
            refs.update(manifest.ref_counts([v.manifest]))
        props_repo.copy(tx, n.id, new_id)
        rec = nodes_repo.get(tx, new_id)
        assert rec is not None
        created.append(rec)
    refs.subtract(released)
    missing = content.change_refs(tx, refs, {}, now)
    if missing:
        raise Conflict("a chunk of the source vanished during the copy; retry")
    return created


def instance_id(core: Core) -> str:
    """This installation's id (part of Nextcloud's oc:id), created with the database."""
    with core.db.read() as tx:
        return journal.get_kv(tx, "instance_id") or "ocunknown000"


@unit_of_work
def recalculate_checksum(core: Core, op: Op, parts: Sequence[str], algo: str,
                         pre: Preconditions = _NO_PRECONDITIONS) -> str:
    """Hash the file's current content with algo (SHA1, MD5, SHA256, ADLER32), store it as the
    file's checksum and return 'ALGO:hex'. The etag is unchanged: the content is."""
    permissions.require(op.principal, permissions.READ | permissions.UPDATE, f"changing {display(parts)}")
    content = reads.open_content(core, op.principal, parts)
    hasher = new_hasher(algo)
    for piece in content.iter_range():
        hasher.update(piece)
    value = f"{algo.upper()}:{hasher.hexdigest()}"
    with core.db.write() as tx:
        tree.space_of(tx, op.principal, for_update=True)
        node = tree.resolve(tx, op.principal.root_id, parts)
        pre.check(tx, op.principal.root_id, node, display(parts), core.clock())
        if node.etag != content.node.etag:
            raise Conflict(f"{display(parts)} changed while its checksum was computed; retry")
        nodes_repo.update_node(tx, node.id, checksums=value)
    return value
