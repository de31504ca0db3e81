# SPDX-License-Identifier: EUPL-1.2
"""WebDAV locks (RFC 4918 §6-7): exclusive and shared, depth 0 or infinity, with timeouts.

A LOCK on a path that does not exist creates an empty file there (RFC 4918 §7.3), if its name may
be given to a new file (core.names). Taking a lock first deletes the expired lock rows of its node,
so a client that locks the same file all day leaves one row, not thousands.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cartable.common.hashing import new_etag
from cartable.core import permissions, tree
from cartable.core.context import Core
from cartable.core.errors import Conflict, Locked, NotFound, PreconditionFailed
from cartable.core.model import Lock, Node
from cartable.core.preconditions import Preconditions
from cartable.core.tree import Op, check_new, display
from cartable.core.units import unit_of_work
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.records import LockRecord

__all__ = ["lock", "refresh", "unlock", "clamp_timeout", "locks_with_roots", "any_active"]


def clamp_timeout(core: Core, requested: int | None) -> int:
    if requested is None or requested <= 0:
        return core.limits.default_lock_timeout
    return min(requested, core.limits.max_lock_timeout)


@unit_of_work
def lock(core: Core, op: Op, parts: Sequence[str], *, exclusive: bool, infinite: bool,
         owner_xml: str, timeout: int | None, pre: Preconditions | None = None) -> tuple[Lock, bool]:
    """Take a new lock; returns (lock, created) where created says an empty file was made."""
    permissions.require(op.principal, permissions.READ, f"locking {display(parts)}")
    now = core.clock()
    seconds = clamp_timeout(core, timeout)
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        created = False
        try:
            found: Node | None = tree.resolve(tx, op.principal.root_id, parts)
        except NotFound:
            found = None
        if pre is not None:
            pre.check(tx, op.principal.root_id, found, display(parts), now)
        permissions.require(op.principal, permissions.UPDATE if found is not None else permissions.CREATE,
                            f"locking {display(parts)}")
        if found is not None:
            node = found
        else:
            parent = tree.resolve_parent(tx, op.principal.root_id, parts)
            check_new(core.names, parts)
            anc = [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)]
            tree.check_locks(tx, op, display(parts[:-1]), tree.covering_locks(tx, parent.id, anc[1:], now))
            node_id = nodes_repo.insert(tx, space_id=space.id, parent_id=parent.id, name=parts[-1],
                                        kind="f", size=0, mtime=now, ctime=now, etag=new_etag())
            tree.propagate(tx, anc, 0, now)
            got = nodes_repo.get(tx, node_id)
            assert got is not None
            node = got
            tree.record(tx, op, "create", [node], now)
            created = True
        locks_repo.delete_expired_for(tx, node.id, now)
        ancestors = nodes_repo.ancestor_ids(tx, node.id)
        existing = tree.covering_locks(tx, node.id, ancestors, now)
        if infinite and node.is_dir:
            ids = [n.id for n in nodes_repo.subtree(tx, node.id)[1:]]
            existing += locks_repo.on_nodes(tx, ids, now)
        for other in existing:
            if other.exclusive or exclusive:
                raise Locked(f"{display(parts)} is already locked", display(parts))
        rec = LockRecord(token=f"opaquelocktoken:{uuid.uuid4()}", node_id=node.id,
                         user_id=op.principal.user_id, exclusive=exclusive, infinite=infinite,
                         owner_xml=owner_xml, timeout=seconds, expires_at=now + seconds)
        locks_repo.insert(tx, rec)
        return rec, created


@unit_of_work
def refresh(core: Core, op: Op, parts: Sequence[str], timeout: int | None,
            pre: Preconditions | None = None) -> Lock:
    """Refresh the lock whose token the request submitted and that applies to the path."""
    permissions.require(op.principal, permissions.READ, f"locking {display(parts)}")
    now = core.clock()
    seconds = clamp_timeout(core, timeout)
    with core.db.write() as tx:
        tree.space_of(tx, op.principal, for_update=True)
        node = tree.resolve(tx, op.principal.root_id, parts)
        if pre is not None:
            pre.check(tx, op.principal.root_id, node, display(parts), now)
        applying = tree.covering_locks(tx, node.id, nodes_repo.ancestor_ids(tx, node.id), now)
        for lk in applying:
            if lk.token in op.lock_tokens:
                locks_repo.refresh(tx, lk.token, seconds, now + seconds)
                return LockRecord(lk.token, lk.node_id, lk.user_id, lk.exclusive, lk.infinite,
                                  lk.owner_xml, seconds, now + seconds)
    raise PreconditionFailed(f"no lock on {display(parts)} matches the submitted token")


@unit_of_work
def unlock(core: Core, op: Op, parts: Sequence[str], token: str) -> None:
    permissions.require(op.principal, permissions.READ, f"unlocking {display(parts)}")  # else it tells what exists
    now = core.clock()
    with core.db.write() as tx:
        tree.space_of(tx, op.principal, for_update=True)
        node = tree.resolve(tx, op.principal.root_id, parts)
        applying = tree.covering_locks(tx, node.id, nodes_repo.ancestor_ids(tx, node.id), now)
        for lk in applying:
            if lk.token == token:
                locks_repo.delete(tx, token)
                return
    raise Conflict(f"the lock token {token} does not apply to {display(parts)}")


def locks_with_roots(core: Core, node: Node) -> list[tuple[Lock, tuple[str, ...]]]:
    """Locks that apply to node, each with the path of the node it was taken on."""
    now = core.clock()
    with core.db.read() as tx:
        found = tree.covering_locks(tx, node.id, nodes_repo.ancestor_ids(tx, node.id), now)
        return [(lk, tree.path_of(tx, lk.node_id)) for lk in found]


def any_active(core: Core) -> bool:
    """Whether any lock is in force (when none is, per-node lookups can be skipped)."""
    with core.db.fast_read() as tx:
        return locks_repo.any_active(tx, core.clock())
