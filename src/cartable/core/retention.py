# SPDX-License-Identifier: EUPL-1.2
"""What the trash and old versions may keep, under the owner's quota and over time.

The quota rule, checked in every transaction that makes a space hold more (a file write, a bulk
batch, a copy, a restore):
- Live files alone are held to the quota, as before: a write that would take them past it is
  refused (core/quota.check_quota), whatever the trash and versions hold. The usage a client is
  shown is the live files' (Nextcloud's desktop compares it with its own folder).
- Old versions may hold at most ``versions_quota_share`` of the quota: past it, the oldest old
  versions are dropped.
- Live files, trash and old versions together stay within the quota: past it, the oldest trash
  items are purged first, then the oldest old versions, until everything fits. Trash and old
  versions therefore live in the free part of the quota: they never make a write fail, and a
  full quota keeps only what fits.
This runs inside the writer's transaction, so no acknowledged state ever exceeds the quota.

Over time, ``expire`` (called by gc.collect) purges trash items older than
``trash_retention_days`` and drops or thins old versions (core/versions.expire)."""

from __future__ import annotations

from cartable.core import trash, tree, versions
from cartable.core.context import Core
from cartable.core.quota import quota_of
from cartable.store.meta import history
from cartable.store.meta import trash as trash_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import SpaceRecord

__all__ = ["settle", "expire"]

_BATCH = 50


def settle(core: Core, tx: Tx, space: SpaceRecord, now: float, *, live: int | None = None) -> None:
    """Apply the quota rule (module doc) to the space, in the caller's write transaction, after
    its changes. ``live``: the live bytes when the caller knows them better than the root's size."""
    quota = quota_of(core, space)
    held_trash, held_versions = trash_repo.counters(tx, space.id)
    if live is None:
        live = tree.root_of(tx, space).size
    cap = int(quota * core.limits.versions_quota_share)
    while held_versions > cap:
        oldest = history.oldest_in_space(tx, space.id, _BATCH)
        if not oldest:
            break
        chosen, freed = [], 0
        for v in oldest:
            if held_versions - freed <= cap:
                break
            chosen.append(v)
            freed += v.size
        held_versions -= versions.drop(tx, space.id, chosen, now)
    over = live + held_trash + held_versions - quota
    while over > 0:
        items = trash_repo.oldest(tx, space.id, 1)
        if not items:
            break
        t, v = trash.purge_item(tx, items[0], now)
        over -= t + v
    while over > 0:
        oldest = history.oldest_in_space(tx, space.id, _BATCH)
        if not oldest:
            break
        chosen, freed = [], 0
        for v in oldest:
            if over - freed <= 0:
                break
            chosen.append(v)
            freed += v.size
        over -= versions.drop(tx, space.id, chosen, now)


def expire(core: Core) -> tuple[int, int]:
    """(trash items purged, old versions dropped) by age; see the module doc."""
    return trash.expire(core), versions.expire(core)
