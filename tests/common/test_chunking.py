# SPDX-License-Identifier: EUPL-1.2
"""StreamChunker must cut exactly as pyfastcdc cuts the whole input, whatever the feed sizes."""

from __future__ import annotations

import random

import pyfastcdc
import pytest

from cartable.common.chunking import CHUNKER, ChunkerParams, StreamChunker

MiB = 1024 * 1024

# The smallest sizes pyfastcdc accepts: many boundaries per KiB, so many cases run fast.
SMALL = ChunkerParams("fastcdc2020", min_size=64, avg_size=256, max_size=1024, normalized=1, seed=0)


def reference(data: bytes, params: ChunkerParams) -> list[bytes]:
    cdc = pyfastcdc.FastCDC(
        params.avg_size,
        min_size=params.min_size,
        max_size=params.max_size,
        normalized_chunking=params.normalized,  # type: ignore[arg-type]
        seed=params.seed,
    )
    return [bytes(c.data) for c in cdc.cut_buf(data)]


def make_data(rng: random.Random, size: int) -> bytes:
    """Random bytes with runs of zeros and repeated blocks, so both cut styles (hash and max) occur."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        n = min(left, rng.randint(1, max(1, size // 3)))
        kind = rng.random()
        if kind < 0.6:
            parts.append(rng.randbytes(n))
        elif kind < 0.8:
            parts.append(bytes(n))
        else:
            block = rng.randbytes(rng.randint(1, 4096))
            parts.append((block * (n // len(block) + 1))[:n])
        left -= n
    return b"".join(parts)


def stream(data: bytes, params: ChunkerParams, splits: list[int]) -> list[bytes]:
    chunker = StreamChunker(params)
    out: list[bytes] = []
    pos = 0
    view = memoryview(data)
    for n in splits:
        out += chunker.feed(view[pos : pos + n])
        pos += n
        assert chunker.pending < 2 * params.max_size + n
    assert pos == len(data)
    out += chunker.finish()
    return out


def random_splits(rng: random.Random, size: int, max_piece: int) -> list[int]:
    splits: list[int] = []
    left = size
    while left > 0:
        n = 0 if rng.random() < 0.05 else min(left, rng.randint(1, max_piece))
        splits.append(n)
        left -= n
    return splits


def check(data: bytes, params: ChunkerParams, splits: list[int]) -> None:
    got = stream(data, params, splits)
    assert all(got), "empty chunk emitted"
    assert all(len(c) <= params.max_size for c in got)
    expected = reference(data, params)
    assert [len(c) for c in got] == [len(c) for c in expected]
    assert got == expected


@pytest.mark.parametrize("seed", range(300))
def test_small_params_match_whole_input(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([0, 1, 63, 64, 1023, 1024, 2047, 2048, 2049, rng.randint(0, 40_000)])
    data = make_data(rng, size)
    max_piece = rng.choice([1, 7, 100, 1024, 3000, 50_000])
    check(data, SMALL, random_splits(rng, size, max_piece))


@pytest.mark.parametrize("seed", range(20))
def test_real_params_match_whole_input(seed: int) -> None:
    rng = random.Random(1000 + seed)
    size = rng.randint(0, 30 * MiB) if seed else 30 * MiB
    data = make_data(rng, size)
    check(data, CHUNKER, random_splits(rng, size, rng.choice([64 * 1024, MiB, 5 * MiB, 20 * MiB])))


@pytest.mark.parametrize(
    "size", [0, 1, CHUNKER.max_size, 2 * CHUNKER.max_size - 1, 2 * CHUNKER.max_size, 2 * CHUNKER.max_size + 1]
)
def test_boundary_sizes_of_zeros(size: int) -> None:
    # Zeros never match the hash: every chunk is cut at exactly max_size, the edge case of finality.
    data = bytes(size)
    check(data, CHUNKER, random_splits(random.Random(size), size, 3 * MiB))
    check(data, CHUNKER, [size])


def test_whole_input_in_one_feed_matches() -> None:
    data = random.Random(7).randbytes(20 * MiB)
    check(data, CHUNKER, [len(data)])


def test_memory_stays_bounded() -> None:
    rng = random.Random(3)
    chunker = StreamChunker(CHUNKER)
    total = 0
    piece = rng.randbytes(MiB)
    for _ in range(48):
        total += sum(len(c) for c in chunker.feed(piece))
        assert chunker.pending < 2 * CHUNKER.max_size
    total += sum(len(c) for c in chunker.finish())
    assert total == 48 * MiB


def test_empty_input_gives_no_chunk_and_finish_is_final() -> None:
    chunker = StreamChunker()
    assert chunker.feed(b"") == []
    assert chunker.finish() == []
    assert chunker.finish() == []
    with pytest.raises(RuntimeError):
        chunker.feed(b"x")


def test_describe_names_the_protocol_parameters() -> None:
    assert CHUNKER.describe() == {
        "algorithm": "fastcdc2020",
        "min_size": 256 * 1024,
        "avg_size": 2 * MiB,
        "max_size": 8 * MiB,
        "normalized": 1,
        "seed": 0,
    }


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError):
        StreamChunker(ChunkerParams("rabin", 1, 2, 3, 0, 0))
