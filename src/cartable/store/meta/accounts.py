# SPDX-License-Identifier: EUPL-1.2
"""Users, app passwords and spaces rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from cartable.store.meta.dialect import byte_order
from cartable.store.meta.dialect import insert as dialect_insert
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import AppPasswordRecord, SpaceRecord, UserRecord
from cartable.store.meta.schema import app_passwords, memberships, spaces, users

__all__ = ["user_by_name", "user_by_id", "list_users", "any_user", "search_users", "insert_user", "update_user",
           "revoke_credentials", "delete_user",
           "insert_space", "home_space", "space", "update_space", "lock_space", "share_space",
           "insert_app_password", "app_password_by_hash", "app_password_exists", "list_app_passwords",
           "delete_app_password", "touch_app_password"]


_USER_BY_KEY = select(users).where(users.c.name_key == bindparam("key"))


def user_by_name(tx: Tx, name_key: str) -> UserRecord | None:
    """The user whose ``name_key`` (the name with ASCII letters lowercased) is ``name_key``; the
    caller folds what was typed (core.accounts.name_key)."""
    row = tx.execute(_USER_BY_KEY, {"key": name_key}).first()
    return None if row is None else UserRecord.from_row(row)


_USER_BY_ID = select(users).where(users.c.id == bindparam("id"))


def user_by_id(tx: Tx, user_id: int) -> UserRecord | None:
    row = tx.execute(_USER_BY_ID, {"id": user_id}).first()
    return None if row is None else UserRecord.from_row(row)


def list_users(tx: Tx) -> list[UserRecord]:
    return [UserRecord.from_row(r) for r in tx.execute(select(users).order_by(byte_order(users.c.name)))]


def any_user(tx: Tx) -> bool:
    """Whether at least one account exists (one row read, whatever the number of accounts)."""
    return tx.execute(select(users.c.id).limit(1)).first() is not None


def search_users(tx: Tx, folded: str, *, limit: int, offset: int = 0,
                 exclude_id: int | None = None) -> list[UserRecord]:
    """Enabled users whose name, display name or e-mail contains ``folded`` (already lowercased;
    "" matches all), in name order, paged; ``exclude_id`` left out. A scan of the users table
    (LIKE '%x%' uses no b-tree index; on PostgreSQL a pg_trgm index would serve it)."""
    fold = func.cartable_lower if tx.dialect.name == "sqlite" else func.lower
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    query = select(users).where(users.c.disabled.is_(False))
    if folded:
        query = query.where(or_(fold(users.c.name).like(pattern, escape="\\"),
                                fold(users.c.display_name).like(pattern, escape="\\"),
                                fold(users.c.email).like(pattern, escape="\\")))
    if exclude_id is not None:
        query = query.where(users.c.id != exclude_id)
    query = query.order_by(users.c.name_key).limit(limit).offset(offset)
    return [UserRecord.from_row(r) for r in tx.execute(query)]


def insert_user(tx: Tx, **values: Any) -> int:
    """Insert a user; RowConflict when the name (or its name_key) is taken, also by a transaction
    of another node committing at the same time (INSERT ... ON CONFLICT DO NOTHING)."""
    stmt = dialect_insert(tx, users).values(**values).on_conflict_do_nothing().returning(users.c.id)
    new_id = tx.execute(stmt).scalar()
    if new_id is None:
        raise RowConflict(f"a user named {values.get('name')!r} already exists")
    return int(new_id)


def update_user(tx: Tx, user_id: int, **values: Any) -> None:
    tx.execute(update(users).where(users.c.id == user_id).values(**values))


def revoke_credentials(tx: Tx, user_id: int, **values: Any) -> None:
    """Set ``values`` and bump ``auth_version`` in SQL (two nodes changing one account at once
    both count): every credential cached with the old version is dropped, on every node."""
    tx.execute(update(users).where(users.c.id == user_id)
               .values(auth_version=users.c.auth_version + 1, **values))


def delete_user(tx: Tx, user_id: int) -> None:
    tx.execute(app_passwords.delete().where(app_passwords.c.user_id == user_id))
    tx.execute(memberships.delete().where(memberships.c.user_id == user_id))
    tx.execute(users.delete().where(users.c.id == user_id))


def insert_space(tx: Tx, **values: Any) -> int:
    res = tx.execute(spaces.insert().values(**values))
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_space(tx: Tx, space_id: int, **values: Any) -> None:
    tx.execute(update(spaces).where(spaces.c.id == space_id).values(**values))


def home_space(tx: Tx, user_id: int) -> SpaceRecord | None:
    row = tx.execute(select(spaces).where(spaces.c.owner_id == user_id, spaces.c.kind == "home")).first()
    return None if row is None else SpaceRecord.from_row(row)


def space(tx: Tx, space_id: int) -> SpaceRecord | None:
    row = tx.execute(_SPACE, {"id": space_id}).first()
    return None if row is None else SpaceRecord.from_row(row)


_LOCK_SPACE = select(spaces).where(spaces.c.id == bindparam("id")).with_for_update()
_SPACE = select(spaces).where(spaces.c.id == bindparam("id"))
_SHARE_SPACE = _SPACE.with_for_update(read=True)


def lock_space(tx: Tx, space_id: int) -> SpaceRecord | None:
    """Read the space row and hold it until commit (PostgreSQL: row lock; SQLite: the writer lock
    is already exclusive). Every mutation of a space takes it first, which serialises quota checks."""
    row = tx.execute(_LOCK_SPACE, {"id": space_id}).first()
    return None if row is None else SpaceRecord.from_row(row)


def share_space(tx: Tx, space_id: int) -> SpaceRecord | None:
    """Read the space row and hold it SHARED until commit (PostgreSQL: FOR SHARE; SQLite: the
    writer lock is exclusive anyway). Writers holding it shared run together; ``lock_space``
    waits for all of them, and they for it. For the writes that change no folder's membership
    but their own new file and take every other lock they need themselves (core/writes.py)."""
    row = tx.execute(_SHARE_SPACE, {"id": space_id}).first()
    return None if row is None else SpaceRecord.from_row(row)


def insert_app_password(tx: Tx, *, user_id: int, name: str, token_hash: bytes, created_at: float) -> int:
    res = tx.execute(app_passwords.insert().values(user_id=user_id, name=name, token_hash=token_hash,
                                                   created_at=created_at))
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def app_password_by_hash(tx: Tx, token_hash: bytes) -> tuple[int, int] | None:
    """(app password id, user id) for a token hash."""
    row = tx.execute(select(app_passwords.c.id, app_passwords.c.user_id)
                     .where(app_passwords.c.token_hash == token_hash)).first()
    return None if row is None else (int(row[0]), int(row[1]))


_APP_PASSWORD_EXISTS = select(app_passwords.c.id).where(app_passwords.c.id == bindparam("id"))


def app_password_exists(tx: Tx, app_id: int) -> bool:
    return tx.execute(_APP_PASSWORD_EXISTS, {"id": app_id}).first() is not None


def list_app_passwords(tx: Tx, user_id: int) -> list[AppPasswordRecord]:
    rows = tx.execute(select(app_passwords).where(app_passwords.c.user_id == user_id)
                      .order_by(app_passwords.c.id))
    return [AppPasswordRecord(r.id, r.user_id, r.name, r.created_at, r.last_used_at) for r in rows]


def delete_app_password(tx: Tx, user_id: int, app_id: int) -> bool:
    res = tx.execute(app_passwords.delete().where(app_passwords.c.user_id == user_id,
                                                  app_passwords.c.id == app_id))
    return bool(res.rowcount)


def touch_app_password(tx: Tx, app_id: int, now: float) -> None:
    tx.execute(update(app_passwords).where(app_passwords.c.id == app_id).values(last_used_at=now))
