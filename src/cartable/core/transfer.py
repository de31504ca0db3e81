# SPDX-License-Identifier: EUPL-1.2
"""Moving an instance to other stores (``cartable admin migrate-to``): typically the embedded
SQLite + folder of a school to the PostgreSQL + S3 of an administration, while it is stopped.

Bytes go first: every chunk the source stores is copied to the target store (``put_many``: never
replacing what is there, so a rerun costs little), in digest order, with the last digest copied
kept in the target database (``transfer.chunks_after``); then every metadata row, keeping every id
(store/meta/copy.py, resumable too). Nothing in the target references a chunk before its bytes
are there. Finally every file is verified: each chunk of each version is present in the target
store (re-read and re-hashed with ``deep``), the row counts of both databases agree, and the
target passes fsck. The target database must be empty, or hold an earlier, interrupted transfer
of the same source (its journal epoch says so); anything else is refused.

The source must not change meanwhile: the caller holds the source's write lock for the whole
transfer (``MetaDB.exclusive``), so a server left running by mistake cannot commit anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cartable.core import fsck, manifest
from cartable.core.context import Core
from cartable.core.errors import Conflict, StorageUnavailable
from cartable.store.blobs.base import ChunkMissing, StoreUnavailable
from cartable.store.meta import content, journal
from cartable.store.meta.copy import CURSOR_PREFIX, copy_tables, row_counts

__all__ = ["TransferReport", "transfer"]

_BATCH = 64
_CURSOR = CURSOR_PREFIX + "chunks_after"
_SOURCE = CURSOR_PREFIX + "source"  # the source's journal epoch: which instance this target receives


@dataclass
class TransferReport:
    chunks_copied: int = 0
    chunks_missing: list[str] = field(default_factory=list)  # in the source store already
    rows_copied: dict[str, int] = field(default_factory=dict)
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_target(source: Core, target: Core) -> None:
    """The target must be empty (then it is marked as this source's), or marked as this source's
    by an earlier run (then the transfer resumes); anything else is refused."""
    with source.db.read() as tx:
        epoch = journal.get_kv(tx, "epoch")
    assert epoch is not None
    with target.db.read() as tx:
        marked = journal.get_kv(tx, _SOURCE)
    if marked is None:
        if row_counts(target.db)["users"]:
            raise Conflict("the target database already holds another instance's data; give an empty database")
        with target.db.write() as tx:
            marked = journal.kv_once(tx, _SOURCE, epoch)
    if marked != epoch:
        raise Conflict("the target database already holds another instance's data (an earlier migration of "
                       "another source); give an empty database")


def _copy_chunks(source: Core, target: Core, report: TransferReport, say: Callable[[str], None],
                 batch_size: int) -> None:
    with target.db.read() as tx:
        after_hex = journal.get_kv(tx, _CURSOR)
    after = bytes.fromhex(after_hex) if after_hex else None
    while True:
        with source.db.read() as tx:
            rows = content.chunks_after(tx, after, batch_size)
        if not rows:
            return
        batch: list[tuple[bytes, bytes]] = []
        for digest, refcount, dying in rows:
            if dying:
                continue  # the GC was deleting it: nothing may reference it
            try:
                batch.append((digest, source.blobs.get(digest)))
            except ChunkMissing:
                if refcount > 0:  # a claimed, never referenced chunk may have no bytes: that is fine
                    report.chunks_missing.append(digest.hex())
                    report.problems.append(f"chunk {digest.hex()} is referenced but missing from the source "
                                           "store (run `cartable admin fsck` on the source)")
            except (StoreUnavailable, ValueError) as exc:
                raise StorageUnavailable(f"cannot read chunk {digest.hex()} from the source: {exc}") from None
        try:
            target.blobs.put_many(batch)
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"cannot write chunks to the target store: {exc}") from None
        after = rows[-1][0]
        with target.db.write() as tx:
            journal.set_kv(tx, _CURSOR, after.hex())
        report.chunks_copied += len(batch)
        say(f"progress: {report.chunks_copied} chunks copied")


def _verify(source: Core, target: Core, report: TransferReport, deep: bool) -> None:
    want, got = row_counts(source.db), row_counts(target.db)
    for table, n in want.items():
        if got.get(table) != n:
            report.problems.append(f"table {table}: {n} rows in the source, {got.get(table)} in the target")
    with target.db.read() as tx:
        versions = list(content.iter_versions(tx))
    for ver in versions:
        report.files_checked += 1
        for entry in manifest.unpack(ver.manifest):
            ok = target.blobs.verify(entry.digest) if deep else target.blobs.has(entry.digest)
            if not ok:
                report.problems.append(f"version {ver.id} of node {ver.node_id}: chunk {entry.digest.hex()} is "
                                       f"{'damaged or missing' if deep else 'missing'} in the target store")
    check = fsck.check(target, deep=False)
    report.problems.extend(f"fsck: {p}" for p in check.problems)


def transfer(source: Core, target: Core, *, deep: bool = False, say: Callable[[str], None] = lambda _m: None,
             batch_size: int = _BATCH, rows_batch: int = 2000) -> TransferReport:
    """Copy everything from source to target, then verify it (see the module doc). Conflict if
    the target holds another instance; StorageUnavailable if a store fails (run it again: it
    resumes). ``say`` gets a line at each step, and one starting with "progress: " after each
    batch of chunks or rows."""
    report = TransferReport()
    _check_target(source, target)
    say("copying chunks (bytes first)")
    _copy_chunks(source, target, report, say, batch_size)
    say(f"chunks: {report.chunks_copied} copied; copying the metadata")
    report.rows_copied = copy_tables(source.db, target.db, lambda table, n: say(f"progress: {table}: {n} rows"),
                                     batch_size=rows_batch)
    say("verifying every file in the target")
    _verify(source, target, report, deep)
    return report
