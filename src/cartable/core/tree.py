# SPDX-License-Identifier: EUPL-1.2
"""Inside-a-transaction helpers shared by every mutation: resolving paths, checking the names of
new entries and locks, propagating etags and sizes to ancestors, and writing the change journal."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cartable.common.hashing import new_etag
from cartable.common.paths import InvalidPath, NamePolicy, check_new_name
from cartable.core.errors import Conflict, Forbidden, InvalidName, Locked, NotFound
from cartable.core.model import Node, Principal
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import journal
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import LockRecord, SpaceRecord

__all__ = ["Op", "space_of", "root_of", "resolve", "resolve_parent", "display", "check_locks",
           "covering_locks", "propagate", "propagate_sums", "record", "record_each", "path_of",
           "resolve_from", "check_new"]


@dataclass(frozen=True, slots=True)
class Op:
    """Who asks, and what they proved: submitted lock tokens and the client's operation id."""

    principal: Principal
    lock_tokens: frozenset[str] = frozenset()
    device_id: str | None = None
    op_id: str | None = None


def display(parts: Sequence[str]) -> str:
    return "/" + "/".join(parts)


def space_of(tx: Tx, principal: Principal, *, for_update: bool = False, shared: bool = False) -> SpaceRecord:
    """The principal's space; for_update locks it (exclusive: every other writer of the space
    waits), shared holds it shared (see store.meta.accounts.share_space)."""
    get = accounts_repo.lock_space if for_update else accounts_repo.share_space if shared else accounts_repo.space
    sp = get(tx, principal.space_id)
    if sp is None:
        raise Forbidden(f"user {principal.name!r} has no storage space")
    return sp


def root_of(tx: Tx, space: SpaceRecord) -> Node:
    root = nodes_repo.get(tx, space.root_id)
    if root is None:
        raise NotFound("the space's root folder is missing")
    return root


def resolve(tx: Tx, root_id: int, parts: Sequence[str]) -> Node:
    """The node at parts (already validated names) below the principal's root ``root_id``
    (Principal.root_id: the space's root, or the node a link shares; never the space's root for
    a scoped principal, so nothing above its root can be named); NotFound names the path."""
    return resolve_from(tx, root_id, parts)


def resolve_from(tx: Tx, root_id: int, parts: Sequence[str]) -> Node:
    """The node at parts below the folder root_id (one query per component)."""
    if not parts:
        root = nodes_repo.get(tx, root_id)
        if root is None:
            raise NotFound("the space's root folder is missing")
        return root
    parent_id = root_id
    node: Node | None = None
    for i, name in enumerate(parts):
        if node is not None and not node.is_dir:
            raise NotFound(f"{display(parts[:i])} is a file, so {display(parts)} does not exist")
        node = nodes_repo.child(tx, parent_id, name)
        if node is None:
            raise NotFound(f"{display(parts[:i + 1])} does not exist")
        parent_id = node.id
    assert node is not None
    return node


def resolve_parent(tx: Tx, root_id: int, parts: Sequence[str]) -> Node:
    """The folder that would hold parts[-1]; Conflict (409) if it is missing or a file."""
    if not parts:
        raise Forbidden("the root folder cannot be created, replaced or removed")
    try:
        parent = resolve(tx, root_id, parts[:-1])
    except NotFound:
        raise Conflict(f"the parent folder {display(parts[:-1])} does not exist") from None
    if not parent.is_dir:
        raise Conflict(f"{display(parts[:-1])} is a file, not a folder")
    return parent


def check_new(policy: NamePolicy, parts: Sequence[str]) -> None:
    """InvalidName unless parts[-1] may be given to a new file or folder. Called only where an
    entry is inserted under a name that does not exist yet, so names stored before a stricter
    policy stay readable, writable and deletable."""
    try:
        check_new_name(parts[-1], policy)
    except InvalidPath as exc:
        raise InvalidName(f"{display(parts)} cannot be created: {exc}") from None


def path_of(tx: Tx, node_id: int) -> tuple[str, ...]:
    """Names from below the space root down to the node."""
    names: list[str] = []
    cur = nodes_repo.get(tx, node_id)
    while cur is not None and cur.parent_id is not None:
        names.append(cur.name)
        cur = nodes_repo.get(tx, cur.parent_id)
    return tuple(reversed(names))


def covering_locks(tx: Tx, node_id: int, ancestors: Sequence[int], now: float, *,
                   any_active: bool | None = None) -> list[LockRecord]:
    """Locks that apply to node: on the node itself, or depth-infinity locks on an ancestor.
    ``any_active``: whether any lock is in force at all, when the caller already asked."""
    if not (locks_repo.any_active(tx, now) if any_active is None else any_active):
        return []
    found = locks_repo.on_nodes(tx, [node_id, *ancestors], now)
    return [lk for lk in found if lk.node_id == node_id or lk.infinite]


def check_locks(tx: Tx, op: Op, path: str, locks: Iterable[LockRecord]) -> None:
    """Locked unless the request submitted the token of every lock that applies."""
    for lk in locks:
        if lk.token not in op.lock_tokens:
            raise Locked(f"{path} is locked; submit its lock token in an If header to change it", path)


def propagate(tx: Tx, ancestor_ids: Sequence[int], size_delta: int, now: float,
              *, touch_parent: bool = True) -> None:
    """New etag (and size change) for every ancestor; the direct parent also gets mtime now."""
    if ancestor_ids:
        nodes_repo.propagate(tx, ancestor_ids, size_delta=size_delta, etag=new_etag(),
                             touched=(ancestor_ids[0],) if touch_parent else (), now=now)


def propagate_sums(tx: Tx, deltas: Mapping[int, int], touched: Collection[int], now: float) -> dict[int, int]:
    """propagate() for many changes at once: deltas = {folder id: bytes added below it}; folders
    with the same change share one statement (and one new etag); those in touched (the direct
    parents of what changed) also get mtime now. Returns {folder id: its new size}."""
    groups: dict[int, list[int]] = {}
    for folder, delta in deltas.items():
        groups.setdefault(delta, []).append(folder)
    sizes: dict[int, int] = {}
    for delta, folders in groups.items():
        folders.sort()
        sizes.update(nodes_repo.propagate(tx, folders, size_delta=delta, etag=new_etag(),
                                          touched=[f for f in folders if f in touched], now=now))
    return sizes


def record(tx: Tx, op: Op, opname: str, nodes: Iterable[Node], now: float) -> None:
    """Append one journal entry per node (parents first), tagged with the client's op id."""
    record_each(tx, op, [(opname, n) for n in nodes], now)


def record_each(tx: Tx, op: Op, entries: Iterable[tuple[str, Node]], now: float) -> None:
    """Append (operation, node) entries in the order given, tagged with the client's op id."""
    journal.append(tx, [
        {"space_id": n.space_id, "node_id": n.id, "parent_id": n.parent_id, "name": n.name,
         "kind": n.kind, "op": opname, "version_id": n.version_id, "size": n.size, "mtime": n.mtime,
         "device_id": op.device_id, "op_id": op.op_id, "at": now}
        for opname, n in entries
    ])
