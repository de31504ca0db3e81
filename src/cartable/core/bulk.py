# SPDX-License-Identifier: EUPL-1.2
"""Many small files written at once (Nextcloud's bulk upload): each is its own durable commit,
with its own result, and one failing file changes nothing for the others.

Commits run on a few worker threads at the same time, so that SQLite's group commit
(store/meta/engine.py) lets them share one transaction and one fsync; each still returns only
once its own commit is durable. Two files of one batch with the same path are written in the
order they were given."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from cartable.core.context import Core
from cartable.core.model import WriteResult
from cartable.core.tree import Op
from cartable.core.writes import Upload

__all__ = ["BulkWriter", "write_one"]

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cartable-bulk")


def write_one(core: Core, op: Op, parts: Sequence[str], body: bytes, *, mtime: float | None,
              checksum: str | None, after: Future[WriteResult] | None = None) -> WriteResult:
    """Write one whole file (parts already validated) and commit it: Upload's checks (parent,
    folder in the way, locks, quota, checksum) and its one transaction. ``after``: an earlier
    write of the same path that must land first."""
    if after is not None:
        try:
            after.result()
        except Exception:
            pass  # its own failure is its own result
    upload = Upload(core, op, parts, length=len(body), mtime=mtime, checksum=checksum)
    upload.write(body)
    return upload.commit()


class BulkWriter:
    """Submits the files of one bulk request; at most ``in_flight`` of them wait for a worker at
    once (so the request holds a bounded number of bodies)."""

    def __init__(self, core: Core, op: Op, in_flight: int = 16) -> None:
        self.core, self.op, self.in_flight = core, op, in_flight
        self._pending: list[Future[WriteResult]] = []
        self._last: dict[tuple[str, ...], Future[WriteResult]] = {}

    def submit(self, parts: Sequence[str], body: bytes, *, mtime: float | None,
               checksum: str | None) -> Future[WriteResult]:
        """Blocks while in_flight writes are pending."""
        self._pending = [f for f in self._pending if not f.done()]
        while len(self._pending) >= self.in_flight:
            self._pending[0].exception()  # wait, without raising its error
            self._pending = [f for f in self._pending if not f.done()]
        key = tuple(parts)
        fut = _POOL.submit(write_one, self.core, self.op, key, body, mtime=mtime, checksum=checksum,
                           after=self._last.get(key))
        self._last[key] = fut
        self._pending.append(fut)
        return fut
