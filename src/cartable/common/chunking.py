# SPDX-License-Identifier: EUPL-1.2
"""Content-defined chunking: part of the sync protocol, so its parameters are named once, here.

A client that chunks differently from the server turns every edit into a full upload, so the server
reports ``CHUNKER.describe()`` and clients must use the same algorithm and parameters.

Contract of ``StreamChunker``: whatever the sizes of the pieces given to ``feed``, the concatenation of
everything ``feed`` and ``finish`` return is byte-for-byte the list of chunks that
``pyfastcdc.FastCDC(...).cut_buf(whole_input)`` produces. Chunks are never empty; empty input gives no
chunk. Memory stays bounded by about ``2 * max_size`` plus the size of one ``feed`` call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import pyfastcdc

__all__ = ["CHUNKER", "ChunkerParams", "StreamChunker"]


@dataclass(frozen=True)
class ChunkerParams:
    """The algorithm and parameters of a content-defined chunker (all sizes in bytes)."""

    algorithm: str
    min_size: int
    avg_size: int
    max_size: int
    normalized: int
    seed: int

    def describe(self) -> dict[str, object]:
        """Return the parameters as a plain dict, as reported to sync clients."""
        return dataclasses.asdict(self)


# pyfastcdc's real average chunk size is about avg_size + min_size (cut-point skipping, FastCDC paper
# section 3.4), so these give chunks of about 2.25 MiB on average.
CHUNKER = ChunkerParams(
    "fastcdc2020",
    min_size=256 * 1024,
    avg_size=2 * 1024 * 1024,
    max_size=8 * 1024 * 1024,
    normalized=1,
    seed=0,
)


class StreamChunker:
    """Cut a stream into content-defined chunks incrementally. Not thread safe: one per stream."""

    def __init__(self, params: ChunkerParams = CHUNKER) -> None:
        if params.algorithm != "fastcdc2020":
            raise ValueError(f"unknown chunking algorithm {params.algorithm!r}; expected 'fastcdc2020'")
        self.params = params
        self._cdc = pyfastcdc.FastCDC(
            params.avg_size,
            min_size=params.min_size,
            max_size=params.max_size,
            normalized_chunking=cast(pyfastcdc.NormalizedChunking, params.normalized),
            seed=params.seed,
        )
        self._buf = bytearray()
        self._finished = False

    @property
    def pending(self) -> int:
        """Bytes received whose chunk boundaries are not final yet."""
        return len(self._buf)

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Add ``data``; return the chunks whose boundaries can no longer change (maybe none)."""
        if self._finished:
            raise RuntimeError("StreamChunker.feed() called after finish()")
        self._buf += data
        if len(self._buf) < 2 * self.params.max_size:
            return []
        return self._cut(final=False)

    def finish(self) -> list[bytes]:
        """Return the remaining chunks (an empty list when nothing remains)."""
        if self._finished:
            return []
        self._finished = True
        return self._cut(final=True)

    def _spans(self, *, final: bool) -> list[tuple[int, int]]:
        """Return (offset, length) of the chunks to emit now; holds no reference to the buffer after."""
        size = len(self._buf)
        max_size = self.params.max_size
        spans: list[tuple[int, int]] = []
        chunks = self._cdc.cut_buf(self._buf)
        try:
            for chunk in chunks:
                # A chunk is final only when the algorithm could have looked max_size past its start:
                # then the end of the buffer did not influence where it was cut.
                if not final and chunk.offset + max_size > size:
                    break
                spans.append((chunk.offset, chunk.length))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return spans

    def _cut(self, *, final: bool) -> list[bytes]:
        if not self._buf:
            return []
        spans = self._spans(final=final)
        with memoryview(self._buf) as view:
            out = [bytes(view[offset : offset + length]) for offset, length in spans]
        # Shrinking from the front is cheap for a bytearray, and needs every buffer export released.
        if spans:
            offset, length = spans[-1]
            del self._buf[: offset + length]
        return out
