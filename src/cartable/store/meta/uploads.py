# SPDX-License-Identifier: EUPL-1.2
"""Staging rows of chunked uploads: one ``uploads`` row per (user, upload key), one
``upload_parts`` row per received part (its manifest or inline bytes).

Plain row access: reference counting of the parts' chunks is the caller's job (core/uploads.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from cartable.store.meta.dialect import byte_order
from cartable.store.meta.dialect import insert as dialect_insert
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.schema import upload_parts, uploads

__all__ = ["UploadRecord", "PartRecord", "create", "get", "get_for_update", "touch", "delete",
           "put_part", "get_part", "list_parts", "list_expired", "staged_bytes",
           "iter_part_manifests", "list_for_user"]


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: int
    user_id: int
    upload_key: str
    created_at: float
    touched_at: float
    total_length: int | None
    destination: str | None

    @classmethod
    def from_row(cls, row: Any) -> UploadRecord:
        m = row._mapping
        return cls(m["id"], m["user_id"], m["upload_key"], m["created_at"], m["touched_at"],
                   m["total_length"], m["destination"])


@dataclass(frozen=True, slots=True)
class PartRecord:
    upload_id: int
    name: str
    size: int
    manifest: bytes
    inline_data: bytes | None
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> PartRecord:
        m = row._mapping
        return cls(m["upload_id"], m["name"], m["size"], bytes(m["manifest"]),
                   None if m["inline_data"] is None else bytes(m["inline_data"]), m["created_at"])


def create(tx: Tx, *, user_id: int, upload_key: str, now: float, total_length: int | None,
           destination: str | None) -> int:
    """Insert an upload row; RowConflict when (user_id, upload_key) is taken, also by another
    node's transaction committing at the same time (INSERT ... ON CONFLICT DO NOTHING)."""
    stmt = (dialect_insert(tx, uploads)
            .values(user_id=user_id, upload_key=upload_key, created_at=now, touched_at=now,
                    total_length=total_length, destination=destination)
            .on_conflict_do_nothing(index_elements=[uploads.c.user_id, uploads.c.upload_key])
            .returning(uploads.c.id))
    new_id = tx.execute(stmt).scalar()
    if new_id is None:
        raise RowConflict(f"upload {upload_key!r} of user {user_id} already exists")
    return int(new_id)


def _by_key(user_id: int, upload_key: str) -> Any:
    return select(uploads).where(uploads.c.user_id == user_id, uploads.c.upload_key == upload_key)


def get(tx: Tx, user_id: int, upload_key: str) -> UploadRecord | None:
    row = tx.execute(_by_key(user_id, upload_key)).first()
    return None if row is None else UploadRecord.from_row(row)


def get_for_update(tx: Tx, user_id: int, upload_key: str) -> UploadRecord | None:
    """Like get, with a row lock (PostgreSQL) so concurrent part writes and assembly serialise."""
    row = tx.execute(_by_key(user_id, upload_key).with_for_update()).first()
    return None if row is None else UploadRecord.from_row(row)


def list_for_user(tx: Tx, user_id: int) -> list[UploadRecord]:
    rows = tx.execute(select(uploads).where(uploads.c.user_id == user_id)
                      .order_by(byte_order(uploads.c.upload_key)))
    return [UploadRecord.from_row(r) for r in rows]


def touch(tx: Tx, upload_id: int, now: float) -> None:
    tx.execute(update(uploads).where(uploads.c.id == upload_id).values(touched_at=now))


def delete(tx: Tx, upload_id: int) -> None:
    """Delete the upload and its part rows (explicitly: not every engine enforces the cascade)."""
    tx.execute(upload_parts.delete().where(upload_parts.c.upload_id == upload_id))
    tx.execute(uploads.delete().where(uploads.c.id == upload_id))


def put_part(tx: Tx, *, upload_id: int, name: str, size: int, manifest: bytes, inline_data: bytes | None,
             now: float) -> None:
    """Insert the part, replacing a row of the same name (the caller released its references), in
    one statement (INSERT ... ON CONFLICT DO UPDATE)."""
    stmt = dialect_insert(tx, upload_parts).values(upload_id=upload_id, name=name, size=size, manifest=manifest,
                                                   inline_data=inline_data, created_at=now)
    tx.execute(stmt.on_conflict_do_update(
        index_elements=[upload_parts.c.upload_id, upload_parts.c.name],
        set_={"size": stmt.excluded.size, "manifest": stmt.excluded.manifest,
              "inline_data": stmt.excluded.inline_data, "created_at": stmt.excluded.created_at}))


def get_part(tx: Tx, upload_id: int, name: str) -> PartRecord | None:
    row = tx.execute(select(upload_parts).where(upload_parts.c.upload_id == upload_id,
                                                upload_parts.c.name == name)).first()
    return None if row is None else PartRecord.from_row(row)


def list_parts(tx: Tx, upload_id: int) -> list[PartRecord]:
    rows = tx.execute(select(upload_parts).where(upload_parts.c.upload_id == upload_id)
                      .order_by(byte_order(upload_parts.c.name)))
    return [PartRecord.from_row(r) for r in rows]


def staged_bytes(tx: Tx, user_id: int) -> int:
    """Total size of every part this user has staged, in all uploads."""
    stmt = (select(func.coalesce(func.sum(upload_parts.c.size), 0))
            .select_from(upload_parts.join(uploads, upload_parts.c.upload_id == uploads.c.id))
            .where(uploads.c.user_id == user_id))
    return int(tx.execute(stmt).scalar_one())


def list_expired(tx: Tx, cutoff: float, limit: int) -> list[UploadRecord]:
    """Uploads last touched before cutoff (oldest first)."""
    rows = tx.execute(select(uploads).where(uploads.c.touched_at < cutoff)
                      .order_by(uploads.c.touched_at).limit(limit))
    return [UploadRecord.from_row(r) for r in rows]


def iter_part_manifests(tx: Tx) -> Iterator[bytes]:
    """The packed manifest of every staged part (for consistency checks)."""
    for r in tx.execute(select(upload_parts.c.manifest)):
        yield bytes(r[0])
