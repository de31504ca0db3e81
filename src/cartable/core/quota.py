# SPDX-License-Identifier: EUPL-1.2
"""Quotas: how much a space may hold, and the check every growing write makes in its transaction."""

from __future__ import annotations

from cartable.core import tree
from cartable.core.context import Core
from cartable.core.errors import QuotaExceeded
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import SpaceRecord

__all__ = ["quota_of", "check_quota"]


def quota_of(core: Core, space: SpaceRecord) -> int:
    return core.limits.default_quota if space.quota is None else space.quota


def check_quota(core: Core, tx: Tx, space: SpaceRecord, delta: int, *, used: int | None = None) -> None:
    """QuotaExceeded when adding delta bytes would take the space past its quota (exactly at the
    quota is allowed). ``used``: what the space holds as this transaction sees it, when the caller
    knows it better than the root folder's size does (a batch propagates sizes once, at its end);
    by default the root folder's size."""
    if delta <= 0:
        return
    if used is None:
        used = tree.root_of(tx, space).size
    quota = quota_of(core, space)
    if used + delta > quota:
        raise QuotaExceeded(f"not enough space: {delta} more bytes would exceed the quota "
                            f"({used} of {quota} bytes used)")
