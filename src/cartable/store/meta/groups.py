# SPDX-License-Identifier: EUPL-1.2
"""Groups and memberships rows (tables ``groups`` and ``memberships``).

Knows nothing of who may change them: core/groups.py checks names and rights. Adding a member
twice is one ``INSERT ... ON CONFLICT DO NOTHING`` (two nodes adding the same member at once
both succeed, one row results); deleting a group deletes its memberships in the same statement
batch (and ON DELETE CASCADE would).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import GroupRecord, UserRecord
from cartable.store.meta.schema import groups, memberships, users

__all__ = ["insert_group", "group_by_key", "group_by_id", "delete_group", "update_group", "list_groups",
           "add_member", "remove_member", "is_member", "groups_of", "group_ids_of", "members_of",
           "member_ids", "count_members", "search_groups", "escape_like"]

_BY_KEY = select(groups).where(groups.c.name_key == bindparam("key"))


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern whose escape character is ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def insert_group(tx: Tx, **values: Any) -> int:
    """A new group row; RowConflict if its name or name_key is taken."""
    try:
        with tx.begin_nested():
            res = tx.execute(groups.insert().values(**values))
    except IntegrityError as exc:
        raise RowConflict(str(exc.orig)) from None
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def group_by_key(tx: Tx, name_key: str) -> GroupRecord | None:
    row = tx.execute(_BY_KEY, {"key": name_key}).first()
    return None if row is None else GroupRecord.from_row(row)


def group_by_id(tx: Tx, group_id: int) -> GroupRecord | None:
    row = tx.execute(select(groups).where(groups.c.id == group_id)).first()
    return None if row is None else GroupRecord.from_row(row)


def update_group(tx: Tx, group_id: int, **values: Any) -> None:
    tx.execute(groups.update().where(groups.c.id == group_id).values(**values))


def delete_group(tx: Tx, group_id: int) -> bool:
    tx.execute(memberships.delete().where(memberships.c.group_id == group_id))
    return bool(tx.execute(groups.delete().where(groups.c.id == group_id)).rowcount)


def list_groups(tx: Tx, *, limit: int | None = None, offset: int = 0) -> list[GroupRecord]:
    query = select(groups).order_by(groups.c.name_key).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [GroupRecord.from_row(r) for r in tx.execute(query)]


def search_groups(tx: Tx, folded: str, *, limit: int | None = None, offset: int = 0) -> list[GroupRecord]:
    """Groups whose name or display name contains ``folded`` (already lowercased), in name order.
    A scan of the groups table: there are few groups (thousands), unlike users."""
    fold = func.cartable_lower if tx.dialect.name == "sqlite" else func.lower
    pattern = f"%{escape_like(folded)}%"
    query = (select(groups)
             .where(or_(fold(groups.c.name).like(pattern, escape="\\"),
                        fold(groups.c.display_name).like(pattern, escape="\\")))
             .order_by(groups.c.name_key).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    return [GroupRecord.from_row(r) for r in tx.execute(query)]


def add_member(tx: Tx, group_id: int, user_id: int, now: float) -> bool:
    """Make the user a member; False if they already were (nothing changes)."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(memberships).values(group_id=group_id, user_id=user_id, created_at=now)
    stmt = stmt.on_conflict_do_nothing(index_elements=[memberships.c.group_id, memberships.c.user_id])
    # RETURNING tells whether a row was inserted on every engine (a skipped insert returns none;
    # rowcount is not reliable for INSERT ... ON CONFLICT with every driver).
    return tx.execute(stmt.returning(memberships.c.user_id)).first() is not None


def remove_member(tx: Tx, group_id: int, user_id: int) -> bool:
    """False if the user was not a member."""
    res = tx.execute(memberships.delete().where(memberships.c.group_id == group_id,
                                                memberships.c.user_id == user_id))
    return bool(res.rowcount)


_IS_MEMBER = select(memberships.c.user_id).where(memberships.c.group_id == bindparam("g"),
                                                 memberships.c.user_id == bindparam("u"))


def is_member(tx: Tx, group_id: int, user_id: int) -> bool:
    return tx.execute(_IS_MEMBER, {"g": group_id, "u": user_id}).first() is not None


_GROUP_IDS_OF = select(memberships.c.group_id).where(memberships.c.user_id == bindparam("u"))


def group_ids_of(tx: Tx, user_id: int) -> list[int]:
    """Ids of the user's groups (one index range: ix_memberships_user_id)."""
    return [int(r[0]) for r in tx.execute(_GROUP_IDS_OF, {"u": user_id})]


def groups_of(tx: Tx, user_id: int) -> list[GroupRecord]:
    rows = tx.execute(select(groups).join(memberships, memberships.c.group_id == groups.c.id)
                      .where(memberships.c.user_id == user_id).order_by(groups.c.name_key))
    return [GroupRecord.from_row(r) for r in rows]


def member_ids(tx: Tx, group_id: int) -> list[int]:
    """Ids of the group's members (the primary key's range)."""
    return [int(r[0]) for r in tx.execute(select(memberships.c.user_id)
                                          .where(memberships.c.group_id == group_id))]


def members_of(tx: Tx, group_id: int) -> list[UserRecord]:
    rows = tx.execute(select(users).join(memberships, memberships.c.user_id == users.c.id)
                      .where(memberships.c.group_id == group_id).order_by(users.c.name_key))
    return [UserRecord.from_row(r) for r in rows]


def count_members(tx: Tx, group_id: int) -> int:
    return int(tx.execute(select(func.count()).select_from(memberships)
                          .where(memberships.c.group_id == group_id)).scalar_one())
