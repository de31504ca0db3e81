# SPDX-License-Identifier: EUPL-1.2
"""Reading a file's content: its manifest becomes a stream of chunk bytes, ranges seek by chunk.

The node and its version are read in one snapshot (``MetaDB.read``: a BEGIN on SQLite, REPEATABLE
READ elsewhere), so a GET racing an overwrite sees the old version or the new one, whole. A chunk
of an old version may still be collected while it is being streamed if the stream outlasts the GC
grace period after the overwrite; that read then fails (StorageUnavailable), it never mixes."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from cartable.core import manifest, permissions, tree
from cartable.core.context import Core
from cartable.core.errors import Conflict, DataMissing, StorageUnavailable
from cartable.core.model import ManifestEntry, Node, Principal
from cartable.core.tree import display
from cartable.store.blobs.base import ChunkMissing, StoreUnavailable
from cartable.store.meta import content
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import VersionRecord

__all__ = ["Content", "open_content", "lookup"]

log = logging.getLogger("cartable.core")

# Reading ahead keeps the disk (or S3) busy while the previous chunk is being sent.
_PREFETCH = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cartable-read")


class Content:
    """An immutable version's bytes. Iterating does blocking I/O: run it in a worker thread."""

    def __init__(self, core: Core, node: Node, size: int, entries: Sequence[ManifestEntry],
                 inline: bytes | None) -> None:
        self.core, self.node, self.size = core, node, size
        self._entries = list(entries)
        self._inline = inline
        self._starts: list[int] = []
        pos = 0
        for e in self._entries:
            self._starts.append(pos)
            pos += e.length

    def _fetch(self, digest: bytes) -> bytes | memoryview:
        try:
            return self.core.blobs.get_view(digest)
        except ChunkMissing:
            raise StorageUnavailable(f"a chunk of {self.node.name!r} is missing from the store; "
                                     "run `cartable admin fsck`") from None
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"the chunk store could not be read: {exc}") from None
        except ValueError as exc:  # ChunkCorrupt, or bytes that do not decode: damage, not a race
            log.error("%s; run `cartable admin fsck --deep`", exc)
            raise DataMissing(f"a chunk of {self.node.name!r} is damaged in the chunk store; the server's "
                              "administrator has been told (see the server log)") from None

    def iter_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes | memoryview]:
        """Bytes [start, end) (end exclusive, default: the end of the file), as bytes or
        read-only views of the chunk store's own copy (ChunkStore.get_view)."""
        end = self.size if end is None else min(end, self.size)
        if start >= end:
            return
        if self._inline is not None:
            yield self._inline[start:end]
            return
        first = bisect.bisect_right(self._starts, start) - 1
        idx = list(range(first, len(self._entries)))
        pending: list[Future[bytes | memoryview]] = []
        for k in idx[:2]:
            pending.append(_PREFETCH.submit(self._fetch, self._entries[k].digest))
        for n, k in enumerate(idx):
            data = pending.pop(0).result()
            nxt = n + 2
            if nxt < len(idx) and self._starts[idx[nxt]] < end:
                pending.append(_PREFETCH.submit(self._fetch, self._entries[idx[nxt]].digest))
            cstart = self._starts[k]
            lo = max(start - cstart, 0)
            hi = min(end - cstart, len(data))
            if lo < hi:
                yield data[lo:hi] if (lo, hi) != (0, len(data)) else data
            if cstart + len(data) >= end:
                for f in pending:
                    f.cancel()
                return

    @property
    def inline(self) -> bytes | None:
        """The whole content when it is stored inline (tiny files), else None."""
        return self._inline

    def read_all(self) -> bytes:
        return b"".join(self.iter_range())


def lookup(core: Core, principal: Principal, parts: Sequence[str]) -> tuple[Node, Content | None]:
    """The node and, for a file, its content, from one snapshot (the GET fast path: on the raw
    driver, store/meta/raw.py)."""
    permissions.require(principal, permissions.READ, f"reading {display(parts)}")
    with core.db.fast_read() as tx:
        node = tree.resolve_from(tx, principal.root_id, parts)
        if node.is_dir:
            return node, None
        ver = _version_of(tx, node)
    return node, _content(core, node, ver)


def open_content(core: Core, principal: Principal, parts: Sequence[str]) -> Content:
    permissions.require(principal, permissions.READ, f"reading {display(parts)}")
    with core.db.fast_read() as tx:
        node = tree.resolve_from(tx, principal.root_id, parts)
        if node.is_dir:
            raise Conflict(f"{display(parts)} is a folder; it has no content to download")
        ver = _version_of(tx, node)
    return _content(core, node, ver)


def _version_of(tx: Tx, node: Node) -> VersionRecord | None:
    """The file's current version, read in the caller's snapshot (the same one as the node: an
    overwrite committed in between cannot make it vanish). None for a file that has never had
    content (version_id NULL: e.g. made by LOCK on an unmapped URL): it is empty. A version_id
    that names no version of this file is damage: logged, and DataMissing (a 500), never an
    empty body."""
    if node.version_id is None:
        return None
    ver = content.get_version(tx, node.version_id)
    if ver is None or ver.node_id != node.id:
        log.error("file %d (%r) points at version %d, which %s; run `cartable admin fsck`", node.id,
                  node.name, node.version_id, "does not exist" if ver is None else "belongs to another file")
        raise DataMissing(f"the content of {node.name!r} is missing from the metadata database; "
                          "the server's administrator has been told (see the server log)")
    return ver


def _content(core: Core, node: Node, ver: VersionRecord | None) -> Content:
    if ver is None:
        return Content(core, node, 0, [], b"")
    return Content(core, node, ver.size, manifest.unpack(ver.manifest), ver.inline_data)
