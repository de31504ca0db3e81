# SPDX-License-Identifier: EUPL-1.2
"""What a PUT costs in transactions and chunk-store calls: the claim that protects new chunks from
the GC is one write transaction per batch, tiny files stay inline with no chunk-store work, and
reusing chunks that are referenced writes no chunk."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cartable.core import accounts, reads
from cartable.core.context import Core
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.store.meta.engine import Tx
from tests.core.conftest import make_core, op_for


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[Core, Counter[str]]]:
    core = make_core(tmp_path)
    accounts.create_user(core, "alice", "alice-secret-pw")
    calls: Counter[str] = Counter()
    real_write, real_read, real_put = core.db.write, core.db.read, core.blobs.put_many

    @contextmanager
    def write() -> Iterator[Tx]:
        calls["write"] += 1
        with real_write() as tx:
            yield tx

    @contextmanager
    def read(**kw: bool) -> Iterator[Tx]:
        calls["read"] += 1
        with real_read(**kw) as tx:
            yield tx

    def put_many(items):  # type: ignore[no-untyped-def]
        calls["put_many"] += 1
        return real_put(items)

    core.db.write = write  # type: ignore[method-assign]
    core.db.read = read  # type: ignore[method-assign]
    core.blobs.put_many = put_many  # type: ignore[method-assign]
    yield core, calls
    core.db.dispose()


def _put(core: Core, op: Op, name: str, data: bytes) -> None:
    up = Upload(core, op, (name,), length=len(data))
    up.write(data)
    up.commit()


def test_cost_of_a_put(counted: tuple[Core, Counter[str]]) -> None:
    core, calls = counted
    op = op_for(core)  # authenticated outside the counts
    tiny = b"x" * 4096
    calls.clear()
    _put(core, op, "tiny.txt", tiny)
    assert calls == {"write": 1}  # inline: the commit alone
    assert list(core.blobs.iter_digests()) == []
    data = random.Random(40).randbytes(200_000)  # one chunk, no pre-check below 256 KiB
    calls.clear()
    _put(core, op, "new.bin", data)
    assert calls == {"write": 2, "put_many": 1}  # claim, bytes, commit
    calls.clear()
    _put(core, op, "copy.bin", data)
    assert calls == {"write": 2}  # look-up (nothing to claim: the chunk is referenced), commit
    for name, body in (("tiny.txt", tiny), ("new.bin", data), ("copy.bin", data)):
        assert reads.open_content(core, op.principal, (name,)).read_all() == body
