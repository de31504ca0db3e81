# SPDX-License-Identifier: EUPL-1.2
"""Frozen records the metadata repository returns (rows made into values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NodeRecord", "UserRecord", "SpaceRecord", "VersionRecord", "LockRecord",
           "AppPasswordRecord", "ChangeRecord", "GroupRecord", "AuditRecord",
           "ShareRecord"]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    id: int
    space_id: int
    parent_id: int | None
    name: str
    kind: str
    size: int
    mtime: float
    ctime: float
    etag: str
    version_id: int | None
    content_type: str | None
    checksums: str | None

    @property
    def is_dir(self) -> bool:
        return self.kind == "d"

    @classmethod
    def from_row(cls, row: Any) -> NodeRecord:
        # select(nodes) yields the table's columns in declaration order, which is this record's
        # field order (tests/store checks it): positional is several times faster than by name.
        return cls(*row)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    display_name: str
    email: str
    password_hash: str
    is_admin: bool
    disabled: bool
    auth_version: int
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> UserRecord:
        m = row._mapping
        return cls(m["id"], m["name"], m["display_name"], m["email"], m["password_hash"],
                   bool(m["is_admin"]), bool(m["disabled"]), m["auth_version"], m["created_at"])


@dataclass(frozen=True, slots=True)
class SpaceRecord:
    id: int
    kind: str
    owner_id: int | None
    root_id: int
    quota: int | None

    @classmethod
    def from_row(cls, row: Any) -> SpaceRecord:
        m = row._mapping
        return cls(m["id"], m["kind"], m["owner_id"], m["root_id"], m["quota"])


@dataclass(frozen=True, slots=True)
class VersionRecord:
    id: int
    node_id: int
    size: int
    created_at: float
    manifest: bytes
    inline_data: bytes | None
    mtime: float | None = None  # the file's mtime while this was its content (None: not recorded)

    @classmethod
    def from_row(cls, row: Any) -> VersionRecord:
        m = row._mapping
        return cls(m["id"], m["node_id"], m["size"], m["created_at"], bytes(m["manifest"]),
                   None if m["inline_data"] is None else bytes(m["inline_data"]), m.get("mtime"))


@dataclass(frozen=True, slots=True)
class LockRecord:
    token: str
    node_id: int
    user_id: int
    exclusive: bool
    infinite: bool
    owner_xml: str
    timeout: int
    expires_at: float

    @classmethod
    def from_row(cls, row: Any) -> LockRecord:
        m = row._mapping
        return cls(m["token"], m["node_id"], m["user_id"], bool(m["exclusive"]), bool(m["infinite"]),
                   m["owner_xml"], m["timeout"], m["expires_at"])


@dataclass(frozen=True, slots=True)
class AppPasswordRecord:
    id: int
    user_id: int
    name: str
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    seq: int
    space_id: int
    node_id: int
    parent_id: int | None
    name: str
    kind: str
    op: str
    version_id: int | None
    size: int
    mtime: float
    device_id: str | None
    op_id: str | None
    at: float


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: int
    name: str
    name_key: str
    display_name: str
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> GroupRecord:
        return cls(*row)  # fields in the table's column order (tests/store/test_records.py)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: float
    event: str
    actor: str
    actor_key: str
    address: str
    object: str
    outcome: str
    detail: str

    @classmethod
    def from_row(cls, row: Any) -> AuditRecord:
        return cls(*row)  # fields in the table's column order (tests/store/test_records.py)


@dataclass(frozen=True, slots=True)
class ShareRecord:
    id: int
    node_id: int
    space_id: int
    owner_id: int
    share_type: int
    share_with: str | None
    token: str | None
    permissions: int
    password_hash: str | None
    expires_at: float | None
    download_limit: int | None
    download_count: int
    label: str
    note: str
    hide_download: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> ShareRecord:
        return cls(*row)  # fields in the table's column order (tests/store/test_records.py)
