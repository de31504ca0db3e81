# SPDX-License-Identifier: EUPL-1.2
"""Many small files written at once (Nextcloud's bulk upload): each with its own result, one failing
file changing nothing for the others, and every reported success durable.

Files are gathered into batches (up to ``batch_files`` files or ``batch_bytes`` bytes). A batch is
prepared in a worker thread (checksum verified, content inline or written as chunks exactly as a
PUT would: core/writes.ContentWriter), then committed by ``writes.commit_versions``: ONE metadata
transaction with a savepoint per file, the folders' sizes and etags propagated once, one commit.
Batches run one after the other, in order, while the request keeps receiving the next files; so
two files of one request with the same path land in the order they were given."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from cartable.core import permissions
from cartable.core.checksums import new_hasher, parse_checksum
from cartable.core.context import Core
from cartable.core.errors import CartableError, ChecksumMismatch
from cartable.core.model import WriteResult
from cartable.core.tree import Op
from cartable.core.writes import ContentWriter, PendingVersion, commit_versions

__all__ = ["BulkWriter"]

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cartable-bulk")


@dataclass
class _Item:
    parts: tuple[str, ...]
    body: bytes
    mtime: float | None
    checksum: str | None
    future: Future[WriteResult] = field(default_factory=Future)


def _prepare(core: Core, item: _Item) -> PendingVersion:
    """The file's content made durable (inline or chunks) and its checksum checked."""
    expected = parse_checksum(item.checksum)
    if expected is not None:
        hasher = new_hasher(expected[0])
        hasher.update(item.body)
        if hasher.hexdigest() != expected[1]:
            raise ChecksumMismatch(f"the content's {expected[0]} is {hasher.hexdigest()}, not {expected[1]} as "
                                   "the client declared; nothing was stored")
    writer = ContentWriter(core)
    try:
        writer.write(item.body)
        written = writer.finish()
    except BaseException:
        writer.abandon()
        raise
    return PendingVersion(item.parts, written, item.mtime, mimetypes.guess_type(item.parts[-1])[0],
                          f"{expected[0]}:{expected[1]}" if expected is not None else None)


def _run_batch(core: Core, op: Op, items: Sequence[_Item], after: Future[None] | None) -> None:
    """Prepare, wait for the previous batch, commit; every item's future gets its result."""
    ready: list[tuple[_Item, PendingVersion]] = []
    for item in items:
        try:
            ready.append((item, _prepare(core, item)))
        except CartableError as exc:
            item.future.set_exception(exc)
        except BaseException as exc:  # reported through its future, never lost
            item.future.set_exception(exc)
    if after is not None:
        after.exception()  # wait for the batch before; its failures are its own
    if not ready:
        return
    try:
        results = commit_versions(core, op, [pending for _item, pending in ready])
    except BaseException as exc:
        for item, _pending in ready:
            item.future.set_exception(exc)
        return
    for (item, _pending), result in zip(ready, results):
        if isinstance(result, CartableError):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)


class BulkWriter:
    """The files of one bulk request. ``submit`` returns at once with the file's future (blocking
    only while the previous batch still runs and the current one is full, so a request holds at
    most about two batches of bodies); ``flush`` sends what is gathered. Not thread-safe: one
    request feeds it, in order."""

    def __init__(self, core: Core, op: Op, *, batch_files: int = 64, batch_bytes: int = 8 * 1024 * 1024) -> None:
        permissions.require_account(op.principal, "bulk upload")
        self.core, self.op = core, op
        self.batch_files, self.batch_bytes = batch_files, batch_bytes
        self._items: list[_Item] = []
        self._bytes = 0
        self._last: Future[None] | None = None

    def submit(self, parts: Sequence[str], body: bytes, *, mtime: float | None,
               checksum: str | None) -> Future[WriteResult]:
        item = _Item(tuple(parts), body, mtime, checksum)
        self._items.append(item)
        self._bytes += len(body)
        if len(self._items) >= self.batch_files or self._bytes >= self.batch_bytes:
            self.flush()
        return item.future

    def flush(self) -> None:
        """Send the gathered files as one batch (after the previous batch has started)."""
        if not self._items:
            return
        if self._last is not None:
            self._last.exception()  # at most one batch waiting behind the running one
        items, self._items, self._bytes = self._items, [], 0
        self._last = _POOL.submit(_run_batch, self.core, self.op, items, self._last)
