# SPDX-License-Identifier: EUPL-1.2
"""Core behaviour on real SQLite and a real chunk folder: the tree, etags, sizes, the journal,
quotas, app passwords and credential caching."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from cartable.core import accounts, files, fsck, reads
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    Unauthenticated,
)
from cartable.core.preconditions import Preconditions
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.store.meta import journal
from tests.core.conftest import make_core, op_for


@pytest.fixture
def core(tmp_path: Path) -> Core:
    c = make_core(tmp_path)
    accounts.create_user(c, "alice", "alice-secret-pw")
    return c


def put(core: Core, op: Op, path: str, data: bytes, **kw: object) -> bool:
    up = Upload(core, op, tuple(path.split("/")), **kw)  # type: ignore[arg-type]
    up.write(data)
    return up.commit().created


def test_etag_and_size_propagate_to_every_ancestor(core: Core) -> None:
    op = op_for(core)
    files.mkdir(core, op, ("a",))
    files.mkdir(core, op, ("a", "b"))
    before = {p: files.stat(core, op.principal, p).etag for p in [(), ("a",), ("a", "b")]}
    put(core, op, "a/b/f.txt", b"x" * 10_000)
    for p, old in before.items():
        node = files.stat(core, op.principal, p)
        assert node.etag != old, p
        assert node.size == 10_000, p
    files.delete(core, op, ("a", "b", "f.txt"))
    assert files.stat(core, op.principal, ()).size == 0


def test_move_keeps_id_and_etag_and_updates_sizes(core: Core) -> None:
    op = op_for(core)
    files.mkdir(core, op, ("src",))
    files.mkdir(core, op, ("dst",))
    put(core, op, "src/f", b"y" * 5000)
    node = files.stat(core, op.principal, ("src", "f"))
    files.move(core, op, ("src", "f"), ("dst", "g"))
    moved = files.stat(core, op.principal, ("dst", "g"))
    assert (moved.id, moved.etag) == (node.id, node.etag)
    assert files.stat(core, op.principal, ("src",)).size == 0
    assert files.stat(core, op.principal, ("dst",)).size == 5000
    with pytest.raises(Forbidden):
        files.move(core, op, ("dst",), ("dst", "inside"))


def test_copy_gets_new_ids_and_shares_chunks(core: Core) -> None:
    op = op_for(core)
    data = random.Random(1).randbytes(3_000_000)
    put(core, op, "big", data)
    before = sorted(d for d, _ in core.blobs.iter_digests())
    files.copy(core, op, ("big",), ("big2",))
    assert sorted(d for d, _ in core.blobs.iter_digests()) == before
    a, b = files.stat(core, op.principal, ("big",)), files.stat(core, op.principal, ("big2",))
    assert a.id != b.id and a.etag != b.etag
    assert reads.open_content(core, op.principal, ("big2",)).read_all() == data
    files.delete(core, op, ("big",))
    assert reads.open_content(core, op.principal, ("big2",)).read_all() == data
    assert fsck.check(core, deep=True).ok


def test_preconditions_and_conflicts(core: Core) -> None:
    op = op_for(core)
    put(core, op, "f", b"1")
    etag = files.stat(core, op.principal, ("f",)).etag
    with pytest.raises(PreconditionFailed):
        put(core, op, "f", b"2", preconditions=Preconditions(if_match=["nope"]))
    with pytest.raises(PreconditionFailed):
        put(core, op, "f", b"2", preconditions=Preconditions(if_none_match=["*"]))
    assert put(core, op, "f", b"2", preconditions=Preconditions(if_match=[etag])) is False
    with pytest.raises(Conflict):
        put(core, op, "missing/f", b"x")
    files.mkdir(core, op, ("d",))
    with pytest.raises(AlreadyExists):
        files.mkdir(core, op, ("d",))
    with pytest.raises(Conflict):
        put(core, op, "d", b"a file over a folder")
    with pytest.raises(NotFound):
        files.stat(core, op.principal, ("f", "below-a-file"))


def test_checksum_mismatch_stores_nothing(core: Core) -> None:
    op = op_for(core)
    with pytest.raises(ChecksumMismatch):
        put(core, op, "c.txt", b"hello", checksum="SHA1:" + "0" * 40)
    with pytest.raises(NotFound):
        files.stat(core, op.principal, ("c.txt",))
    put(core, op, "c.txt", b"hello", checksum="SHA1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    assert files.stat(core, op.principal, ("c.txt",)).checksums == "SHA1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"


def test_journal_records_each_change_in_order(core: Core) -> None:
    op = Op(op_for(core).principal, device_id="laptop", op_id="op-1")
    with core.db.read() as tx:
        head = journal.head(tx)
    files.mkdir(core, op, ("j",))
    put(core, op, "j/f", b"data")
    put(core, op, "j/f", b"data2")
    files.move(core, op, ("j", "f"), ("j", "g"))
    files.delete(core, op, ("j",))
    with core.db.read() as tx:
        entries = journal.since(tx, op.principal.space_id, head, 100)
    assert [(e.op, e.name) for e in entries] == [
        ("create", "j"), ("create", "f"), ("modify", "f"), ("move", "g"), ("delete", "j")]
    assert all(e.device_id == "laptop" and e.op_id == "op-1" for e in entries)


def test_quota_holds_under_concurrent_writers(core: Core) -> None:
    accounts.set_quota(core, "alice", 1_000_000)
    op = op_for(core)
    results: list[str] = []

    def writer(i: int) -> None:
        try:
            put(core, op, f"q{i}", random.Random(i).randbytes(150_000))
            results.append("ok")
        except QuotaExceeded:
            results.append("quota")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 6 and results.count("quota") == 10
    assert files.usage(core, op.principal).used == 900_000
    assert fsck.check(core).ok


def test_quota_refused_up_front_when_length_is_known(core: Core) -> None:
    accounts.set_quota(core, "alice", 1000)
    with pytest.raises(QuotaExceeded):
        Upload(core, op_for(core), ("big",), length=5_000_000)  # before any byte is read


def test_password_change_drops_cached_credentials(core: Core, tmp_path: Path) -> None:
    server_side = Authenticator(core)
    server_side.authenticate("alice", "alice-secret-pw", "1.2.3.4")  # now cached
    admin_process = make_core(tmp_path)  # another process on the same data
    accounts.set_password(admin_process, "alice", "new-password-1")
    with pytest.raises(Unauthenticated):
        server_side.authenticate("alice", "alice-secret-pw", "1.2.3.4")
    assert server_side.authenticate("alice", "new-password-1", "1.2.3.4").name == "alice"
    accounts.set_disabled(admin_process, "alice", True)
    with pytest.raises(Unauthenticated):
        server_side.authenticate("alice", "new-password-1", "1.2.3.4")


def test_app_passwords_work_until_revoked(core: Core) -> None:
    auth = Authenticator(core)
    token = accounts.create_app_password(core, "alice", "laptop")
    p = auth.authenticate("alice", token, "1.2.3.4")
    assert p.app_password_id is not None
    (rec,) = accounts.list_app_passwords(core, "alice")
    accounts.revoke_app_password(core, "alice", rec.id)
    with pytest.raises(Unauthenticated):
        auth.authenticate("alice", token, "1.2.3.4")


def test_delete_user_releases_everything(core: Core) -> None:
    op = op_for(core)
    put(core, op, "big", random.Random(9).randbytes(1_000_000))
    accounts.delete_user(core, "alice")
    with pytest.raises(NotFound):
        accounts.get_user(core, "alice")
    report = fsck.check(core)
    assert report.ok and report.files == 0


def test_locking_again_leaves_no_expired_rows(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from cartable.core import locks
    from cartable.store.meta.schema import locks as locks_table
    from tests.core.conftest import FakeClock

    clock = FakeClock()
    core = make_core(tmp_path, clock)
    accounts.create_user(core, "alice", "alice-secret-pw")
    op = op_for(core)
    put(core, op, "f.txt", b"x")
    for _ in range(5):
        lock, created = locks.lock(core, op, ("f.txt",), exclusive=True, infinite=False, owner_xml="", timeout=10)
        assert not created
        clock.advance(11)  # the lock expires unreleased, as when a client crashes
    with core.db.read() as tx:
        rows = tx.execute(select(func.count()).select_from(locks_table)).scalar_one()
    assert rows == 1
    assert lock.token == tx_token(core)


def tx_token(core: Core) -> str:
    from sqlalchemy import select

    from cartable.store.meta.schema import locks as locks_table

    with core.db.read() as tx:
        return str(tx.execute(select(locks_table.c.token)).scalar_one())
