# SPDX-License-Identifier: EUPL-1.2
"""Assembly order, for each client's way of naming the parts of a chunked upload: twelve parts
sent in reverse order, each holding its own index, must assemble in the client's order. Where a
client's names have no padding (v2's documented 1..N; byte offsets of varying width), the text
order differs from the numeric one, and sorting the names as text is caught. The same table runs
through ``uploads.order_names`` alone and through HTTP."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from cartable.core.uploads import order_names
from tests.conftest import DAV

UP = "/remote.php/dav/uploads/alice"
PARTS = 12
PART = 700  # bytes; the last part of each client is shorter

Namer = Callable[[int, int, int], str]
# name(index from 0, byte offset, size)
NAMERS: dict[str, Namer] = {
    "nextcloudcmd (16-digit index)": lambda i, off, n: f"{i:016d}",
    "owncloudcmd (16-digit byte offset)": lambda i, off, n: f"{off:016d}",
    "byte offset, unpadded": lambda i, off, n: str(off),
    "v2 as documented (1..N)": lambda i, off, n: str(i + 1),
    "v2 padded (5 digits)": lambda i, off, n: f"{i + 1:05d}",
    "Android (6 digits)": lambda i, off, n: f"{i + 1:06d}",
    "rclone (start-end range)": lambda i, off, n: f"{off:015d}-{off + n - 1:012d}",
}


def parts() -> list[tuple[int, bytes]]:
    """(offset, bytes) of each part; each part starts with its index, then random bytes."""
    rng = random.Random(5)
    out, off = [], 0
    for i in range(PARTS):
        size = PART if i < PARTS - 1 else PART // 3
        body = f"[part {i:02d}]".encode() + rng.randbytes(size - 10)
        out.append((off, body))
        off += size
    return out


def names(namer: Namer) -> list[str]:
    return [namer(i, off, len(body)) for i, (off, body) in enumerate(parts())]


@pytest.mark.parametrize("client_name", list(NAMERS))
def test_order_names(client_name: str) -> None:
    expected = names(NAMERS[client_name])
    shuffled = expected[::-1]
    random.Random(1).shuffle(shuffled)
    assert order_names(shuffled) == expected
    assert order_names(expected[::-1]) == expected


def test_unpadded_names_are_where_text_order_is_wrong() -> None:
    """The table holds names whose text order is not the client's order (else it could not tell
    a numeric sort from a text sort)."""
    differs = [c for c, namer in NAMERS.items() if sorted(names(namer)) != names(namer)]
    assert differs == ["byte offset, unpadded", "v2 as documented (1..N)"]


@pytest.mark.parametrize("client_name", list(NAMERS))
def test_assembly_follows_the_clients_order(client: TestClient, client_name: str) -> None:
    namer = NAMERS[client_name]
    key = "order-test"
    assert client.request("MKCOL", f"{UP}/{key}").status_code == 201
    items = parts()
    for i in reversed(range(PARTS)):  # the worst arrival order
        off, body = items[i]
        r = client.put(f"{UP}/{key}/{namer(i, off, len(body))}", content=body)
        assert r.status_code == 201, r.text
    whole = b"".join(body for _, body in items)
    r = client.request("MOVE", f"{UP}/{key}/.file",
                       headers={"Destination": f"{DAV}/assembled.bin", "OC-Total-Length": str(len(whole))})
    assert r.status_code == 201, r.text
    got = client.get(f"{DAV}/assembled.bin").content
    order = [int(got[j + 6:j + 8]) for j in range(len(got)) if got.startswith(b"[part ", j)]
    assert order[:PARTS] == list(range(PARTS)), order
    assert got == whole
