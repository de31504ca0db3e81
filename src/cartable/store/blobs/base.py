# SPDX-License-Identifier: EUPL-1.2
"""The chunk store contract: content-addressed, immutable chunks keyed by their BLAKE3-256 digest.

Every backend (local folder, S3) implements ``ChunkStore`` and passes the same conformance suite.
The store knows nothing of users, files or reference counts: deciding when a chunk may be deleted
(garbage collection with a grace period) is the caller's job.

Errors: ``ChunkMissing`` means "no such chunk"; ``ChunkCorrupt`` (a ValueError) means its stored bytes
are damaged; ``StoreUnavailable`` means the backend failed (I/O error, disk full, object store
unreachable) and the operation may be retried. Backend-specific exceptions (OSError, obstore's)
never leave the store.

Listing is in digest order and resumable (``iter_digests(after=...)``), so the orphan sweep can walk
a store of hundreds of millions of objects a slice at a time; nothing else lists the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from cartable.common.hashing import digest_hex

__all__ = ["ChunkCorrupt", "ChunkMissing", "ChunkStore", "StoreUnavailable"]


class ChunkMissing(Exception):
    """The store holds no chunk with this digest. ``digest`` is the raw digest asked for."""

    def __init__(self, digest: bytes) -> None:
        super().__init__(f"chunk {digest_hex(digest)} is missing from the chunk store")
        self.digest = digest


class ChunkCorrupt(ValueError):
    """A stored chunk's bytes do not hash to its digest (damaged on disk or in transit)."""

    def __init__(self, digest: bytes) -> None:
        super().__init__(f"chunk {digest_hex(digest)} is corrupt: its bytes do not match its digest")
        self.digest = digest


class StoreUnavailable(Exception):
    """The backend failed (I/O error, disk full, unreachable); the message names what and where."""


class ChunkStore(Protocol):
    """A content-addressed store of chunks. Implementations are safe to call from many threads."""

    def put_many(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> list[int]:
        """Make each (digest, raw bytes) pair durably present; return the stored size of each, in order.

        The caller guarantees that each digest is ``chunk_digest`` of its bytes (the store does not
        re-hash). Chunks are compressed when it is worthwhile. When this returns, every given chunk is
        durably present in the store: written now, or already there (and then made durable too: its
        writer may not have finished syncing). An existing chunk object is NEVER replaced or rewritten,
        so a chunk another upload already committed keeps its bytes, and a concurrent ``get`` never sees
        a partial object. Its modification time is left alone (the GC decides from metadata rows, not
        from object times, except for objects with no row at all).
        Raises StoreUnavailable on backend failure (then some of the chunks may have been stored).
        """
        ...

    def get(self, digest: bytes) -> bytes:
        """Return the raw (decompressed) bytes of a chunk.

        Raises ChunkMissing if absent, StoreUnavailable on backend failure, and ValueError if the stored
        object cannot be decoded (ChunkCorrupt when a backend that re-hashes what it reads, such as S3,
        finds the bytes do not match the digest). ``verify`` always re-hashes.
        """
        ...

    def get_view(self, digest: bytes) -> bytes | memoryview:
        """The raw bytes of a chunk, as ``get``, for sending on: a backend may return a read-only
        view of the stored object itself (the local folder maps an uncompressed chunk file, so a
        download copies its bytes once, from the page cache to the socket). Same errors as ``get``."""
        ...

    def get_range(self, digest: bytes, start: int, end: int) -> bytes:
        """Raw bytes [start, end) of a chunk (end is clamped to the chunk's length). Same errors as
        ``get``. A backend may read only that slice when the chunk is stored uncompressed."""
        ...

    def has(self, digest: bytes) -> bool:
        """Return whether the chunk is stored (without reading it)."""
        ...

    def delete(self, digest: bytes) -> None:
        """Remove a chunk. Deleting a missing chunk is not an error."""
        ...

    def delete_many(self, digests: Sequence[bytes]) -> None:
        """Remove several chunks (one request per thousand on S3). Missing ones are not an error."""
        ...

    def iter_digests(self, after: bytes | None = None) -> Iterator[tuple[bytes, float]]:
        """Yield (digest, modification time as POSIX seconds) for the stored chunks in ascending
        digest order, starting after ``after`` when given (so a walk can stop and resume later).

        Lazy: a walk that stops early costs only what it read. Temporary and foreign objects are
        skipped. Chunks written or deleted during the walk may or may not be listed.
        """
        ...

    def verify(self, digest: bytes) -> bool:
        """Re-read and re-hash a chunk: True if intact, False if corrupt, undecodable or missing."""
        ...

    def cleanup_temps(self, older_than_seconds: float) -> int:
        """Remove temporary objects left by interrupted writes older than that; return how many."""
        ...
