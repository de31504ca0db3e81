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
   retries), creates the version, updates the node, propagates etag and size to the ancestors and
   appends to the journal. Only after it returns may a 2xx be sent. If anything fails, nothing is
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
from cartable.core import manifest, tree
from cartable.core.checksums import new_hasher, parse_checksum
from cartable.core.context import Core
from cartable.core.errors import (
    ChecksumMismatch,
    Conflict,
    InvalidInput,
    InvalidName,
    QuotaExceeded,
    StorageUnavailable,
    TooLarge,
)
from cartable.core.model import ManifestEntry, Node, Principal, WriteResult
from cartable.core.preconditions import Preconditions
from cartable.core.quota import check_quota, quota_of
from cartable.core.tree import Op, display
from cartable.store.blobs.base import StoreUnavailable
from cartable.store.meta import content
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict

__all__ = ["Upload", "room_for", "ContentWriter", "Written",
           "commit_version"]

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
        with self.core.db.write() as tx:
            claims = content.claim_chunks(tx, {d: len(c) for d, c in zip(digests, chunks)}, self.core.clock())
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
        except (OSError, StoreUnavailable) as exc:
            raise StorageUnavailable(f"the chunk store could not save data: {exc}") from None

    def finish(self) -> Written:
        """End of the stream: every chunk of the manifest is durable when this returns. Content
        of at most ``inline_max`` bytes comes back inline (when allowed), with no chunk written."""
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

    def commit(self) -> WriteResult:
        """Finish the stream and make the new version visible, atomically."""
        written = self._finish()
        self._verify_checksum()
        checksums = f"{self.expected[0]}:{self.expected[1]}" if self.expected is not None else None
        return commit_version(self.core, self.op, self.parts, written, mtime=self.mtime,
                              content_type=self.content_type, checksums=checksums, pre=self.pre)


def room_for(core: Core, principal: Principal, parts: Sequence[str], pre: Preconditions) -> int:
    """Early checks of a file write, before its bytes are read (the commit checks all again):
    the parent exists, the preconditions hold, the target is not a folder, a new file's name is
    acceptable. Returns how many bytes the quota leaves for the new content (the replaced file's
    size counts as free)."""
    with core.db.read() as tx:
        space = tree.space_of(tx, principal)
        parent = tree.resolve_parent(tx, space, parts)
        existing = nodes_repo.child(tx, parent.id, parts[-1])
        pre.check(tx, space, existing, display(parts), core.clock())
        if existing is not None and existing.is_dir:
            raise Conflict(f"{display(parts)} is a folder; a file cannot replace it")
        if existing is None:
            tree.check_new(core.names, parts)
        room = quota_of(core, space) - tree.root_of(tx, space).size
    return room + (existing.size if existing is not None else 0)


def commit_version(core: Core, op: Op, parts: Sequence[str], written: Written, *, mtime: float | None,
                   content_type: str | None, checksums: str | None, pre: Preconditions,
                   stage: Callable[[Tx, float], None] | None = None) -> WriteResult:
    """Make ``written`` the new version of the file at parts, in ONE metadata transaction: parent,
    preconditions (``pre``, on the target as this transaction sees it), folder conflict, the name
    of a new file (core.names), locks, quota, chunk references (each chunk row must be live and,
    for the chunks in written.claims, the incarnation the writer claimed: else
    StorageUnavailable, retry), version, node, etag/size propagation, journal. ``stage(tx, now)``,
    when given, runs in the same transaction right after the version's chunk references were
    added (so it may release other references to the same chunks safely), and may raise to abort
    everything."""
    size = written.size
    now = core.clock()
    mtime = mtime if mtime is not None else now
    refs = Counter(e.digest for e in written.entries)
    packed = manifest.pack(written.entries)
    with core.db.write() as tx:
        space = tree.space_of(tx, op.principal, for_update=True)
        parent = tree.resolve_parent(tx, space, parts)
        existing = nodes_repo.child(tx, parent.id, parts[-1])
        pre.check(tx, space, existing, display(parts), now)
        if existing is not None and existing.is_dir:
            raise Conflict(f"{display(parts)} is a folder; a file cannot replace it")
        if existing is None:
            tree.check_new(core.names, parts)
        ancestors = [parent.id, *nodes_repo.ancestor_ids(tx, parent.id)]
        target_locks = (tree.covering_locks(tx, existing.id, ancestors, now) if existing is not None
                        else tree.covering_locks(tx, parent.id, ancestors[1:], now))
        tree.check_locks(tx, op, display(parts), target_locks)
        old_size = existing.size if existing is not None else 0
        check_quota(core, tx, space, size - old_size)
        if content.ref_chunks(tx, refs, written.new, now, incarnations=written.claims):
            raise StorageUnavailable("a chunk of this content was collected by the garbage collector "
                                     "before the upload finished (it took longer than the grace period); retry")
        if stage is not None:
            stage(tx, now)
        etag = new_etag()
        if existing is None:
            try:
                node_id = nodes_repo.insert(tx, space_id=space.id, parent_id=parent.id, name=parts[-1],
                                            kind="f", size=size, mtime=mtime, ctime=now, etag=etag,
                                            content_type=content_type, checksums=checksums)
            except RowConflict:
                raise Conflict(f"{display(parts)} was created by another request; retry") from None
        else:
            node_id = existing.id
        vid = content.insert_version(tx, node_id=node_id, size=size, manifest=packed,
                                     inline_data=written.inline, created_at=now)
        if existing is not None:
            _drop_version(tx, existing, now)
        nodes_repo.update_node(tx, node_id, size=size, mtime=mtime, etag=etag, version_id=vid,
                               content_type=content_type, checksums=checksums)
        tree.propagate(tx, ancestors, size - old_size, now)
        node = Node(node_id, space.id, parent.id, parts[-1], "f", size, mtime,
                    existing.ctime if existing is not None else now, etag, vid, content_type, checksums)
        tree.record(tx, op, "create" if existing is None else "modify", [node], now)
        hit("writes.commit.before_commit")
    return WriteResult(node, existing is None)


def _drop_version(tx: Tx, existing: Node, now: float) -> None:
    if existing.version_id is None:
        return
    old = content.get_version(tx, existing.version_id)
    if old is not None:
        content.unref_chunks(tx, manifest.ref_counts([old.manifest]), now)
        content.delete_versions(tx, [old.id])
