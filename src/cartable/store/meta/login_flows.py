# SPDX-License-Identifier: EUPL-1.2
"""Login Flow v2 rows (table ``login_flows``): one per device waiting for an app password.

A row is *pending* while ``user_id`` is NULL and *granted* once a user granted it (then
``login_name`` and ``sealed_password`` are set). Callers compare ``expires_at`` with their clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from cartable.store.meta.engine import Tx
from cartable.store.meta.schema import login_flows

__all__ = ["LoginFlowRecord", "insert", "get", "by_poll_hash", "mark_granted", "delete", "delete_expired"]


@dataclass(frozen=True, slots=True)
class LoginFlowRecord:
    login_token: str
    poll_token_hash: bytes
    client_name: str
    created_at: float
    expires_at: float
    user_id: int | None
    login_name: str | None
    sealed_password: bytes | None
    password_hash: bytes | None = None

    @property
    def granted(self) -> bool:
        return self.user_id is not None

    @classmethod
    def from_row(cls, row: Any) -> LoginFlowRecord:
        m = row._mapping
        sealed, pw_hash = m["sealed_password"], m["password_hash"]
        return cls(m["login_token"], bytes(m["poll_token_hash"]), m["client_name"], m["created_at"],
                   m["expires_at"], m["user_id"], m["login_name"], None if sealed is None else bytes(sealed),
                   None if pw_hash is None else bytes(pw_hash))


def insert(tx: Tx, *, login_token: str, poll_token_hash: bytes, client_name: str,
           created_at: float, expires_at: float, sealed_password: bytes, password_hash: bytes) -> None:
    tx.execute(login_flows.insert().values(login_token=login_token, poll_token_hash=poll_token_hash,
                                           client_name=client_name, created_at=created_at,
                                           expires_at=expires_at, sealed_password=sealed_password,
                                           password_hash=password_hash))


def get(tx: Tx, login_token: str, *, for_update: bool = False) -> LoginFlowRecord | None:
    """The flow with this login token; ``for_update`` holds its row until commit (PostgreSQL)."""
    query = select(login_flows).where(login_flows.c.login_token == login_token)
    row = tx.execute(query.with_for_update() if for_update else query).first()
    return None if row is None else LoginFlowRecord.from_row(row)


def by_poll_hash(tx: Tx, poll_token_hash: bytes) -> LoginFlowRecord | None:
    row = tx.execute(select(login_flows).where(login_flows.c.poll_token_hash == poll_token_hash)).first()
    return None if row is None else LoginFlowRecord.from_row(row)


def mark_granted(tx: Tx, login_token: str, *, user_id: int, login_name: str) -> bool:
    """Grant a pending flow; False if it is unknown or was already granted."""
    res = tx.execute(update(login_flows)
                     .where(login_flows.c.login_token == login_token, login_flows.c.user_id.is_(None))
                     .values(user_id=user_id, login_name=login_name))
    return bool(res.rowcount)


def delete(tx: Tx, login_token: str) -> bool:
    """Delete one flow; False if another transaction deleted it first."""
    res = tx.execute(login_flows.delete().where(login_flows.c.login_token == login_token))
    return bool(res.rowcount)


def delete_expired(tx: Tx, now: float) -> int:
    res = tx.execute(login_flows.delete().where(login_flows.c.expires_at <= now))
    return int(res.rowcount or 0)
