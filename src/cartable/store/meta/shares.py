# SPDX-License-Identifier: EUPL-1.2
"""Share rows (table ``shares``): public links today, user and group shares later.

Knows nothing of who may share what: core/shares.py checks ownership, permissions, passwords and
expiry. The download counter is incremented in SQL (``count_download``), never read-then-written,
so two nodes serving the same link at once both count, and the limit holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import ShareRecord
from cartable.store.meta.schema import shares

__all__ = ["insert", "by_id", "by_token", "update", "delete", "of_owner", "of_node", "count_download",
           "delete_for_nodes", "delete_group_shares", "of_space", "of_nodes"]


def insert(tx: Tx, **values: Any) -> int:
    """A new share row; RowConflict if its token is taken."""
    try:
        with tx.begin_nested():
            res = tx.execute(shares.insert().values(**values))
    except IntegrityError as exc:
        raise RowConflict(str(exc.orig)) from None
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def by_id(tx: Tx, share_id: int) -> ShareRecord | None:
    row = tx.execute(select(shares).where(shares.c.id == share_id)).first()
    return None if row is None else ShareRecord.from_row(row)


def by_token(tx: Tx, token: str) -> ShareRecord | None:
    row = tx.execute(select(shares).where(shares.c.token == token)).first()
    return None if row is None else ShareRecord.from_row(row)


def update(tx: Tx, share_id: int, **values: Any) -> None:
    tx.execute(shares.update().where(shares.c.id == share_id).values(**values))


def delete(tx: Tx, share_id: int) -> bool:
    """Delete one share; False if it was not there."""
    return bool(tx.execute(shares.delete().where(shares.c.id == share_id)).rowcount)


def delete_for_nodes(tx: Tx, node_ids: list[int]) -> int:
    """Delete the shares of these nodes (they are gone for good); returns how many."""
    if not node_ids:
        return 0
    return int(tx.execute(shares.delete().where(shares.c.node_id.in_(node_ids))).rowcount)


def delete_group_shares(tx: Tx, group_name: str) -> int:
    """Delete the shares with a group (it is being deleted); returns how many."""
    return int(tx.execute(shares.delete().where(shares.c.share_type == 1,
                                                shares.c.share_with == group_name)).rowcount)


def of_owner(tx: Tx, owner_id: int, node_ids: list[int] | None = None) -> list[ShareRecord]:
    """The owner's shares, oldest first; only those on ``node_ids`` when given."""
    query = select(shares).where(shares.c.owner_id == owner_id)
    if node_ids is not None:
        query = query.where(shares.c.node_id.in_(node_ids))
    return [ShareRecord.from_row(r) for r in tx.execute(query.order_by(shares.c.id))]


def of_space(tx: Tx, space_id: int, share_types: tuple[int, ...]) -> list[ShareRecord]:
    """The shares of these types on items of a space, oldest first."""
    return [ShareRecord.from_row(r) for r in tx.execute(
        select(shares).where(shares.c.space_id == space_id, shares.c.share_type.in_(share_types))
        .order_by(shares.c.id))]


def of_nodes(tx: Tx, node_ids: list[int]) -> list[ShareRecord]:
    """Every share on these nodes (by anyone), oldest first."""
    if not node_ids:
        return []
    return [ShareRecord.from_row(r) for r in tx.execute(
        select(shares).where(shares.c.node_id.in_(node_ids)).order_by(shares.c.id))]


def of_node(tx: Tx, node_id: int) -> list[ShareRecord]:
    return [ShareRecord.from_row(r) for r in tx.execute(
        select(shares).where(shares.c.node_id == node_id).order_by(shares.c.id))]


def count_download(tx: Tx, share_id: int) -> bool:
    """Count one download if the share's limit allows it (one statement); False when it does not
    (the limit is reached, or the share is gone)."""
    res = tx.execute(shares.update().where(
        shares.c.id == share_id,
        (shares.c.download_limit.is_(None)) | (shares.c.download_count < shares.c.download_limit),
    ).values(download_count=shares.c.download_count + 1))
    return bool(res.rowcount)
