# SPDX-License-Identifier: EUPL-1.2
"""Mount rows (table ``share_mounts``): where a user or group share appears in a recipient's tree.

A mount counts only while its share still reaches its user (a user share naming them, or a
group share of a group they are in): every query here joins that condition, so a mount left
behind by a membership removed a moment ago is never served. Knows nothing of permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, select

from cartable.store.meta.engine import Tx
from cartable.store.meta.records import ShareRecord
from cartable.store.meta.schema import groups, memberships, share_mounts, shares, users

__all__ = ["MountRecord", "Mount", "insert", "delete", "move", "under", "named", "of_user", "reaching",
           "by_share", "delete_unreachable", "leave", "any_of", "USER", "GROUP"]

USER, GROUP = 0, 1


@dataclass(frozen=True, slots=True)
class MountRecord:
    id: int
    share_id: int
    user_id: int
    parent_id: int
    name: str
    created_at: float
    left_share: bool


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount and its share."""

    mount: MountRecord
    share: ShareRecord


def _reaches(user_id: int) -> Any:
    """SQL condition: the share reaches user_id (by name, or through one of their groups)."""
    user_name = select(users.c.name).where(users.c.id == user_id).scalar_subquery()
    group_names = (select(groups.c.name).select_from(groups.join(memberships, memberships.c.group_id == groups.c.id))
                   .where(memberships.c.user_id == user_id))
    return or_(and_(shares.c.share_type == USER, shares.c.share_with == user_name),
               and_(shares.c.share_type == GROUP, shares.c.share_with.in_(group_names)))


def _query(user_id: int) -> Any:
    return (select(*share_mounts.c, *shares.c)
            .select_from(share_mounts.join(shares, shares.c.id == share_mounts.c.share_id))
            .where(share_mounts.c.user_id == user_id, share_mounts.c.left_share == false(), _reaches(user_id)))


def _mounts(tx: Tx, query: Any) -> list[Mount]:
    n = len(share_mounts.c)
    return [Mount(MountRecord(*row[:n]), ShareRecord.from_row(row[n:])) for row in tx.execute(query)]


def insert(tx: Tx, **values: Any) -> int:
    res = tx.execute(share_mounts.insert().values(**values))
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def delete(tx: Tx, mount_id: int) -> None:
    tx.execute(share_mounts.delete().where(share_mounts.c.id == mount_id))


def leave(tx: Tx, mount_id: int) -> None:
    """Hide the mount for good (its user left the share)."""
    tx.execute(share_mounts.update().where(share_mounts.c.id == mount_id).values(left_share=True))


def move(tx: Tx, mount_id: int, parent_id: int, name: str) -> None:
    tx.execute(share_mounts.update().where(share_mounts.c.id == mount_id).values(parent_id=parent_id, name=name))


def under(tx: Tx, user_id: int, parent_id: int) -> list[Mount]:
    """The user's live mounts in the folder parent_id, by name."""
    return _mounts(tx, _query(user_id).where(share_mounts.c.parent_id == parent_id).order_by(share_mounts.c.name))


def named(tx: Tx, user_id: int, parent_id: int, name: str) -> Mount | None:
    found = _mounts(tx, _query(user_id).where(share_mounts.c.parent_id == parent_id, share_mounts.c.name == name))
    return found[0] if found else None


def of_user(tx: Tx, user_id: int) -> list[Mount]:
    """Every live mount of the user, oldest first."""
    return _mounts(tx, _query(user_id).order_by(share_mounts.c.id))


def by_share(tx: Tx, share_id: int) -> list[MountRecord]:
    """Every mount of a share (live or not)."""
    return [MountRecord(*r) for r in tx.execute(
        select(share_mounts).where(share_mounts.c.share_id == share_id).order_by(share_mounts.c.id))]


def any_of(tx: Tx, user_id: int, share_id: int) -> MountRecord | None:
    """The user's mount row of a share, live, left or unreachable."""
    row = tx.execute(select(share_mounts).where(share_mounts.c.user_id == user_id,
                                                share_mounts.c.share_id == share_id)).first()
    return None if row is None else MountRecord(*row)


def reaching(tx: Tx, user_id: int) -> list[ShareRecord]:
    """The user and group shares that reach the user, oldest first."""
    return [ShareRecord.from_row(r) for r in tx.execute(
        select(shares).where(_reaches(user_id)).order_by(shares.c.id))]


def delete_unreachable(tx: Tx, user_id: int) -> list[MountRecord]:
    """Delete the user's mounts whose share no longer reaches them; returns them."""
    reached = {s.id for s in reaching(tx, user_id)}
    gone = [MountRecord(*r) for r in tx.execute(select(share_mounts).where(share_mounts.c.user_id == user_id))
            if r[1] not in reached]
    if gone:
        tx.execute(share_mounts.delete().where(share_mounts.c.id.in_([m.id for m in gone])))
    return gone
