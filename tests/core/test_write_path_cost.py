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
    # On PostgreSQL, commit_version first reads whether the file exists, to choose the space lock
    # (shared for a new file, exclusive for an overwrite); on SQLite writers take turns anyway.
    look = Counter() if core.db.is_sqlite else Counter(read=1)
    calls.clear()
    _put(core, op, "tiny.txt", tiny)
    assert calls == Counter(write=1) + look  # inline: the commit alone
    assert list(core.blobs.iter_digests()) == []
    data = random.Random(40).randbytes(200_000)  # one chunk, no pre-check below 256 KiB
    calls.clear()
    _put(core, op, "new.bin", data)
    assert calls == Counter(write=2, put_many=1) + look  # claim, bytes, commit
    calls.clear()
    _put(core, op, "copy.bin", data)
    assert calls == Counter(write=2) + look  # look-up (nothing to claim: the chunk is referenced), commit
    for name, body in (("tiny.txt", tiny), ("new.bin", data), ("copy.bin", data)):
        assert reads.open_content(core, op.principal, (name,)).read_all() == body


def test_a_bulk_batch_is_one_commit_with_one_result_per_file(counted: tuple[Core, Counter[str]]) -> None:
    """commit_versions: many files, one write transaction; refused files (missing folder, a name the
    policy refuses, over quota, a folder in the way) change nothing and do not stop the others; the
    same path twice lands in order; the parent's etag and size move once for all."""
    from cartable.core import files
    from cartable.core.bulk import _Item, _prepare
    from cartable.core.errors import Conflict, InvalidName, QuotaExceeded
    from cartable.core.writes import commit_versions
    from cartable.store.meta import journal

    core, calls = counted
    op = op_for(core)
    files.mkdir(core, op, ("d",))
    files.mkdir(core, op, ("d", "sub"))
    accounts.set_quota(core, "alice", 10_000)
    before = files.stat(core, op.principal, ("d",))
    big = random.Random(41).randbytes(20_000)  # chunked (over inline_max), and over the quota
    items = [_prepare(core, _Item(parts, body, 1_700_000_000.0, None)) for parts, body in [
        (("d", "a.txt"), b"first a"),
        (("nope", "b.txt"), b"no folder"),
        (("d", ".htaccess"), b"refused name"),
        (("d", "big.bin"), big),
        (("d", "sub"), b"a folder is there"),
        (("d", "a.txt"), b"second a"),
        (("d", "c.txt"), b"c" * 9000),  # chunked too, and fits
    ]]
    with core.db.read() as tx:
        head = journal.head(tx)
    calls.clear()
    results = commit_versions(core, op, items)
    assert calls == {"write": 1}
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["WriteResult", "Conflict", "InvalidName", "QuotaExceeded", "Conflict", "WriteResult",
                     "WriteResult"], kinds
    assert isinstance(results[1], Conflict) and isinstance(results[2], InvalidName)
    assert isinstance(results[3], QuotaExceeded)
    assert results[0].created and not results[5].created  # type: ignore[union-attr]
    assert results[0].node.id == results[5].node.id  # type: ignore[union-attr]
    read = lambda name: reads.open_content(core, op.principal, ("d", name)).read_all()  # noqa: E731
    assert read("a.txt") == b"second a" and read("c.txt") == b"c" * 9000
    for gone in (("d", "big.bin"), ("d", ".htaccess")):
        with pytest.raises(Exception):
            files.stat(core, op.principal, gone)
    after = files.stat(core, op.principal, ("d",))
    assert after.etag != before.etag and after.size == len(b"second a") + 9000
    assert files.usage(core, op.principal).used == after.size
    with core.db.read() as tx:
        entries = [(c.op, c.name) for c in journal.since(tx, op.principal.space_id, head, 100)]
    assert entries == [("create", "a.txt"), ("modify", "a.txt"), ("create", "c.txt")]
    from cartable.core import fsck

    report = fsck.check(core, deep=True)
    assert report.ok, report.problems
