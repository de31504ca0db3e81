# SPDX-License-Identifier: EUPL-1.2
"""The trash and versions on PostgreSQL: the same statements (the recursive queries over the
trash, the old-versions joins, the counters) on the engine of the scale-out deployment."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.core import accounts, files, fsck, gc, reads, search, trash, versions
from cartable.core.context import Core, Limits
from cartable.core.writes import Upload
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta.engine import MetaDB
from cartable.store.meta.migrate import upgrade
from tests.core.conftest import FakeClock, op_for
from tests.engines import drop_database, engine, new_database

pytestmark = pytest.mark.pg


@pytest.fixture
def pg_core(tmp_path: Path) -> Iterator[Core]:
    pg = engine("postgres")
    url = new_database(pg)
    db = MetaDB(url)
    upgrade(db)
    core = Core(db, LocalChunkStore(tmp_path / "chunks"), Limits(gc_grace_seconds=3600.0), clock=FakeClock())
    accounts.create_user(core, "alice", "alice-secret-pw")
    yield core
    db.dispose()
    drop_database(pg, url)


def test_trash_and_versions_on_postgresql(pg_core: Core) -> None:
    core, op = pg_core, op_for(pg_core)
    clock: FakeClock = core.clock  # type: ignore[assignment]

    def put(parts: tuple[str, ...], data: bytes) -> None:
        up = Upload(core, op, parts, length=len(data))
        up.write(data)
        up.commit()

    big = random.Random(1).randbytes(300_000)
    files.mkdir(core, op, ("d",))
    put(("d", "needle.bin"), big)
    put(("d", "needle.bin"), b"small")
    put(("keep.txt",), b"k")
    files.delete(core, op, ("d",))
    assert search.search(core, op.principal, (), where=search.Compare("name", "like", "needle%")) == []
    (item,) = trash.items(core, op.principal)
    _node, path = trash.restore(core, op, item.name)
    assert path == ("d",)
    fid = files.stat(core, op.principal, ("d", "needle.bin")).id
    _node, old = versions.listing(core, op.principal, fid)
    versions.restore(core, op, fid, old[0].id)
    assert reads.open_content(core, op.principal, ("d", "needle.bin")).read_all() == big
    assert len(search.search(core, op.principal, (), where=search.Compare("name", "like", "needle%"))) == 1
    files.delete(core, op, ("d",))
    clock.advance(31 * 86400)
    stats = gc.collect(core)
    assert stats.trash_expired == 1 and trash.items(core, op.principal) == []
    report = fsck.check(core)
    assert report.ok, report.problems
