# SPDX-License-Identifier: EUPL-1.2
"""Packed manifests: a version's content as an ordered list of (chunk digest, length)."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable

from cartable.common.hashing import DIGEST_SIZE
from cartable.core.model import ManifestEntry

__all__ = ["pack", "unpack", "ref_counts"]

_ENTRY = struct.Struct(f">{DIGEST_SIZE}sQ")


def pack(entries: Iterable[ManifestEntry]) -> bytes:
    return b"".join(_ENTRY.pack(e.digest, e.length) for e in entries)


def unpack(blob: bytes) -> list[ManifestEntry]:
    if len(blob) % _ENTRY.size:
        raise ValueError(f"manifest of {len(blob)} bytes is not a whole number of entries")
    return [ManifestEntry(d, n) for d, n in _ENTRY.iter_unpack(blob)]


def ref_counts(blobs: Iterable[bytes]) -> Counter[bytes]:
    """How many times each chunk is referenced by these manifests."""
    counts: Counter[bytes] = Counter()
    for blob in blobs:
        for e in unpack(blob):
            counts[e.digest] += 1
    return counts
