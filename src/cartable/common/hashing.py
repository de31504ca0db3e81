# SPDX-License-Identifier: EUPL-1.2
"""Content digests and entity tags.

Contract:
- A chunk digest is BLAKE3-256 of the chunk's raw (uncompressed) bytes: ``DIGEST_SIZE`` bytes.
- Its text form is exactly 64 lowercase hex characters (``digest_hex``); ``digest_from_hex`` accepts
  only that form and raises ValueError otherwise, so one digest has one file name and one key.
- ``new_etag`` returns 20 random lowercase hex characters, without quotes (HTTP adds them).
"""

from __future__ import annotations

import re
import secrets

import blake3

__all__ = ["DIGEST_SIZE", "chunk_digest", "digest_from_hex", "digest_hex", "new_etag"]

DIGEST_SIZE = 32

# Below this size, spawning hashing threads costs more than it saves.
_MULTITHREAD_MIN = 1024 * 1024

_HEX_RE = re.compile(r"[0-9a-f]{%d}" % (2 * DIGEST_SIZE))


def chunk_digest(data: bytes | memoryview) -> bytes:
    """Return the BLAKE3-256 digest of ``data``."""
    if len(data) > _MULTITHREAD_MIN:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    return blake3.blake3(data).digest()


def digest_hex(d: bytes) -> str:
    """Return the canonical text form (lowercase hex) of a digest."""
    return d.hex()


def digest_from_hex(s: str) -> bytes:
    """Parse the canonical text form of a digest; raise ValueError on anything else."""
    if not isinstance(s, str) or _HEX_RE.fullmatch(s) is None:
        raise ValueError(f"not a digest: {s!r:.80} (expected {2 * DIGEST_SIZE} lowercase hex characters)")
    return bytes.fromhex(s)


def new_etag() -> str:
    """Return a fresh random entity tag: 20 lowercase hex characters, no quotes."""
    return secrets.token_hex(10)
