# SPDX-License-Identifier: EUPL-1.2
"""What every core call needs, passed explicitly: the stores, the clock, the limits and the naming
policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cartable.common.paths import NamePolicy
from cartable.store.blobs.base import ChunkStore
from cartable.store.meta.engine import MetaDB

__all__ = ["Core", "Limits"]


@dataclass(frozen=True)
class Limits:
    default_quota: int = 100 * 10**9
    # Content up to this size lives in the metadata row: no chunk object and no extra fsync. 8 KiB
    # keeps the 4 KiB office/text files that dominate counts inline, and rows small.
    inline_max: int = 8 * 1024
    # A chunk with no reference is deleted only after this long (an upload that found it present
    # has this long to commit).
    gc_grace_seconds: float = 24 * 3600.0
    # Bytes of chunk data an upload buffers before writing them out in one batch.
    write_batch_bytes: int = 16 * 1024 * 1024
    # Audit events older than this are purged (core/audit.py); 0 keeps them forever.
    audit_retention_days: float = 365.0
    max_lock_timeout: int = 3600
    default_lock_timeout: int = 600
    # Trash and versions (core/trash.py, core/versions.py, core/retention.py).
    trash_retention_days: float = 30.0
    versions_max_age_days: float = 365.0
    versions_quota_share: float = 0.5
    # Change journal entries older than this are trimmed (core/changes.py); 0 keeps them all.
    journal_retention_days: float = 90.0
    share_folder: str = "/Shared"  # where shares with a user appear in their tree ("/": the root)


@dataclass
class Core:
    db: MetaDB
    blobs: ChunkStore
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time
    # Which names may be given to new files and folders (existing names are never re-checked).
    names: NamePolicy = field(default_factory=NamePolicy)
