# SPDX-License-Identifier: EUPL-1.2
"""Old versions: the rows of ``versions`` that are not their file's current one (``nodes.version_id``).
Queries for listing, retention by age and trimming by quota. No user logic here."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select, update

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import VersionRecord
from cartable.store.meta.schema import nodes, versions

__all__ = ["old_of_node", "oldest_in_space", "older_than", "nodes_with_several", "set_mtime", "old_total"]

_NOT_CURRENT: ColumnElement[bool] = or_(nodes.c.version_id.is_(None), versions.c.id != nodes.c.version_id)
_OLD = select(versions).join(nodes, nodes.c.id == versions.c.node_id).where(_NOT_CURRENT)


def old_of_node(tx: Tx, node_id: int, current: int | None = None) -> list[VersionRecord]:
    """The file's versions that are not its current one, newest first. ``current``: the id of the
    current version when the caller's transaction is about to make it so (the node row does not
    say it yet); by default the node row's."""
    if current is None:
        stmt = _OLD.where(versions.c.node_id == node_id)
    else:
        stmt = select(versions).where(versions.c.node_id == node_id, versions.c.id != current)
    rows = tx.execute(stmt.order_by(versions.c.created_at.desc(), versions.c.id.desc()))
    return [VersionRecord.from_row(r) for r in rows]


def oldest_in_space(tx: Tx, space_id: int, limit: int) -> list[VersionRecord]:
    """The space's old versions (of live or trashed files), oldest first."""
    rows = tx.execute(_OLD.where(nodes.c.space_id == space_id)
                      .order_by(versions.c.created_at, versions.c.id).limit(limit))
    return [VersionRecord.from_row(r) for r in rows]


def older_than(tx: Tx, before: float, limit: int) -> list[tuple[VersionRecord, int]]:
    """(old version, its file's space id) for old versions created before ``before``, oldest first."""
    rows = tx.execute(select(versions, nodes.c.space_id.label("_space"))
                      .join(nodes, nodes.c.id == versions.c.node_id).where(_NOT_CURRENT, versions.c.created_at < before)
                      .order_by(versions.c.created_at, versions.c.id).limit(limit))
    return [(VersionRecord.from_row(r), int(r._mapping["_space"])) for r in rows]


def nodes_with_several(tx: Tx, after: int, limit: int, since: float) -> list[tuple[int, int]]:
    """(node id, space id) of files with at least two old versions, one of them created at or
    after ``since``, by node id after ``after``."""
    rows = tx.execute(select(versions.c.node_id, nodes.c.space_id).join(nodes, nodes.c.id == versions.c.node_id)
                      .where(_NOT_CURRENT, versions.c.node_id > after)
                      .group_by(versions.c.node_id, nodes.c.space_id)
                      .having(func.count() >= 2, func.max(versions.c.created_at) >= since)
                      .order_by(versions.c.node_id).limit(limit))
    return [(int(r[0]), int(r[1])) for r in rows]


def set_mtime(tx: Tx, version_id: int, mtime: float) -> None:
    tx.execute(update(versions).where(versions.c.id == version_id).values(mtime=mtime))


def old_total(tx: Tx) -> dict[int, int]:
    """{space id: bytes of its old versions}, for fsck."""
    rows = tx.execute(select(nodes.c.space_id, func.coalesce(func.sum(versions.c.size), 0))
                      .join(nodes, nodes.c.id == versions.c.node_id).where(_NOT_CURRENT)
                      .group_by(nodes.c.space_id))
    return {int(r[0]): int(r[1]) for r in rows}
