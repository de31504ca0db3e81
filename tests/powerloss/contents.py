# SPDX-License-Identifier: EUPL-1.2
"""Small contents with known chunk boundaries.

FastCDC never cuts before 256 KiB, so a file of several chunks is normally several MiB. These
are slices of one seeded random stream that the chunker cuts into three small chunks (found once
by chunking 128 MiB of it and keeping the three consecutive chunks of least total size), plus a
4 KiB tail: its first bytes decide where the third chunk ends, so it must follow it as it did in
the stream."""

from __future__ import annotations

import random
from functools import lru_cache

from cartable.common.chunking import StreamChunker

_SEED, _OFFSET, _LENGTHS, _TAIL = 2, 9_790_801, (726_317, 362_853, 292_459), 4096


def chunks_of(data: bytes) -> list[bytes]:
    c = StreamChunker()
    return [*c.feed(data), *c.finish()]


@lru_cache(maxsize=None)
def multi() -> bytes:
    """About 1.3 MiB cut into four chunks: 709 KiB, 354 KiB, 286 KiB, 4 KiB."""
    stream = random.Random(_SEED).randbytes(_OFFSET + sum(_LENGTHS) + _TAIL)
    data = stream[_OFFSET:]
    assert [len(c) for c in chunks_of(data)] == [*_LENGTHS, _TAIL], "the chunker's cut points moved"
    return data


def multi_edited() -> bytes:
    """``multi`` with its end replaced: an overwrite that reuses its first two chunks (the new
    part starts a few bytes after the second one: they decide where it ends)."""
    data = multi()
    head = data[:_LENGTHS[0] + _LENGTHS[1] + 64]
    edited = head + random.Random(99).randbytes(20_000)
    assert chunks_of(edited)[:2] == chunks_of(data)[:2], "the chunker's cut points moved"
    return edited


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)
