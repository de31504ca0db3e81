# SPDX-License-Identifier: EUPL-1.2
"""The write path: a stream of bytes becomes a new version of a file.

1. ``Upload.write`` runs the bytes through the content-defined chunker and BLAKE3. Every
   ``write_batch_bytes`` the finished chunks go through ONE write transaction that looks them up
   and claims those that need it (``content.claim_chunks``): a chunk already referenced is reused as
   it is; any other (no row, a dying row, an unreferenced row) is claimed, and only after that
   claim has committed are its bytes written to the chunk store (``put_many``: durable, never
   replacing an existing chunk), in the background while the next batch is chunked. Nothing is
   held whole. Bytes go after the claim, so the GC (core/gc.py), which only ever deletes the bytes
   of rows it marked dying in an earlier commit, cannot delete them under the writer.
2. ``Upload.commit`` opens ONE metadata transaction: checks the parent, locks, preconditions and
   quota, adds the chunk references (only to rows still live and of the incarnation this writer
   claimed or found referenced; otherwise it fails with StorageUnavailable and the client
   retries), creates the version (the content it replaces stays as an old version:
   core/versions.py), updates the node, propagates etag and size to the ancestors, appends to the
   journal and trims trash and old versions to the quota (core/retention.py). Only after it
   returns may a 2xx be sent. If anything fails, nothing is
   visible; chunks claimed or written for nothing are reclaimed by the GC after its grace period.
Tiny content (up to ``inline_max``) is stored in the version row itself: no claim, no chunk
store, one transaction.

``ContentWriter`` is step 1 alone (bytes in, durable chunks and a manifest out), reused by the
parts of chunked uploads (core/uploads.py); ``commit_version`` is step 2 alone, reused by their
assembly.
"""

from __future__ import annotations

import mimetypes
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cartable.common.chunking import StreamChunker
from cartable.common.faults import hit
from cartable.common.hashing import chunk_digest, new_etag
from cartable.core import manifest, permissions, retention, tree, versions
from cartable.core.checksums import new_hasher, parse_checksum
from cartable.core.context import Core
from cartable.core.errors import (
    CartableError,
    ChecksumMismatch,
    Conflict,
    InvalidInput,
    InvalidName,
    NotFound,
    QuotaExceeded,
    StorageUnavailable,
    TooLarge,
)
from cartable.core.model import ManifestEntry, Node, Principal, WriteResult
from cartable.core.preconditions import Preconditions
from cartable.core.quota import check_quota, quota_of
from cartable.core.tree import Op, display
from cartable.core.units import unit_of_work
from cartable.store.blobs.base import StoreUnavailable
from cartable.store.meta import content
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict, TransientConflict

__all__ = ["Upload", "room_for", "ContentWriter", "Written", "PendingVersion", "commit_versions",
           "commit_version", "Stage", "check_write", "free_name"]

# A step of a commit (see commit_version): runs inside its transaction, returns references to release.
Stage = Callable[[Tx, float], Counter[bytes]]

_PRECHECK_MIN = 256 * 1024
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cartable-write")
@dataclass
class Written:
    """What a ContentWriter produced: the content's size and either its manifest or, for tiny
    content, its bytes inline (then entries is empty). ``new`` = {digest: (size, stored size)} for
    the chunks this writer stored itself; ``claims`` = {digest: incarnation} of the chunk rows this
    writer claimed or found referenced (the commit references them only if they are still those)."""

    size: int
    entries: list[ManifestEntry] = field(default_factory=list)
    new: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    inline: bytes | None = None
    claims: dict[bytes, int] = field(default_factory=dict)


class ContentWriter:
    """Bytes in, durable content-defined chunks out (step 1 of the write path, see the module doc).

    Per batch: one write transaction looks the chunks up and claims the ones not referenced; the
    claimed ones are then written durably, in the background. ``finish`` returns once every chunk
    of the manifest is durable. Nothing is referenced: the caller adds the references in its
    commit transaction (until then a claimed chunk is protected by the GC grace period, and the
    commit fails cleanly if that ran out). Not thread-safe: one caller feeds it, in order.
    """

    def __init__(self, core: Core, *, allow_inline: bool = True) -> None:
        self.core = core
        self.allow_inline = allow_inline
        self.received = 0
        self._chunker = StreamChunker()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._entries: list[ManifestEntry] = []
        self._new: dict[bytes, tuple[int, int]] = {}
        self._claims: dict[bytes, int] = {}
        # {digest: incarnation} of the chunks this writer wrote (or is writing) after claiming
        # that incarnation: a later batch holding the same incarnation need not write them again.
        self._put_under: dict[bytes, int] = {}
        self._pending_write: Future[list[tuple[bytes, int, int]]] | None = None
        self._written: Written | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.received += len(data)
        for chunk in self._chunker.feed(data):
            self._add(chunk)

    def _add(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= self.core.limits.write_batch_bytes:
            self._flush()

    def _flush(self) -> None:
        chunks, self._pending, self._pending_bytes = self._pending, [], 0
        if not chunks:
            return
        digests = [chunk_digest(c) for c in chunks]
        sizes = {d: len(c) for d, c in zip(digests, chunks)}
        claims = self.core.db.transact(lambda tx: content.claim_chunks(tx, sizes, self.core.clock()))
        hit("writes.after_claim")
        to_write: dict[bytes, bytes] = {}
        for d, c in zip(digests, chunks):
            claim = claims[d]
            self._claims[d] = claim.incarnation
            if claim.write and self._put_under.get(d) != claim.incarnation:
                to_write[d] = c
                self._put_under[d] = claim.incarnation
        if to_write:
            # Written in the background while the next batch is chunked and hashed; at most one
            # batch in flight per writer, so memory stays bounded.
            self._wait_writes()
            self._pending_write = _WRITERS.submit(self._put, to_write)
        self._entries.extend(ManifestEntry(d, len(c)) for d, c in zip(digests, chunks))

    def _put(self, to_write: dict[bytes, bytes]) -> list[tuple[bytes, int, int]]:
        stored = self.core.blobs.put_many(list(to_write.items()))
        hit("writes.after_put")
        return [(d, len(c), s) for (d, c), s in zip(to_write.items(), stored)]

    def _wait_writes(self) -> None:
        if self._pending_write is None:
            return
        fut, self._pending_write = self._pending_write, None
        try:
            for d, size, stored in fut.result():
                self._new[d] = (size, stored)
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"the chunk store could not save data: {exc}") from None

    def finish(self) -> Written:
        """End of the stream: every chunk of the manifest is durable when this returns. Content
        of at most ``inline_max`` bytes comes back inline (when allowed), with no chunk written.
        Called again, returns the same (a unit of work run again after a transient conflict)."""
        if self._written is None:
            self._written = self._finish()
        return self._written

    def _finish(self) -> Written:
        rest = self._chunker.finish()
        if self.allow_inline and not self._entries and self.received <= self.core.limits.inline_max:
            inline = b"".join(self._pending + rest)
            self._pending, self._pending_bytes = [], 0
            return Written(self.received, inline=inline)
        for chunk in rest:
            self._add(chunk)
        self._flush()
        self._wait_writes()
        return Written(self.received, list(self._entries), dict(self._new), claims=dict(self._claims))

    def abandon(self) -> None:
        """Wait for a background write still running (its chunks are left to the GC)."""
        try:
            self._wait_writes()
        except StorageUnavailable:
            pass


class Upload:
    """One file write in progress. Not thread-safe: one caller feeds it, in order."""

    def __init__(self, core: Core, op: Op, parts: Sequence[str], *, length: int | None = None,
                 mtime: float | None = None, checksum: str | None = None,
                 content_type: str | None = None, preconditions: Preconditions | None = None) -> None:
        self.core, self.op, self.parts = core, op, tuple(parts)
        self.length, self.mtime = length, mtime
        self.expected = parse_checksum(checksum)
        self.content_type = content_type or mimetypes.guess_type(self.parts[-1] if self.parts else "")[0]
        self.pre = preconditions or Preconditions()
        self._writer = ContentWriter(core)
        self._written: Written | None = None
        self._received = 0
        self._hash: Any = None
        if self.expected is not None:
            self._hash = new_hasher(self.expected[0])
        # A small body with a known length costs less to receive than a pre-check transaction;
        # the commit checks everything again anyway. A name no new file may take is checked
        # first all the same, so that its bytes are never stored for nothing.
        small = length is not None and length <= _PRECHECK_MIN and self._name_acceptable()
        self._room = length if small and length is not None else self._check_start()

    def _name_acceptable(self) -> bool:
        if not self.parts:
            return False  # the root: _check_start says why
        try:
            tree.check_new(self.core.names, self.parts)
        except InvalidName:
            return False
        return True

    def _check_start(self) -> int:
        """Fail before any byte is read when the target is wrong or the quota is too small."""
        room = room_for(self.core, self.op.principal, self.parts, self.pre)
        if self.length is not None and self.length > room:
            raise QuotaExceeded(f"not enough space for {display(self.parts)}: it needs {self.length} bytes, "
                                f"{max(room, 0)} are left in the quota")
        return room

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._received += len(data)
        if self.length is not None and self._received > self.length:
            raise TooLarge(f"the body is longer than its Content-Length ({self.length} bytes)")
        if self._received > self._room:
            raise QuotaExceeded(f"not enough space for {display(self.parts)}: the quota would be exceeded")
        if self._hash is not None:
            self._hash.update(data)
        self._writer.write(data)

    def _finish(self) -> Written:
        if self._written is not None:
            return self._written
        if self.length is not None and self._received != self.length:
            raise InvalidInput(f"the body ended after {self._received} of {self.length} bytes")
        self._written = self._writer.finish()
        return self._written

    def _verify_checksum(self) -> None:
        if self.expected is None:
            return
        got = self._hash.hexdigest()
        if got != self.expected[1]:
            raise ChecksumMismatch(f"the content's {self.expected[0]} is {got}, not {self.expected[1]} "
                                   "as the client declared; nothing was stored")

    @unit_of_work
    def commit(self) -> WriteResult:
        """Finish the stream and make the new version visible, atomically."""
        written = self._finish()
        self._verify_checksum()
        checksums = f"{self.expected[0]}:{self.expected[1]}" if self.expected is not None else None
        return commit_version(self.core, self.op, self.parts, written, mtime=self.mtime,
                              content_type=self.content_type, checksums=checksums, pre=self.pre)


def check_write(principal: Principal, existing: Node | None, parts: Sequence[str]) -> None:
    """Forbidden unless the principal may write a file at parts: UPDATE to replace ``existing``,
    CREATE to make a new one (core/permissions.py)."""
    if existing is not None:
        permissions.require(principal, permissions.UPDATE, f"overwriting {display(parts)}")
    else:
        permissions.require(principal, permissions.CREATE, f"creating {display(parts)}")


def free_name(tx: Tx, parent_id: int, name: str) -> str:
    """``name`` if free under parent_id, else the first free "stem (n).ext", n from 2 (as
    Nextcloud names a file dropped onto a taken name)."""
    stem, ext = name, ""
    if "." in name.lstrip("."):
        dot = name.rindex(".")
        stem, ext = name[:dot], name[dot:]
    candidate, n = name, 1
    while nodes_repo.child(tx, parent_id, candidate) is not None:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


def room_for(core: Core, principal: Principal, parts: Sequence[str], pre: Preconditions) -> int:
    """Early checks of a file write, before its bytes are read (the commit checks all again):
    the parent exists, the preconditions hold, the target is not a folder, a new file's name is
    acceptable. Returns how many bytes the quota leaves for the new content (the replaced file's
    size counts as free)."""
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        parent = tree.resolve_parent(tx, principal.root_id, parts)
        existing = nodes_repo.child(tx, parent.id, parts[-1])
        if existing is not None and not existing.is_dir and permissions.is_drop(principal):
            existing = None  # a drop never learns the name is taken: its file gets a free name
        pre.check(tx, principal.root_id, existing, display(parts), core.clock())
        check_write(principal, existing, parts)
        if existing is not None and existing.is_dir:
            raise Conflict(f"{display(parts)} is a folder; a file cannot replace it")
        if existing is None:
            tree.check_new(core.names, parts)
        room = quota_of(core, space) - tree.root_of(tx, space).size
    return room + (existing.size if existing is not None else 0)


@unit_of_work
def commit_version(core: Core, op: Op, parts: Sequence[str], written: Written, *, mtime: float | None,
                   content_type: str | None, checksums: str | None, pre: Preconditions,
                   stage: Stage | None = None) -> WriteResult:
    """Make ``written`` the new version of the file at parts, in ONE metadata transaction: the
    space lock, parent, preconditions (``pre``, on the target as this transaction sees it), folder
    conflict, the name of a new file (core.names), locks, quota; then ``stage``; then the old
    version's row goes, and ONE sorted pass over the chunk rows adds the new version's references
    and releases the old version's and the staged ones (each added chunk's row must be live and,
    for the chunks in written.claims, the incarnation the writer claimed: else
    StorageUnavailable, retry); then the version row (the replaced one kept as an old version:
    core/versions.py), the node, etag/size propagation, journal, trash and old versions trimmed to
    the quota (core/retention.py).

    ``stage(tx, now)``, when given, runs in the same transaction after the checks and before any
    chunk row is touched; it returns the chunk references to release (Counter of digests: the
    staged parts' of a chunked upload, which move to the version), and may raise to abort
    everything. A unit of work: run again whole on a transient database conflict.

    A NEW file's commit holds the space SHARED (one user's uploads from several devices run
    together; issue 11): the quota is checked again on the root folder's size once this
    transaction holds the root's row (the last statements before the commit, serialised there and
    only there), and two writers creating the same new name at once make the later one run again
    and replace the earlier one's file, as if they had queued. An overwrite holds the space
    exclusively, as every other write does: keeping the replaced content as an old version
    changes the space's counters, which two holders of a shared lock cannot both update (it
    would deadlock). Whether the file exists is read just before (not on SQLite, where writers
    take turns anyway); if it appears meanwhile, the conflict makes the unit run again, then
    exclusively."""
    now = core.clock()
    item = PendingVersion(tuple(parts), written, mtime, content_type, checksums, pre)
    # SQLite has one writer at a time whatever the lock: no need to look (a PUT stays one transaction).
    shared = not core.db.is_sqlite and not _file_exists(core, op, item.parts)
    with core.db.write() as tx:
        batch = _Batch(core, tx, op, now, shared=shared)
        result = batch.install(item, stage)
        batch.finish()
        hit("writes.commit.before_commit")
    hit("writes.commit.after_commit")
    return result


def _file_exists(core: Core, op: Op, parts: tuple[str, ...]) -> bool:
    """Whether a file is at ``parts`` now (a hint for the lock commit_version takes, no more)."""
    with core.db.read() as tx:
        try:
            tree.space_of(tx, op.principal)
            return not tree.resolve(tx, op.principal.root_id, parts).is_dir
        except NotFound:
            return False


@dataclass
class PendingVersion:
    """One file's new content waiting for its commit (see commit_versions)."""

    parts: tuple[str, ...]
    written: Written
    mtime: float | None = None
    content_type: str | None = None
    checksums: str | None = None
    pre: Preconditions = field(default_factory=Preconditions)


@unit_of_work
def commit_versions(core: Core, op: Op, items: Sequence[PendingVersion]) -> list[WriteResult | CartableError]:
    """Commit many files at once (bulk upload): each exactly as ``commit_version`` would, in ONE
    metadata transaction, each in its own savepoint, so that a failing file (missing folder,
    quota, lock, a name refused...) changes nothing and its error takes its place in the result,
    while the others go on. A later item sees the earlier ones (the same path twice: the second
    replaces the first). The folders' etags and sizes are propagated once for the whole batch and
    the journal appended once, so a batch costs a few statements per file and one commit (one
    fsync, or one synchronous round trip to a standby) in all. Every result is durable when this
    returns; if the commit itself fails, the error is raised and nothing is visible."""
    now = core.clock()
    results: list[WriteResult | CartableError] = []
    with core.db.write() as tx:
        batch = _Batch(core, tx, op, now)
        for item in items:
            # Inline content references no chunk, and every check that can refuse it runs before
            # its first write: a refusal leaves nothing to undo. Chunked content adds references
            # before the node is written, so it gets a savepoint.
            savepoint = tx.begin_nested() if item.written.entries else None
            try:
                results.append(batch.install(item))
            except CartableError as exc:
                if savepoint is not None:
                    savepoint.rollback()
                results.append(exc)
            else:
                if savepoint is not None:
                    savepoint.commit()
        batch.finish()
        hit("writes.commit.before_commit")
    hit("writes.commit.after_commit")
    return results


class _Batch:
    """The new versions of one transaction: the space lock taken once, each parent folder and its
    ancestors resolved once, and the size changes summed per folder until ``finish`` propagates
    them (one new etag per folder) and writes the journal."""

    def __init__(self, core: Core, tx: Tx, op: Op, now: float, *, shared: bool = False) -> None:
        """shared: hold the space shared, not exclusively (see commit_version)."""
        self.core, self.tx, self.op, self.now, self.shared = core, tx, op, now, shared
        self.space = tree.space_of(tx, op.principal, for_update=not shared, shared=shared)
        self._parents: dict[tuple[str, ...], tuple[Node, list[int]]] = {}
        self._deltas: dict[int, int] = {}  # folder id → bytes added below it by this batch
        self._touched: set[int] = set()  # direct parents (their mtime moves)
        self._journal: list[tuple[str, Node]] = []
        self._used = tree.root_of(tx, self.space).size  # grows with each file (the root's size lags)
        self._locks = locks_repo.any_active(tx, now)  # no lock anywhere: no per-file lock lookups

    def _parent(self, parts: tuple[str, ...]) -> tuple[Node, list[int]]:
        key = parts[:-1]
        found = self._parents.get(key)
        if found is None:
            parent = tree.resolve_parent(self.tx, self.op.principal.root_id, parts)
            found = (parent, [parent.id, *nodes_repo.ancestor_ids(self.tx, parent.id)])
            self._parents[key] = found
        return found

    def install(self, item: PendingVersion, stage: Stage | None = None) -> WriteResult:
        core, tx, op, now, parts, written = self.core, self.tx, self.op, self.now, item.parts, item.written
        size = written.size
        mtime = item.mtime if item.mtime is not None else now
        parent, ancestors = self._parent(parts)
        existing = nodes_repo.child(tx, parent.id, parts[-1], for_update=self.shared)
        if existing is not None and permissions.is_drop(op.principal):
            # An upload-only link never replaces nor reveals what is there: a free name instead.
            parts = (*parts[:-1], free_name(tx, parent.id, parts[-1]))
            existing = None
        item.pre.check(tx, op.principal.root_id, existing, display(parts), now)
        check_write(op.principal, existing, parts)
        if existing is not None and existing.is_dir:
            raise Conflict(f"{display(parts)} is a folder; a file cannot replace it")
        if existing is None:
            tree.check_new(core.names, parts)
        target_locks = (tree.covering_locks(tx, existing.id, ancestors, now, any_active=self._locks)
                        if existing is not None
                        else tree.covering_locks(tx, parent.id, ancestors[1:], now, any_active=self._locks))
        tree.check_locks(tx, op, display(parts), target_locks)
        old_size = existing.size if existing is not None else 0
        check_quota(core, tx, self.space, size - old_size, used=self._used)
        deltas = Counter(e.digest for e in written.entries)
        if stage is not None:
            deltas.subtract(stage(tx, now))
        if content.change_refs(tx, deltas, written.new, now, incarnations=written.claims):
            raise StorageUnavailable("a chunk of this content was collected by the garbage collector "
                                     "before the upload finished (it took longer than the grace period); retry")
        etag = new_etag()
        if existing is None:
            try:
                node_id = nodes_repo.insert(tx, space_id=self.space.id, parent_id=parent.id, name=parts[-1],
                                            kind="f", size=size, mtime=mtime, ctime=now, etag=etag,
                                            content_type=item.content_type, checksums=item.checksums)
            except RowConflict:
                if self.shared:  # created by a writer that held the space with us: run again, replace it
                    raise TransientConflict(f"{display(parts)} was created by a concurrent request") from None
                raise Conflict(f"{display(parts)} was created by another request; retry") from None
        else:
            node_id = existing.id
        vid = content.insert_version(tx, node_id=node_id, size=size, manifest=manifest.pack(written.entries),
                                     inline_data=written.inline, created_at=now)
        if existing is not None:
            versions.keep(core, tx, existing, vid, now)  # the replaced content becomes an old version
        nodes_repo.update_node(tx, node_id, size=size, mtime=mtime, etag=etag, version_id=vid,
                               content_type=item.content_type, checksums=item.checksums)
        delta = size - old_size
        self._used += delta
        for folder in ancestors:
            self._deltas[folder] = self._deltas.get(folder, 0) + delta
        self._touched.add(parent.id)
        node = Node(node_id, self.space.id, parent.id, parts[-1], "f", size, mtime,
                    existing.ctime if existing is not None else now, etag, vid, item.content_type, item.checksums)
        self._journal.append(("create" if existing is None else "modify", node))
        return WriteResult(node, existing is None)

    def finish(self) -> None:
        """Propagate the summed size changes with one new etag per folder, then the journal. With
        the space held shared, the quota is checked again here, on the root's size as it is once
        this transaction holds the root's row: writers that passed the first check together do
        not pass this one together. The journal's entries are appended after that lock too, so
        that a space's entries are numbered in the order their transactions commit."""
        grown = self._deltas.get(self.space.root_id, 0)
        sizes = tree.propagate_sums(self.tx, self._deltas, self._touched, self.now)
        if self.shared and grown > 0:
            used, quota = sizes[self.space.root_id], quota_of(self.core, self.space)
            if used > quota:
                raise QuotaExceeded(f"not enough space: {grown} more bytes would exceed the quota "
                                    f"({used - grown} of {quota} bytes used)")
        tree.record_each(self.tx, self.op, self._journal, self.now)
        retention.settle(self.core, self.tx, self.space, self.now, live=self._used)
        self._deltas, self._touched, self._journal = {}, set(), []
