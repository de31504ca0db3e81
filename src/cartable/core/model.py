# SPDX-License-Identifier: EUPL-1.2
"""Domain value types that cross into the adapters."""

from __future__ import annotations

from dataclasses import dataclass

from cartable.store.meta.records import LockRecord, NodeRecord

__all__ = ["Principal", "Node", "Lock", "WriteResult", "Usage", "ManifestEntry"]

Node = NodeRecord
Lock = LockRecord


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user, as a request carries it."""

    user_id: int
    name: str
    display_name: str
    is_admin: bool
    space_id: int
    root_id: int  # where its paths resolve from: the space's root, or the node a link shares
    app_password_id: int | None = None
    permissions: int = 31  # core/permissions.py: every bit for an account on its own space
    link_id: int | None = None  # the share it came through (a public link), or None
    share_id: int | None = None  # the user or group share it came through (a mount), or None


@dataclass(frozen=True, slots=True)
class WriteResult:
    node: Node
    created: bool


@dataclass(frozen=True, slots=True)
class Usage:
    used: int
    quota: int

    @property
    def free(self) -> int:
        return max(0, self.quota - self.used)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    digest: bytes
    length: int
