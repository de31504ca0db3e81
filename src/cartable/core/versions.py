# SPDX-License-Identifier: EUPL-1.2
"""Versions: every overwrite keeps the content it replaces.

A file's content is a ``versions`` row (its manifest: chunk references) and ``nodes.version_id``
names the current one. An overwrite (PUT, the assembly of a chunked upload, a bulk upload's file,
a version restore) used to release the old row; now ``keep`` leaves it in place, in the same
transaction: its chunks stay referenced (nothing is copied: a version costs a row, and bytes only
for the chunks it does not share), the space's ``versions_bytes`` grows by its size, and the file's
old versions are thinned (``thin``).

Thinning follows Nextcloud's schedule, by age (now minus the version's creation): every version
of the last second, then at most one per 2 seconds in the first 10 seconds, per 10 seconds in the
first minute, per minute in the first hour, per hour in the first day, per day in the first 30
days, per week after; none older than ``versions_max_age_days``. "One per step" means one per
slot of the clock (multiples of the step), the newest of the slot (``to_drop``): unlike
Nextcloud's spacing from the last version kept, saving every second does not collapse the history
to one version. ``gc.collect`` calls ``expire``, which applies the same rule as versions age.

Quota: old versions count against the owner's quota, up to ``versions_quota_share`` of it
(core/retention.py drops the oldest first).

``restore`` makes a chosen old version current and the current content an old version, in one
transaction, journalled as a modification. Dropping a version releases its chunk references;
the GC reclaims what nobody else references after its grace period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cartable.common.faults import hit
from cartable.common.hashing import new_etag
from cartable.core import manifest, permissions, tree
from cartable.core.context import Core
from cartable.core.errors import DataMissing, NotFound
from cartable.core.model import Node, Principal
from cartable.core.quota import check_quota
from cartable.core.reads import Content
from cartable.core.tree import Op
from cartable.store.meta import content, history
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import search as search_repo
from cartable.store.meta import trash as trash_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import VersionRecord

__all__ = ["SCHEDULE", "VersionInfo", "keep", "thin", "to_drop", "drop", "listing", "version_id", "open_version",
           "restore", "delete", "expire"]

DAY = 86400.0
# (the age up to which it applies, in seconds; at most one version per this many seconds)
SCHEDULE: tuple[tuple[float, float], ...] = (
    (10.0, 2.0), (60.0, 10.0), (3600.0, 60.0), (DAY, 3600.0), (30 * DAY, DAY), (float("inf"), 7 * DAY))
_BATCH = 200


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: int
    size: int
    created_at: float
    mtime: float  # the file's mtime while this was its content (its creation time if unknown)
    etag: str
    name: str = ""  # its name in the versions collection (``names``)


def _step(age: float) -> float:
    for limit, step in SCHEDULE:
        if age <= limit:
            return step
    return SCHEDULE[-1][1]


def to_drop(created: Sequence[tuple[int, float]], now: float, max_age: float) -> list[int]:
    """Which of the (version id, created at) old versions of one file the schedule drops: those
    older than max_age, and all but the newest of each time slot (a slot is ``step`` seconds of
    the clock, aligned on multiples of step, the step being the one of the version's age).
    Versions at most a second old are all kept. Slots are aligned on the clock, not on the
    versions, so a version kept stays kept until its slot widens with age."""
    dropped: list[int] = []
    seen: set[tuple[float, int]] = set()
    for vid, at in sorted(created, key=lambda v: (-v[1], -v[0])):  # newest first
        age = max(0.0, now - at)
        if age > max_age:
            dropped.append(vid)
            continue
        if age <= 1.0:
            continue
        step = _step(age)
        slot = (step, int(at // step))
        if slot in seen:
            dropped.append(vid)
        else:
            seen.add(slot)
    return dropped


def drop(tx: Tx, space_id: int, old: Sequence[VersionRecord], now: float) -> int:
    """Delete old versions (never a current one: the caller chose them from ``history``), release
    their chunks and the space's count; returns the bytes released."""
    if not old:
        return 0
    content.unref_chunks(tx, manifest.ref_counts(v.manifest for v in old), now)
    content.delete_versions(tx, [v.id for v in old])
    freed = sum(v.size for v in old)
    trash_repo.add_bytes(tx, space_id, versions_delta=-freed)
    return freed


def thin(core: Core, tx: Tx, space_id: int, node_id: int, now: float, current: int | None = None) -> None:
    """Apply the schedule to one file's old versions (``current``: see history.old_of_node)."""
    old = history.old_of_node(tx, node_id, current)
    doomed = set(to_drop([(v.id, v.created_at) for v in old], now, core.limits.versions_max_age_days * DAY))
    drop(tx, space_id, [v for v in old if v.id in doomed], now)


def keep(core: Core, tx: Tx, existing: Node, new_version_id: int, now: float) -> None:
    """In the transaction that makes ``new_version_id`` the content of ``existing``: its previous
    content becomes an old version (counted, stamped with the file's mtime), then the file's old
    versions are thinned."""
    if existing.version_id is None:
        return
    history.set_mtime(tx, existing.version_id, existing.mtime)
    trash_repo.add_bytes(tx, existing.space_id, versions_delta=existing.size)
    thin(core, tx, existing.space_id, existing.id, now, current=new_version_id)


def _live_file(tx: Tx, principal: Principal, file_id: int) -> Node:
    """The caller's live (not trashed) file with this id; NotFound for anything else, including
    another user's file (which is never told apart from a missing one)."""
    node = nodes_repo.get(tx, file_id)
    if node is None or node.space_id != principal.space_id or node.is_dir:
        raise NotFound(f"you have no file with id {file_id}")
    if node.id not in search_repo.paths_of(tx, [node.id], principal.root_id):
        raise NotFound(f"you have no file with id {file_id} (it may be in the trash)")
    return node


def _info(v: VersionRecord) -> VersionInfo:
    return VersionInfo(v.id, v.size, v.created_at, v.mtime if v.mtime is not None else v.created_at,
                       f"v{v.id}-{v.node_id}")


def _named(infos: Sequence[VersionInfo]) -> list[VersionInfo]:
    """Nextcloud names a version by its timestamp (the file's mtime then, in whole seconds), and
    its clients and integration steps build URLs from it: so does cartable, adding ``.ID`` to
    the names two old versions of one file would share."""
    stamps = Counter(int(i.mtime) for i in infos)
    return [replace(i, name=str(int(i.mtime)) if stamps[int(i.mtime)] == 1 else f"{int(i.mtime)}.{i.id}")
            for i in infos]


def listing(core: Core, principal: Principal, file_id: int) -> tuple[Node, list[VersionInfo]]:
    """The file and its old versions, newest first, named (one snapshot)."""
    permissions.require_account(principal, "versions")
    with core.db.read() as tx:
        node = _live_file(tx, principal, file_id)
        return node, _named([_info(v) for v in history.old_of_node(tx, node.id)])


def version_id(core: Core, principal: Principal, file_id: int, name: str) -> int:
    """The id of the file's old version with that name (see ``_named``); NotFound otherwise."""
    permissions.require_account(principal, "versions")
    _node, infos = listing(core, principal, file_id)
    for info in infos:
        if info.name == name:
            return info.id
    raise NotFound(f"file {file_id} has no old version named {name!r}")


def _old_version(tx: Tx, node: Node, version_id: int) -> VersionRecord:
    v = content.get_version(tx, version_id)
    if v is None or v.node_id != node.id or v.id == node.version_id:
        raise NotFound(f"file {node.id} has no old version {version_id}")
    return v


def open_version(core: Core, principal: Principal, file_id: int, version_id: int) -> tuple[Node, VersionInfo, Content]:
    """An old version's content, to download."""
    permissions.require_account(principal, "versions")
    with core.db.read() as tx:
        node = _live_file(tx, principal, file_id)
        v = _old_version(tx, node, version_id)
    return node, _info(v), Content(core, node, v.size, manifest.unpack(v.manifest), v.inline_data)


def restore(core: Core, op: Op, file_id: int, version_id: int) -> Node:
    """Make the old version current and the current content an old version, in one transaction:
    quota (the file's size changes), etag and size to the ancestors, one "modify" journal
    entry. The file's mtime becomes now (it changed); its checksum is forgotten (unknown)."""
    permissions.require_account(op.principal, "versions")
    from cartable.core import retention  # retention imports this module

    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        node = _live_file(tx, op.principal, file_id)
        v = _old_version(tx, node, version_id)
        ancestors = nodes_repo.ancestor_ids(tx, node.id)
        tree.check_locks(tx, op, f"file {node.id}", tree.covering_locks(tx, node.id, ancestors, now))
        check_quota(core, tx, space, v.size - node.size)
        if node.version_id is not None:
            if content.get_version(tx, node.version_id) is None:
                raise DataMissing(f"the current content of file {node.id} is missing; run `cartable admin fsck`")
            history.set_mtime(tx, node.version_id, node.mtime)
        trash_repo.add_bytes(tx, space.id, versions_delta=node.size - v.size)
        nodes_repo.update_node(tx, node.id, version_id=v.id, size=v.size, mtime=now, etag=new_etag(),
                               checksums=None)
        tree.propagate(tx, ancestors, v.size - node.size, now)
        restored = nodes_repo.get(tx, node.id)
        assert restored is not None
        tree.record(tx, op, "modify", [restored], now)
        thin(core, tx, space.id, node.id, now, current=v.id)
        retention.settle(core, tx, space, now)
        hit("versions.restore.before_commit")
        return restored


def delete(core: Core, op: Op, file_id: int, version_id: int) -> None:
    """Delete one old version (its chunks go to the GC if nothing else references them)."""
    permissions.require_account(op.principal, "versions")
    now = core.clock()
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        node = _live_file(tx, op.principal, file_id)
        drop(tx, space.id, [_old_version(tx, node, version_id)], now)


def expire(core: Core) -> int:
    """Drop old versions past ``versions_max_age_days`` and thin the old versions of files edited
    in the last month as they age (the schedule moves with time; it runs at least daily, so a
    version reaching the weekly slots is thinned while its file still qualifies); returns how
    many versions were dropped. Each batch
    is its own transaction, taking the space lock first (the lock order)."""
    from cartable.store.meta import accounts as accounts_repo

    now = core.clock()
    dropped = 0
    while True:
        with core.db.write() as tx:
            found = history.older_than(tx, now - core.limits.versions_max_age_days * DAY, _BATCH)
            by_space: dict[int, list[VersionRecord]] = {}
            for v, space_id in found:
                by_space.setdefault(space_id, []).append(v)
            for space_id in sorted(by_space):
                accounts_repo.lock_space(tx, space_id)
                drop(tx, space_id, by_space[space_id], now)
        dropped += len(found)
        if len(found) < _BATCH:
            break
    after = 0
    while True:
        with core.db.read() as tx:
            # A version's slot stops changing once it is a month old (weekly slots from then on):
            # only files with a younger old version can have anything to thin.
            files = history.nodes_with_several(tx, after, _BATCH, now - SCHEDULE[-2][0] - DAY)
        for node_id, space_id in files:
            with core.db.write() as tx:
                accounts_repo.lock_space(tx, space_id)
                before = len(history.old_of_node(tx, node_id))
                thin(core, tx, space_id, node_id, now)
                dropped += before - len(history.old_of_node(tx, node_id))
        if len(files) < _BATCH:
            return dropped
        after = files[-1][0]

