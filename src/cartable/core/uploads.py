# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads (Nextcloud's upload collections), without HTTP.

An upload is a staging collection named by the client (its *key*), private to one user. Each part
is written like a file (content-defined chunks, dedup, durable writes, ``ContentWriter``) but its
manifest goes to an ``upload_parts`` row, in one transaction that adds its chunk references: the GC
never takes a staged chunk. Replacing a part of the same name releases the old one's references.

``assemble`` orders the parts by name (numerically when every name is all digits, else
lexicographically), concatenates their manifests (no byte is copied; tiny inline parts become
chunks first, unless the whole file is tiny and stays inline) and commits the file exactly like a
PUT (``commit_version``), in one transaction that also deletes the staging rows: the references
move from the parts to the version. Each chunk's refcount keeps counting manifest occurrences.

Quota: ``begin`` checks the declared total length against the free space; parts may stage at most
the user's quota in total (all uploads together); ``assemble`` checks the quota again in its commit.
Abandoned uploads (untouched for ``UPLOAD_TTL`` seconds) are released by ``expire`` (from gc.collect).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cartable.common.paths import InvalidPath, normalize_name
from cartable.core import manifest, permissions, tree
from cartable.core.checksums import new_hasher, parse_checksum
from cartable.core.context import Core
from cartable.core.errors import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    DataMissing,
    InvalidInput,
    InvalidName,
    NotFound,
    QuotaExceeded,
    StorageUnavailable,
    TooLarge,
)
from cartable.core.model import Principal, WriteResult
from cartable.core.preconditions import Preconditions
from cartable.core.quota import quota_of
from cartable.core.tree import Op, display
from cartable.core.units import unit_of_work
from cartable.core.writes import (
    ContentWriter,
    Written,
    commit_version,
    room_for,
)
from cartable.store.blobs.base import ChunkMissing, StoreUnavailable
from cartable.store.meta import content
from cartable.store.meta import uploads as repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict

__all__ = ["UPLOAD_TTL", "ASSEMBLE_NAME", "PartInfo", "UploadInfo", "PartWriter", "begin", "put_part",
           "list_parts", "abort", "assemble", "expire", "order_names", "detach_user"]

UPLOAD_TTL = 24 * 3600.0
ASSEMBLE_NAME = ".file"  # the pseudo-member a client MOVEs to assemble; never a part name
_EXPIRE_BATCH = 100


@dataclass(frozen=True, slots=True)
class PartInfo:
    name: str
    size: int
    mtime: float
    etag: str


@dataclass(frozen=True, slots=True)
class UploadInfo:
    key: str
    created_at: float
    touched_at: float
    total_length: int | None
    destination: str | None
    parts: list[PartInfo]

    @property
    def etag(self) -> str:
        return _etag(self.key, len(self.parts), self.touched_at)


def _etag(*bits: object) -> str:
    return hashlib.sha1(repr(bits).encode()).hexdigest()[:20]


def _part_info(p: repo.PartRecord) -> PartInfo:
    return PartInfo(p.name, p.size, p.created_at, _etag(p.upload_id, p.name, p.size, p.created_at))


def _valid(kind: str, value: str) -> str:
    try:
        name = normalize_name(value)
    except InvalidPath as exc:
        raise InvalidName(f"upload {kind} {value!r} is not acceptable: {exc}") from None
    if kind == "part name" and name == ASSEMBLE_NAME:
        raise InvalidName(f"{ASSEMBLE_NAME!r} is reserved: MOVE it to assemble the upload")
    return name


def _get(tx: Tx, principal: Principal, key: str, *, for_update: bool = False) -> repo.UploadRecord:
    up = (repo.get_for_update if for_update else repo.get)(tx, principal.user_id, key)
    if up is None:
        raise NotFound(f"there is no upload {key!r} (it was never created, finished, deleted or expired)")
    return up


def order_names(names: Iterable[str]) -> list[str]:
    """Assembly order: numeric when every name is all digits, else lexicographic."""
    names = list(names)
    if names and all(n.isascii() and n.isdigit() for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


def _detach(tx: Tx, upload_id: int) -> Counter[bytes]:
    """Delete the upload's rows; returns the chunk references its parts held (the caller releases
    them, in the one sorted pass of its transaction)."""
    parts = repo.list_parts(tx, upload_id)
    repo.delete(tx, upload_id)
    return manifest.ref_counts(p.manifest for p in parts)


def _release(tx: Tx, upload_id: int, now: float) -> None:
    content.unref_chunks(tx, _detach(tx, upload_id), now)


@unit_of_work
def begin(core: Core, principal: Principal, key: str, total_length: int | None = None,
          destination: str | None = None, *, dst_parts: Sequence[str] | None = None) -> None:
    """Create the staging collection. AlreadyExists if it exists; QuotaExceeded when total_length
    does not fit in the free space (plus the size of the file at dst_parts, which it would replace)."""
    permissions.require_account(principal, "chunked upload")
    key = _valid("id", key)
    if total_length is not None and total_length < 0:
        raise InvalidInput("OC-Total-Length must be zero or more bytes")
    now = core.clock()
    with core.db.write() as tx:
        if repo.get(tx, principal.user_id, key) is not None:
            raise AlreadyExists(f"upload {key!r} already exists")
        if total_length is not None:
            space = tree.space_of(tx, principal)
            room = quota_of(core, space) - tree.root_of(tx, space).size
            if dst_parts:
                try:
                    old = tree.resolve(tx, principal.root_id, dst_parts)
                    room += 0 if old.is_dir else old.size
                except NotFound:
                    pass
            if total_length > room:
                raise QuotaExceeded(f"not enough space for an upload of {total_length} bytes: "
                                    f"{max(room, 0)} are left in the quota")
        try:
            repo.create(tx, user_id=principal.user_id, upload_key=key, now=now, total_length=total_length,
                        destination=destination)
        except RowConflict:
            raise AlreadyExists(f"upload {key!r} already exists") from None


class PartWriter:
    """One part being received: ``write`` the bytes in order, then ``commit``. NotFound when the
    upload does not exist; QuotaExceeded when the user's staged parts would exceed the quota."""

    def __init__(self, core: Core, principal: Principal, key: str, name: str, *, length: int | None = None,
                 ) -> None:
        self.core, self.principal = core, principal
        self.key, self.name = _valid("id", key), _valid("part name", name)
        self.length = length
        with core.db.read() as tx:
            up = _get(tx, principal, self.key)
            self._room = self._room_in(tx, up.id)
        if length is not None and length > self._room:
            raise QuotaExceeded(f"not enough space to stage a part of {length} bytes")
        self._writer = ContentWriter(core)
        self._received = 0

    def _room_in(self, tx: Tx, upload_id: int) -> int:
        quota = quota_of(self.core, tree.space_of(tx, self.principal))
        old = repo.get_part(tx, upload_id, self.name)
        return quota - repo.staged_bytes(tx, self.principal.user_id) + (old.size if old else 0)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._received += len(data)
        if self.length is not None and self._received > self.length:
            raise TooLarge(f"the body is longer than its Content-Length ({self.length} bytes)")
        if self._received > self._room:
            raise QuotaExceeded("not enough space to stage this part: the quota would be exceeded")
        self._writer.write(data)

    @unit_of_work
    def commit(self) -> PartInfo:
        """Make the part durable and recorded (replacing a part of the same name), atomically: its
        references are added and those of the part it replaces released in one sorted pass."""
        if self.length is not None and self._received != self.length:
            raise InvalidInput(f"the body ended after {self._received} of {self.length} bytes")
        written = self._writer.finish()
        now = self.core.clock()
        with self.core.db.write() as tx:
            up = _get(tx, self.principal, self.key, for_update=True)
            if written.size > self._room_in(tx, up.id):
                raise QuotaExceeded("not enough space to stage this part: the quota would be exceeded")
            deltas = Counter(e.digest for e in written.entries)
            old = repo.get_part(tx, up.id, self.name)
            if old is not None:
                deltas.subtract(manifest.ref_counts([old.manifest]))
            if content.change_refs(tx, deltas, written.new, now, incarnations=written.claims):
                raise StorageUnavailable("a chunk of this part was collected by the garbage collector before "
                                         "the part was recorded (it took longer than the grace period); retry")
            repo.put_part(tx, upload_id=up.id, name=self.name, size=written.size,
                          manifest=manifest.pack(written.entries), inline_data=written.inline, now=now)
            repo.touch(tx, up.id, now)
        return PartInfo(self.name, written.size, now, _etag(up.id, self.name, written.size, now))

    def abandon(self) -> None:
        """Give up (the chunks already written are left to the GC)."""
        self._writer.abandon()


def put_part(core: Core, principal: Principal, key: str, name: str, stream: Iterable[bytes], *,
             length: int | None = None) -> PartInfo:
    """Store one part from an iterable of byte pieces (see PartWriter)."""
    permissions.require_account(principal, "chunked upload")
    w = PartWriter(core, principal, key, name, length=length)
    try:
        for piece in stream:
            w.write(piece)
        return w.commit()
    except BaseException:
        w.abandon()
        raise


def list_parts(core: Core, principal: Principal, key: str) -> UploadInfo:
    """The upload and its parts, sorted by name (for PROPFIND: resuming clients)."""
    permissions.require_account(principal, "chunked upload")
    with core.db.read() as tx:
        up = _get(tx, principal, _valid("id", key))
        parts = repo.list_parts(tx, up.id)
    return UploadInfo(up.upload_key, up.created_at, up.touched_at, up.total_length, up.destination,
                      [_part_info(p) for p in parts])


@unit_of_work
def abort(core: Core, principal: Principal, key: str) -> None:
    """Delete the upload and release its parts' chunk references."""
    permissions.require_account(principal, "chunked upload")
    with core.db.write() as tx:
        up = _get(tx, principal, _valid("id", key), for_update=True)
        _release(tx, up.id, core.clock())


def detach_user(tx: Tx, user_id: int) -> Counter[bytes]:
    """Inside a transaction deleting a user: delete every upload of theirs; returns the chunk
    references their parts held (the caller releases them)."""
    held: Counter[bytes] = Counter()
    for up in repo.list_for_user(tx, user_id):
        held.update(_detach(tx, up.id))
    return held


def expire(core: Core, older_than_seconds: float = UPLOAD_TTL) -> int:
    """Release every upload untouched for that long; returns how many. Their chunks then go to
    the GC (after its grace period, like any released chunk)."""
    cutoff = core.clock() - older_than_seconds
    done = 0
    while True:
        with core.db.read() as tx:
            batch = repo.list_expired(tx, cutoff, _EXPIRE_BATCH)
        removed = sum(_expire_one(core, up, cutoff) for up in batch)
        done += removed
        if len(batch) < _EXPIRE_BATCH or removed == 0:
            return done


@unit_of_work
def _expire_one(core: Core, up: repo.UploadRecord, cutoff: float) -> int:
    """Release ``up`` if it is still untouched since cutoff; 1 if it was."""
    with core.db.write() as tx:
        cur = repo.get_for_update(tx, up.user_id, up.upload_key)
        if cur is None or cur.id != up.id or cur.touched_at >= cutoff:
            return 0
        _release(tx, cur.id, core.clock())
        return 1


def _build(core: Core, parts: Sequence[repo.PartRecord], size: int) -> Written:
    """The file's content from the ordered parts: inline if tiny, else concatenated manifests
    (tiny inline parts are chunked and stored first)."""
    if size <= core.limits.inline_max and all(p.inline_data is not None or p.size == 0 for p in parts):
        return Written(size, inline=b"".join(p.inline_data or b"" for p in parts))
    out = Written(size)
    for p in parts:
        if p.inline_data is not None:
            if p.size:
                w = ContentWriter(core, allow_inline=False)
                w.write(p.inline_data)
                got = w.finish()
                out.entries.extend(got.entries)
                out.new.update(got.new)
                out.claims.update(got.claims)
        else:
            out.entries.extend(manifest.unpack(p.manifest))
    return out


def _verify(core: Core, written: Written, expected: tuple[str, str]) -> None:
    """Hash the assembled content, streamed from the store; ChecksumMismatch if it differs."""
    hasher = new_hasher(expected[0])
    if written.inline is not None:
        hasher.update(written.inline)
    for e in written.entries:
        try:
            hasher.update(core.blobs.get(e.digest))
        except ChunkMissing:
            raise StorageUnavailable("a chunk of the upload is missing from the store; retry") from None
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"the chunk store could not be read: {exc}") from None
        except ValueError as exc:  # ChunkCorrupt: damage, reported by fsck --deep
            raise DataMissing(f"a chunk of the upload is damaged in the chunk store ({exc})") from None
    got = hasher.hexdigest()
    if got != expected[1]:
        raise ChecksumMismatch(f"the assembled content's {expected[0]} is {got}, not {expected[1]} as the "
                               "client declared; nothing was stored")


def _fingerprint(parts: Sequence[repo.PartRecord]) -> list[tuple[str, int, float]]:
    return sorted((p.name, p.size, p.created_at) for p in parts)


@unit_of_work
def assemble(core: Core, op: Op, key: str, dst_parts: Sequence[str], *, total_length: int | None = None,
             mtime: float | None = None, checksum: str | None = None, content_type: str | None = None,
             preconditions: Preconditions | None = None) -> WriteResult:
    """Make the upload's parts the new content of the file at dst_parts (see the module doc).

    InvalidInput when the parts' total differs from total_length (or the length declared when
    the upload began); ChecksumMismatch when checksum ('ALGO:hex') does not match; then, and on
    any other error, nothing is visible and the upload stays as it was."""
    permissions.require_account(op.principal, "chunked upload")
    key, dst = _valid("id", key), tuple(dst_parts)
    expected = parse_checksum(checksum)
    pre = preconditions or Preconditions()
    principal = op.principal
    with core.db.read() as tx:
        up = _get(tx, principal, key)
        records = {p.name: p for p in repo.list_parts(tx, up.id)}
    room = room_for(core, principal, dst, pre)
    parts = [records[n] for n in order_names(records)]
    size = sum(p.size for p in parts)
    declared = total_length if total_length is not None else up.total_length
    if declared is not None and declared != size:
        raise InvalidInput(f"the upload's parts hold {size} bytes, not the {declared} declared")
    if size > room:
        raise QuotaExceeded(f"not enough space for {display(dst)}: it needs {size} bytes, "
                            f"{max(room, 0)} are left in the quota")
    written = _build(core, parts, size)
    if expected is not None:
        _verify(core, written, expected)
    seen = _fingerprint(parts)

    def stage(tx: Tx, now: float) -> Counter[bytes]:
        cur = repo.get_for_update(tx, principal.user_id, key)
        if cur is None or cur.id != up.id:
            raise NotFound(f"upload {key!r} was deleted or expired during its assembly")
        if _fingerprint(repo.list_parts(tx, up.id)) != seen:
            raise Conflict(f"the parts of upload {key!r} changed during its assembly; retry")
        return _detach(tx, up.id)

    return commit_version(core, op, dst, written, mtime=mtime,
                          content_type=content_type or mimetypes.guess_type(dst[-1])[0],
                          checksums=f"{expected[0]}:{expected[1]}" if expected else None, pre=pre, stage=stage)
