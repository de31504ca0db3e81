# SPDX-License-Identifier: EUPL-1.2
"""Framing of stored chunk objects: one header byte, then the payload.

Header 0: the payload is the raw chunk. Header 1: the payload is one zstd frame (with content size).

``encode`` compresses only when a quick sample says it helps: zstd is the slowest step of ingest, and
most office files, PDFs, images and videos are already compressed. It keeps the compressed form only if
it is actually smaller. ``decode`` returns the raw bytes; it raises ValueError on an unknown header or a
damaged payload. Both are thread safe (zstd contexts are per thread: they are not thread safe).
"""

from __future__ import annotations

import threading

import zstandard

__all__ = [
    "encode_parts","RAW", "ZSTD", "decode", "encode"]

RAW = 0
ZSTD = 1

_SAMPLE_SIZE = 64 * 1024
_SAMPLE_LEVEL = 1
_LEVEL = 3
# Compress the whole chunk only when the sample shrinks below this fraction of its size.
_WORTHWHILE_RATIO = 0.9

# A damaged frame header could announce a huge size; no chunk is near this (max chunk is 8 MiB).
_MAX_DECODED = 256 * 1024 * 1024

_RAW_HEADER = bytes((RAW,))
_ZSTD_HEADER = bytes((ZSTD,))


class _Contexts(threading.local):
    def __init__(self) -> None:
        self.sampler = zstandard.ZstdCompressor(level=_SAMPLE_LEVEL)
        self.compressor = zstandard.ZstdCompressor(level=_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_contexts = _Contexts()


def encode_parts(data: bytes | memoryview) -> tuple[bytes, bytes | memoryview]:
    """(header, payload) of the stored form, without joining them: a big raw chunk is then
    written without one more copy of its bytes (os.writev)."""
    if len(data) == 0:
        return _RAW_HEADER, b""
    ctx = _contexts
    sample = data[:_SAMPLE_SIZE]
    if len(ctx.sampler.compress(sample)) < _WORTHWHILE_RATIO * len(sample):
        compressed = ctx.compressor.compress(data)
        if len(compressed) < len(data):
            return _ZSTD_HEADER, compressed
    return _RAW_HEADER, data


def encode(data: bytes | memoryview) -> bytes:
    """Frame a raw chunk for storage, compressed when worthwhile."""
    if len(data) == 0:
        return _RAW_HEADER
    ctx = _contexts
    sample = data[:_SAMPLE_SIZE]
    if len(ctx.sampler.compress(sample)) < _WORTHWHILE_RATIO * len(sample):
        compressed = ctx.compressor.compress(data)
        if len(compressed) < len(data):
            return _ZSTD_HEADER + compressed
    return _RAW_HEADER + data


def decode(blob: bytes) -> bytes:
    """Return the raw chunk held by a stored object."""
    if not blob:
        raise ValueError("stored chunk object is empty (no header byte)")
    header = blob[0]
    if header == RAW:
        return blob[1:]
    if header == ZSTD:
        payload = memoryview(blob)[1:]
        try:
            size = zstandard.frame_content_size(payload)
            if not 0 <= size <= _MAX_DECODED:
                raise ValueError(f"stored chunk object announces an implausible size ({size} bytes)")
            return _contexts.decompressor.decompress(payload)
        except zstandard.ZstdError as exc:
            raise ValueError(f"stored chunk object has a damaged zstd payload: {exc}") from None
    raise ValueError(f"stored chunk object has an unknown header byte {header}")
