# SPDX-License-Identifier: EUPL-1.2
"""A row that should exist and does not is an error, never an empty answer (issue 10 (v)); and
what the GC reports and purges besides chunks."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cartable.cli.admin import admin_app
from cartable.core import accounts, files, fsck, gc, locks, reads
from cartable.core.context import Core
from cartable.core.errors import DataMissing
from cartable.server import open_core
from cartable.store.meta.schema import locks as locks_table
from cartable.store.meta.schema import nodes, versions
from tests.backend import environ_for
from tests.conftest import DAV, PASSWORD, make_settings
from tests.core.conftest import FakeClock, delete_for_good, op_for
from tests.core.test_gc_race import put

LOCKINFO = (b'<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:">'
            b"<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
            b"<d:owner>test</d:owner></d:lockinfo>")


def _drop_version_row(core: Core, name: str) -> int:
    node = files.stat(core, op_for(core).principal, (name,))
    assert node.version_id is not None
    with core.db.write() as tx:
        tx.execute(delete(versions).where(versions.c.id == node.version_id))
    return node.id


@pytest.mark.parametrize("size", [100, 300_000], ids=["inline", "chunked"])
def test_a_missing_version_is_a_500_and_fsck_reports_it(core: Core, client: TestClient, size: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    data = random.Random(30).randbytes(size)
    assert client.put(f"{DAV}/f.bin", content=data).status_code == 201
    node_id = _drop_version_row(core, "f.bin")
    with caplog.at_level(logging.ERROR, logger="cartable.core"):
        r = client.get(f"{DAV}/f.bin")
        assert r.status_code == 500 and r.content != b""
        assert "missing from the metadata database" in r.text
        assert client.head(f"{DAV}/f.bin").status_code == 500
    assert any(rec.name == "cartable.core" and f"file {node_id}" in rec.getMessage() for rec in caplog.records)
    with pytest.raises(DataMissing):
        reads.open_content(core, op_for(core).principal, ("f.bin",))
    report = fsck.check(core)
    assert not report.ok
    assert any(f"file {node_id} ('f.bin') points at a missing or foreign version" in p for p in report.problems)


def test_a_version_of_another_file_is_a_500(core: Core, client: TestClient) -> None:
    for name in ("a.txt", "b.txt"):
        assert client.put(f"{DAV}/{name}", content=name.encode() * 10).status_code == 201
    op = op_for(core)
    a, b = (files.stat(core, op.principal, (n,)) for n in ("a.txt", "b.txt"))
    with core.db.write() as tx:
        tx.execute(update(nodes).where(nodes.c.id == a.id).values(version_id=b.version_id))
    assert client.get(f"{DAV}/a.txt").status_code == 500
    assert any("points at a missing or foreign version" in p for p in fsck.check(core).problems)


def test_a_file_without_any_version_is_legitimately_empty(core: Core, client: TestClient) -> None:
    """LOCK on an unmapped URL makes a file with no version (version_id NULL): it is empty."""
    assert client.request("LOCK", f"{DAV}/new.txt", content=LOCKINFO).status_code == 201
    r = client.get(f"{DAV}/new.txt")
    assert r.status_code == 200 and r.content == b""
    assert fsck.check(core).ok


def test_gc_reports_what_waits_out_the_grace_period(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    data = random.Random(31).randbytes(700_000)
    put(small_core, op, ("a.bin",), data)
    delete_for_good(small_core, op, ("a.bin",))
    released_at = clock.now
    clock.advance(600)
    stats = gc.collect(small_core)
    assert (stats.chunks_deleted, stats.chunks_waiting) == (0, 1)
    assert stats.bytes_waiting == len(data) + 1  # stored raw, with its header byte
    assert stats.next_collectible_at == released_at + small_core.limits.gc_grace_seconds
    clock.advance(small_core.limits.gc_grace_seconds)
    stats = gc.collect(small_core)
    assert (stats.chunks_deleted, stats.chunks_waiting, stats.next_collectible_at) == (1, 0, None)


def test_gc_purges_expired_lock_rows(small_core: Core, clock: FakeClock) -> None:
    op = op_for(small_core)
    put(small_core, op, ("a.txt",), b"locked")
    locks.lock(small_core, op, ("a.txt",), exclusive=True, infinite=False, owner_xml="", timeout=60)
    assert gc.collect(small_core).locks_purged == 0
    clock.advance(61)
    assert gc.collect(small_core).locks_purged == 1
    with small_core.db.read() as tx:
        assert tx.execute(locks_table.select()).first() is None


def test_admin_gc_says_what_is_waiting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    core = open_core(make_settings(data_dir))
    accounts.create_user(core, "alice", PASSWORD)
    op = op_for(core)
    put(core, op, ("a.bin",), random.Random(32).randbytes(2_500_000))
    delete_for_good(core, op, ("a.bin",))
    core.db.dispose()
    r = CliRunner().invoke(admin_app, ["gc", "--grace", "3600", "--data", str(data_dir)],
                           env=environ_for(data_dir))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == ("deleted 0 chunks, 0 orphan blobs, 0 temporary files; released 0 abandoned uploads "
                        "and 0 expired locks; purged 0 trash items and 0 old versions for their age")
    assert re.fullmatch(r"\d+ chunks \(\d+\.\d MB\) are waiting out the grace period; the first can be "
                        r"collected at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[1]), lines[1]
    r = CliRunner().invoke(admin_app, ["gc", "--data", str(tmp_path / "empty")],
                           env=environ_for(tmp_path / "empty"))
    assert r.exit_code == 0 and r.output.splitlines()[1] == "no chunk is waiting out the grace period"
