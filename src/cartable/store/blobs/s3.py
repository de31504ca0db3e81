# SPDX-License-Identifier: EUPL-1.2
"""A chunk store over an S3-compatible object store (Ceph RGW, Swift s3api, MinIO, Garage...).

Layout: the chunk with digest ``h`` (lowercase hex) is the object ``PREFIX + h[:3] + "/" + h`` of the
bucket, framed by ``codec``. Keys sort like digests, so a walk of the bucket in key order is a walk in
digest order and can resume after any digest (``iter_digests(after=...)``); the 4,096 three-character
prefixes let a sweep go prefix by prefix. Nothing lists the bucket on the write or read path.

The client is obstore (Rust's object_store): it measured 2-7x less client CPU per request than boto3
on Ceph RGW (bench/s3_clients.py) and releases the GIL during I/O. Timeouts and retries with
exponential backoff come from its configuration.

- ``put_many`` writes each chunk with a conditional create (``If-None-Match: *``) so an object that
  is there is never replaced; a store that refuses conditional writes (Swift's s3api answers 501)
  gets a HEAD, then a plain PUT when the object is missing (S3 writes are atomic and the bytes are
  identical, so even a race between two writers of one digest leaves a whole, correct object). A
  2xx from S3 means the object is durable: nothing more to sync.
- ``get`` re-hashes every chunk it reads (BLAKE3, several GB/s) and raises ``ChunkCorrupt`` on a
  mismatch: an object store is remote, and a wrong byte must never reach a client silently.
Implements ``ChunkStore``; thread safe (obstore's client is).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import obstore
from obstore import exceptions as obx
from obstore.store import S3Store

from cartable.common.hashing import DIGEST_SIZE, chunk_digest, digest_from_hex, digest_hex
from cartable.store.blobs import codec
from cartable.store.blobs.base import ChunkCorrupt, ChunkMissing, StoreUnavailable

__all__ = ["S3Config", "S3ChunkStore"]

# Parallel requests of one put_many/delete batch: S3 latency is per request, not per byte.
_PARALLEL = 16
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
# obstore raises its NotFoundError from some calls and Python's FileNotFoundError from others
# (head, get); every other failure is one of its errors or an OSError.
_MISSING = (obx.NotFoundError, FileNotFoundError)
_FAILED = (obx.BaseError, OSError)


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = "chunks/"
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 5.0
    max_retries: int = 5
    retry_timeout_seconds: float = 120.0


def _check_digest(digest: bytes) -> str:
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise ValueError(f"a chunk digest is {DIGEST_SIZE} bytes, got {digest!r:.80}")
    return digest_hex(digest)


class S3ChunkStore:
    """Content-addressed chunks in one bucket of an S3-compatible store."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.prefix = config.prefix
        self._store = S3Store(
            config.bucket, endpoint=config.endpoint, access_key_id=config.access_key,
            secret_access_key=config.secret_key, region=config.region,
            virtual_hosted_style_request=False,
            client_options={"allow_http": config.endpoint.startswith("http://"),
                            "timeout": timedelta(seconds=config.timeout_seconds),
                            "connect_timeout": timedelta(seconds=config.connect_timeout_seconds)},
            retry_config={"max_retries": config.max_retries,
                          "retry_timeout": timedelta(seconds=config.retry_timeout_seconds),
                          "backoff": {"init_backoff": timedelta(milliseconds=100),
                                      "max_backoff": timedelta(seconds=10), "base": 2}},
        )
        self._conditional = True  # flipped off once the store answers "not implemented"
        self._pool = ThreadPoolExecutor(_PARALLEL, thread_name_prefix="cartable-s3")

    # -- keys ---------------------------------------------------------------------------------
    def _key(self, digest: bytes) -> str:
        h = _check_digest(digest)
        return f"{self.prefix}{h[:3]}/{h}"

    def _where(self) -> str:
        return f"s3 bucket {self.config.bucket!r} at {self.config.endpoint}"

    def _unavailable(self, action: str, exc: BaseException) -> StoreUnavailable:
        # One line (the start-up check's error is the operator's one line): obstore's text goes on
        # with a multi-line "Debug source" dump.
        first = (str(exc).splitlines() or [""])[0]
        return StoreUnavailable(f"cannot {action} in {self._where()}: {type(exc).__name__}: {first}"[:600])

    # -- the contract -------------------------------------------------------------------------
    def check(self) -> None:
        """Raise StoreUnavailable with one clear line when the bucket cannot be reached or used."""
        try:
            list(obstore.list(self._store, prefix=self.prefix, chunk_size=1).collect())
        except _FAILED as exc:
            raise self._unavailable("list", exc) from None

    def put_many(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> list[int]:
        return list(self._pool.map(lambda item: self._put_one(*item), items))

    def _put_one(self, digest: bytes, data: bytes | memoryview) -> int:
        key = self._key(digest)
        header, payload = codec.encode_parts(data)
        blob = header + bytes(payload)
        try:
            if self._conditional:
                try:
                    obstore.put(self._store, key, blob, mode="create")
                    return len(blob)
                except (obx.AlreadyExistsError, FileExistsError):
                    return self._size(key)  # present: never replaced; report what is stored
                except obx.NotSupportedError:
                    self._conditional = False
                except obx.GenericError as exc:
                    if "501" not in str(exc) and "NotImplemented" not in str(exc):
                        raise
                    self._conditional = False
            try:
                return self._size(key)
            except _MISSING:
                obstore.put(self._store, key, blob)
                return len(blob)
        except _FAILED as exc:
            raise self._unavailable(f"write chunk {digest_hex(digest)}", exc) from None

    def _size(self, key: str) -> int:
        return int(obstore.head(self._store, key)["size"])

    def get_view(self, digest: bytes) -> bytes:
        return self.get(digest)

    def get(self, digest: bytes) -> bytes:
        key = self._key(digest)
        try:
            blob = bytes(obstore.get(self._store, key).bytes())
        except _MISSING:
            raise ChunkMissing(digest) from None
        except _FAILED as exc:
            raise self._unavailable(f"read chunk {digest_hex(digest)}", exc) from None
        data = codec.decode(blob)
        if chunk_digest(data) != digest:
            raise ChunkCorrupt(digest)
        return data

    def get_range(self, digest: bytes, start: int, end: int) -> bytes:
        # The whole object, so that its digest is checked: a slice alone cannot be verified, and
        # chunks are at most a few MiB.
        return self.get(digest)[start:end]

    def has(self, digest: bytes) -> bool:
        try:
            obstore.head(self._store, self._key(digest))
            return True
        except _MISSING:
            return False
        except _FAILED as exc:
            raise self._unavailable(f"look up chunk {digest_hex(digest)}", exc) from None

    def delete(self, digest: bytes) -> None:
        self.delete_many([digest])

    def delete_many(self, digests: Sequence[bytes]) -> None:
        keys = [self._key(d) for d in digests]
        try:
            for i in range(0, len(keys), _DELETE_BATCH):
                obstore.delete(self._store, keys[i:i + _DELETE_BATCH])
        except _MISSING:
            pass
        except _FAILED as exc:
            raise self._unavailable("delete chunks", exc) from None

    def iter_digests(self, after: bytes | None = None) -> Iterator[tuple[bytes, float]]:
        offset = self._key(after) if after is not None else None
        try:
            stream = obstore.list(self._store, prefix=self.prefix, offset=offset, chunk_size=1000)
            for batch in stream:
                for meta in batch:
                    digest = _digest_of(meta, self.prefix)
                    if digest is not None:
                        yield digest, meta["last_modified"].timestamp()
        except _FAILED as exc:
            raise self._unavailable("list chunks", exc) from None

    def verify(self, digest: bytes) -> bool:
        try:
            self.get(digest)
        except (ChunkMissing, ChunkCorrupt, ValueError):
            return False
        return True

    def cleanup_temps(self, older_than_seconds: float) -> int:
        return 0  # chunks are single PUTs: no temporary objects, no multipart uploads


def _digest_of(meta: Any, prefix: str) -> bytes | None:
    path: str = meta["path"]
    if not path.startswith(prefix):
        return None
    try:
        return digest_from_hex(path.rsplit("/", 1)[-1])
    except ValueError:
        return None  # a foreign object in the bucket
