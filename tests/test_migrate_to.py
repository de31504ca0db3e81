# SPDX-License-Identifier: EUPL-1.2
"""`cartable admin migrate-to`: an embedded instance (SQLite + folder) moved to PostgreSQL + Ceph RGW
while stopped, every file verified, ids and etags kept, resumable after an interruption."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from cartable.config import load_settings
from cartable.core import accounts, favorites, files, fsck, reads, transfer
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Conflict, StorageUnavailable
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.server import open_core
from cartable.store.blobs.base import StoreUnavailable
from cartable.store.meta import journal
from tests.conftest import cartable_exe
from tests.engines import engine, new_bucket, new_database

# It moves an embedded instance (SQLite + folder) to engines it starts itself: once is enough
# (tests/backend.py: local_only).
pytestmark = [pytest.mark.pg, pytest.mark.s3, pytest.mark.local_only]

PW = {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}


def _target_toml(path: Path, data: Path) -> Path:
    pg, ceph = engine("postgres"), engine("ceph")
    env = ceph.env
    path.write_text(f'''data = "{data}"
database_url = "{new_database(pg)}"
blob_store = "s3"
s3_endpoint = "{env['S3_ENDPOINT_URL']}"
s3_bucket = "{new_bucket(ceph)}"
s3_access_key = "{env['AWS_ACCESS_KEY_ID']}"
s3_secret_key = "{env['AWS_SECRET_ACCESS_KEY']}"
''')
    return path


def _put(core: Core, op: Op, parts: tuple[str, ...], data: bytes) -> None:
    up = Upload(core, op, parts, length=len(data))
    up.write(data)
    up.commit()


def _source(data: Path) -> tuple[dict[tuple[str, str], bytes], str]:
    """An embedded instance with two users, inline and chunked files, folders, a favorite, an app
    password; returns every file's content by (user, path) and the app password."""
    core = open_core(load_settings(None, {"data": data}, environ={}))
    rng = random.Random(11)
    contents: dict[tuple[str, str], bytes] = {}
    try:
        for name, pw in PW.items():
            accounts.create_user(core, name, pw)
        token = accounts.create_app_password(core, "alice", "laptop")
        for name in PW:
            op = Op(Authenticator(core).authenticate(name, PW[name], "test"))
            files.mkdir(core, op, ("docs",))
            files.mkdir(core, op, ("docs", "cours"))
            for parts, body in [
                (("hello.txt",), f"bonjour {name}".encode()),
                (("docs", "notes.md"), b"# notes\n" * 500),
                (("docs", "cours", "video.bin"), rng.randbytes(3 * 1024 * 1024)),  # several chunks
                (("docs", "shared.bin"), b"same bytes for both users" * 20_000),  # deduplicated
            ]:
                _put(core, op, parts, body)
                contents[(name, "/".join(parts))] = body
        alice = Op(Authenticator(core).authenticate("alice", PW["alice"], "test"))
        favorites.set_favorite(core, alice, ("docs",), True)
    finally:
        core.db.dispose()
    return contents, token


def _check_target(target: Core, contents: dict[tuple[str, str], bytes], token: str) -> None:
    auth = Authenticator(target)
    for (name, path), body in contents.items():
        principal = auth.authenticate(name, PW[name], "test")
        assert reads.open_content(target, principal, tuple(path.split("/"))).read_all() == body, (name, path)
    assert auth.authenticate("alice", token, "test").app_password_id is not None
    report = fsck.check(target, deep=True)
    assert report.ok, report.problems


def test_migrate_to_postgres_and_rgw(tmp_path: Path) -> None:
    src = tmp_path / "src"
    contents, token = _source(src)
    toml = _target_toml(tmp_path / "target.toml", tmp_path / "target-data")
    before = open_core(load_settings(None, {"data": src}, environ={}))
    with before.db.read() as tx:
        epoch = journal.get_kv(tx, "epoch")
    alice = Authenticator(before).authenticate("alice", PW["alice"], "test")
    video = files.stat(before, alice, ("docs", "cours", "video.bin"))
    before.db.dispose()

    run = subprocess.run([*cartable_exe(), "admin", "migrate-to", "--to", str(toml), "--data", str(src), "--deep"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ": OK" in run.stdout
    # a second run finds everything there and verifies again
    again = subprocess.run([*cartable_exe(), "admin", "migrate-to", "--to", str(toml), "--data", str(src)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "copied 0 chunks and 0 rows" in again.stdout
    target = open_core(load_settings(toml, environ={}))
    try:
        _check_target(target, contents, token)
        with target.db.read() as tx:
            assert journal.get_kv(tx, "epoch") == epoch  # clients must not think the server was restored
        moved = files.stat(target, Authenticator(target).authenticate("alice", PW["alice"], "test"),
                           ("docs", "cours", "video.bin"))
        assert (moved.id, moved.etag, moved.size) == (video.id, video.etag, video.size)  # clients keep their state
        # the target takes new files with fresh ids (its sequences moved past the copied ones)
        op = Op(Authenticator(target).authenticate("bob", PW["bob"], "test"))
        _put(target, op, ("after.txt",), b"written after the move")
        assert files.stat(target, op.principal, ("after.txt",)).id > video.id
    finally:
        target.db.dispose()


class _FlakyStore:
    """A target store that fails after `ok` put_many calls, as a network outage would."""

    def __init__(self, inner: object, ok: int) -> None:
        self.inner, self.ok = inner, ok

    def put_many(self, items):  # type: ignore[no-untyped-def]
        if self.ok == 0:
            raise StoreUnavailable("the object store went away")
        self.ok -= 1
        return self.inner.put_many(items)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_an_interrupted_migration_resumes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    contents, token = _source(src)
    toml = _target_toml(tmp_path / "target.toml", tmp_path / "target-data")
    source = open_core(load_settings(None, {"data": src}, environ={}))
    target = open_core(load_settings(toml, environ={}))
    try:
        real = target.blobs
        target.blobs = _FlakyStore(real, ok=1)  # type: ignore[assignment]
        with pytest.raises(StorageUnavailable):  # after one batch of two chunks
            transfer.transfer(source, target, batch_size=2)
        target.blobs = real

        def interrupt(message: str) -> None:  # stops the metadata copy in the middle of the nodes
            if message.startswith("progress: nodes:"):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            transfer.transfer(source, target, say=interrupt, rows_batch=5)
        with target.db.read() as tx:
            assert journal.get_kv(tx, "copy.chunks_after") is not None
            assert journal.get_kv(tx, "copy.nodes") is not None  # stopped inside the nodes table
            assert int(tx.execute(text("SELECT count(*) FROM nodes")).scalar_one()) == 5
        report = transfer.transfer(source, target, deep=True)
        assert report.ok, report.problems
        _check_target(target, contents, token)
    finally:
        source.db.dispose()
        target.db.dispose()


def test_a_target_holding_another_instance_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "first"
    _source(first)
    other = tmp_path / "other"
    _source(other)
    toml = _target_toml(tmp_path / "target.toml", tmp_path / "target-data")
    run = subprocess.run([*cartable_exe(), "admin", "migrate-to", "--to", str(toml), "--data", str(first)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    source = open_core(load_settings(None, {"data": other}, environ={}))
    target = open_core(load_settings(toml, environ={}))
    try:
        with pytest.raises(Conflict, match="another instance"):
            transfer.transfer(source, target)
    finally:
        source.db.dispose()
        target.db.dispose()
    refused = subprocess.run([*cartable_exe(), "admin", "migrate-to", "--to", str(toml), "--data", str(other)],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1 and "another instance" in refused.stderr


def test_the_same_stores_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source(src)
    toml = tmp_path / "same.toml"
    toml.write_text(f'data = "{src}"\n')
    run = subprocess.run([*cartable_exe(), "admin", "migrate-to", "--to", str(toml), "--data", str(src)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == (f"error: {toml} names the same stores as the source; give the target's "
                                  "database_url and chunk store")
