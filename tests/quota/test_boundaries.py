# SPDX-License-Identifier: EUPL-1.2
"""Quota boundaries: every check that compares a size with the free space, exactly at the limit
(accepted) and one byte over (refused: 507 over HTTP, QuotaExceeded in core) — and a refusal
changes nothing: a refused overwrite leaves the old content, a refused upload step leaves the
upload as it was.

Each row isolates one comparison (named in its docstring as file: expression). Where several
checks guard one request (a large PUT is checked before its body, while it streams and at its
commit) the HTTP row proves the outcome and a core row proves each check on its own, because an
off-by-one in one of them would be hidden by the next.

Rows to add with the issues that bring them (same shape: a scenario taking ``over`` = 0 or 1):
a move into a share (shares).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cartable.common import faults
from cartable.core import accounts, reads, uploads
from cartable.core.context import Core
from cartable.core.errors import QuotaExceeded
from cartable.core.tree import Op
from cartable.core.writes import _PRECHECK_MIN, Upload
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import uploads as uploads_repo
from tests.conftest import DAV
from tests.nextcloud.davhelp import bulk, bulk_body, bulk_part, multistatus

KiB = 1024
UP = "/remote.php/dav/uploads/alice"
OVER = pytest.mark.parametrize("over", [0, 1], ids=["at-limit", "one-over"])


def data(size: int, seed: int = 0) -> bytes:
    return random.Random(size * 7 + seed).randbytes(size)


def url(name: str) -> str:
    return f"{DAV}/{name}"


def used(core: Core) -> int:
    return accounts.get_user(core, "alice").used


def staged(core: Core, op: Op) -> int:
    with core.db.read() as tx:
        return uploads_repo.staged_bytes(tx, op.principal.user_id)


def leave_free(core: Core, free: int) -> None:
    """Set the quota so that exactly ``free`` bytes are left (negative: over quota already)."""
    accounts.set_quota(core, "alice", used(core) + free)


def state(core: Core, op: Op) -> dict[str, bytes]:
    """Every file of the user with its bytes, and every staged part with its size."""
    out: dict[str, bytes] = {}

    def walk(node_id: int, prefix: str) -> None:
        with core.db.read() as tx:
            kids = nodes_repo.children(tx, node_id)
        for kid in kids:
            path = f"{prefix}{kid.name}"
            if kid.is_dir:
                out[path + "/"] = b""
                walk(kid.id, path + "/")
            else:
                out[path] = reads.open_content(core, op.principal, tuple(path.split("/"))).read_all()

    walk(op.principal.root_id, "")
    with core.db.read() as tx:
        for up in uploads_repo.list_for_user(tx, op.principal.user_id):
            for part in uploads_repo.list_parts(tx, up.id):
                out[f"<upload {up.upload_key}>/{part.name}"] = str(part.size).encode()
    return out


def chunk_count(core: Core) -> int:
    return sum(1 for _ in core.blobs.iter_digests())


@pytest.fixture
def op(core: Core) -> Op:
    with core.db.read() as tx:
        rec = accounts_repo.user_by_name(tx, "alice")
    assert rec is not None
    return Op(accounts.principal_for(core, rec))


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    faults.disarm_all()


def refused_or_done(status: int, over: int, done: tuple[int, ...] = (201, 204)) -> None:
    if over:
        assert status == 507, status
    else:
        assert status in done, status


# ---------------------------------------------------------------------------------------------
# PUT


@OVER
@pytest.mark.parametrize("size", [100 * KiB, _PRECHECK_MIN, _PRECHECK_MIN + 1, 1024 * KiB],
                         ids=["small", "at-threshold", "threshold+1", "large"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_put(client: TestClient, core: Core, op: Op, size: int, overwrite: bool, over: int) -> None:
    """PUT with a Content-Length, below, at and above the early check (writes.py _PRECHECK_MIN:
    a body of at most that many bytes is checked at its commit only, quota.py check_quota
    ``used + delta > quota``; a larger one before its body is read, writes.py _check_start
    ``self.length > room``). An overwrite frees the old size."""
    old = data(50 * KiB, 1)
    if overwrite:
        assert client.put(url("f.bin"), content=old).status_code == 201
    leave_free(core, size - (len(old) if overwrite else 0) - over)
    before = state(core, op)
    body = data(size)
    r = client.put(url("f.bin"), content=body)
    refused_or_done(r.status_code, over)
    if over:
        assert state(core, op) == before  # the old content, or nothing
    else:
        assert client.get(url("f.bin")).content == body
        assert accounts.get_user(core, "alice").used == accounts.get_user(core, "alice").quota


@OVER
@pytest.mark.parametrize("size", [100 * KiB, 600 * KiB])
def test_put_without_content_length(client: TestClient, core: Core, op: Op, size: int, over: int) -> None:
    """A streamed PUT with no Content-Length: refused while it streams (writes.py Upload.write
    ``self._received > self._room``), and at its commit."""
    assert client.put(url("old.bin"), content=data(20 * KiB, 2)).status_code == 201
    leave_free(core, size - over)
    before = state(core, op)
    body = data(size)
    r = client.put(url("s.bin"), content=iter([body[i:i + 64 * KiB] for i in range(0, size, 64 * KiB)]))
    refused_or_done(r.status_code, over)
    if over:
        assert state(core, op) == before
    else:
        assert client.get(url("s.bin")).content == body


@OVER
def test_core_early_check_before_any_byte(core: Core, op: Op, over: int) -> None:
    """writes.py Upload._check_start ``self.length > room``: refused before any byte is read."""
    size = _PRECHECK_MIN + 10
    leave_free(core, size - over)
    if over:
        with pytest.raises(QuotaExceeded):
            Upload(core, op, ("f.bin",), length=size)
        return
    up = Upload(core, op, ("f.bin",), length=size)
    up.write(data(size))
    up.commit()


@OVER
def test_core_streaming_check(core: Core, op: Op, over: int) -> None:
    """writes.py Upload.write ``self._received > self._room``: the piece that crosses the limit
    is refused, the ones before are not."""
    size = 300 * KiB
    leave_free(core, size - over)
    up = Upload(core, op, ("f.bin",))
    body = data(size)
    up.write(body[:-1])
    if over:
        with pytest.raises(QuotaExceeded):
            up.write(body[-1:])
        return
    up.write(body[-1:])
    up.commit()


@OVER
@pytest.mark.parametrize("size", [100 * KiB, 300 * KiB])
def test_core_commit_check_after_a_concurrent_write(core: Core, op: Op, size: int, over: int) -> None:
    """quota.py check_quota ``used + delta > quota`` in the commit: the early checks passed, then
    another write took part of the room."""
    other = 10 * KiB
    leave_free(core, size + other)
    up = Upload(core, op, ("f.bin",), length=size)
    up.write(data(size))
    sneak = Upload(core, op, ("other.bin",), length=other + over)
    sneak.write(data(other + over, 3))
    sneak.commit()
    if over:
        with pytest.raises(QuotaExceeded):
            up.commit()
        assert [n for n in state(core, op)] == ["other.bin"]
        return
    up.commit()


@pytest.mark.parametrize(("delta", "status"), [(-1, 204), (0, 204), (1, 507)])
def test_overwrite_when_already_over_quota(client: TestClient, core: Core, op: Op, delta: int, status: int) -> None:
    """quota.py check_quota ``delta <= 0``: a space already over its quota (the quota was lowered)
    may still replace a file with one no larger."""
    old = data(40 * KiB, 4)
    assert client.put(url("f.bin"), content=old).status_code == 201
    leave_free(core, -1000)
    before = state(core, op)
    body = data(len(old) + delta, 5)
    assert client.put(url("f.bin"), content=body).status_code == status
    assert client.get(url("f.bin")).content == (body if status == 204 else old)
    if status == 507:
        assert state(core, op) == before


@OVER
@pytest.mark.parametrize("size", [8 * KiB, 8 * KiB + 1], ids=["inline-max", "inline-max+1"])
def test_inline_and_chunked_boundary(client: TestClient, core: Core, op: Op, size: int, over: int) -> None:
    """The inline/chunked boundary (writes.py ContentWriter.finish ``self.received <= inline_max``)
    meets the quota check the same way on both sides, and only content above it reaches the
    chunk store."""
    assert core.limits.inline_max == 8 * KiB
    leave_free(core, size - over)
    chunks = chunk_count(core)
    body = data(size)
    r = client.put(url("i.bin"), content=body)
    refused_or_done(r.status_code, over)
    if not over:
        assert client.get(url("i.bin")).content == body
        assert chunk_count(core) == chunks + (size > core.limits.inline_max)


# ---------------------------------------------------------------------------------------------
# Chunked uploads


@OVER
@pytest.mark.parametrize("onto", [False, True], ids=["new", "onto-existing"])
def test_mkcol_with_declared_size(client: TestClient, core: Core, op: Op, onto: bool, over: int) -> None:
    """uploads.py begin ``total_length > room``; with a v2 Destination naming an existing file, its
    size counts as free."""
    old = data(30 * KiB, 6)
    assert client.put(url("dst.bin"), content=old).status_code == 201
    total = 500 * KiB
    leave_free(core, total - (len(old) if onto else 0) - over)
    headers = {"OC-Total-Length": str(total)}
    if onto:
        headers["Destination"] = f"http://testserver{url('dst.bin')}"
    r = client.request("MKCOL", f"{UP}/u1", headers=headers)
    refused_or_done(r.status_code, over, (201,))
    listed = client.request("PROPFIND", f"{UP}/u1", headers={"Depth": "0"}).status_code
    assert listed == (404 if over else 207)


def test_mkcol_without_declared_size_is_never_refused(client: TestClient, core: Core) -> None:
    """No size, no early check: the parts and the assembly are checked instead."""
    assert client.put(url("x.bin"), content=data(10 * KiB)).status_code == 201
    leave_free(core, 0)
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    assert client.request("PROPFIND", f"{UP}/u1", headers={"Depth": "0"}).status_code == 207


def stage_room(core: Core, op: Op, room: int) -> None:
    """Parts may stage up to the quota in all (whatever the files use): leave ``room`` for parts."""
    accounts.set_quota(core, "alice", staged(core, op) + room)


@OVER
def test_part_with_content_length(client: TestClient, core: Core, op: Op, over: int) -> None:
    """uploads.py PartWriter.__init__ ``length > self._room`` (room: quota minus all staged parts)."""
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    assert client.put(f"{UP}/u1/1", content=data(40 * KiB, 7)).status_code == 201
    size = 300 * KiB
    stage_room(core, op, size - over)
    before = state(core, op)
    r = client.put(f"{UP}/u1/2", content=data(size))
    refused_or_done(r.status_code, over, (201,))
    if over:
        assert state(core, op) == before


@OVER
def test_core_part_early_check_before_any_byte(core: Core, op: Op, over: int) -> None:
    """uploads.py PartWriter.__init__ ``length > self._room`` on its own: a part whose declared
    length is over is refused before any byte is read (the streaming check would refuse it later,
    after reading and hashing the whole body: the HTTP row alone cannot tell them apart)."""
    uploads.begin(core, op.principal, "u1")
    size = 300 * KiB
    stage_room(core, op, size - over)
    if over:
        with pytest.raises(QuotaExceeded):
            uploads.PartWriter(core, op.principal, "u1", "1", length=size)
        return
    w = uploads.PartWriter(core, op.principal, "u1", "1", length=size)
    w.write(data(size))
    w.commit()


@OVER
def test_part_without_content_length(client: TestClient, core: Core, op: Op, over: int) -> None:
    """uploads.py PartWriter.write ``self._received > self._room``, over HTTP and in core."""
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    size = 200 * KiB
    stage_room(core, op, size - over)
    before = state(core, op)
    body = data(size)
    r = client.put(f"{UP}/u1/1", content=iter([body[:100 * KiB], body[100 * KiB:]]))
    refused_or_done(r.status_code, over, (201,))
    if over:
        assert state(core, op) == before
    stage_room(core, op, size - over)
    w = uploads.PartWriter(core, op.principal, "u1", "2")
    w.write(body[:-1])
    if over:
        with pytest.raises(QuotaExceeded):
            w.write(body[-1:])
    else:
        w.write(body[-1:])
        w.commit()


@OVER
def test_part_commit_after_concurrent_staging(core: Core, op: Op, over: int) -> None:
    """uploads.py PartWriter.commit ``written.size > self._room_in(...)``: another part was staged
    while this one streamed."""
    uploads.begin(core, op.principal, "u1")
    size, other = 100 * KiB, 20 * KiB
    stage_room(core, op, size + other)
    w = uploads.PartWriter(core, op.principal, "u1", "1", length=size)
    w.write(data(size))
    uploads.put_part(core, op.principal, "u1", "2", [data(other + over, 8)])
    if over:
        with pytest.raises(QuotaExceeded):
            w.commit()
        assert [p.name for p in uploads.list_parts(core, op.principal, "u1").parts] == ["2"]
        return
    w.commit()


@OVER
def test_part_sent_again_frees_the_old_one(client: TestClient, core: Core, op: Op, over: int) -> None:
    """uploads.py PartWriter._room_in: a part of the same name is replaced, so its size is free."""
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    old = data(50 * KiB, 9)
    assert client.put(f"{UP}/u1/1", content=old).status_code == 201
    size = 120 * KiB
    stage_room(core, op, size - len(old) - over)
    r = client.put(f"{UP}/u1/1", content=data(size))
    refused_or_done(r.status_code, over, (201,))
    expected = len(old) if over else size
    assert [(p.name, p.size) for p in uploads.list_parts(core, op.principal, "u1").parts] == [("1", expected)]


@OVER
@pytest.mark.parametrize("onto", [False, True], ids=["new", "overwrite"])
def test_assembly(client: TestClient, core: Core, op: Op, onto: bool, over: int) -> None:
    """uploads.py assemble ``size > room`` (room: free space plus the size of the file replaced).
    A refused assembly leaves the target and the staged parts as they were: it can be retried."""
    old = data(30 * KiB, 10)
    assert client.put(url("dst.bin"), content=old).status_code == 201
    parts = [data(100 * KiB, 11), data(60 * KiB, 12)]
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    for i, p in enumerate(parts):
        assert client.put(f"{UP}/u1/{i + 1}", content=p).status_code == 201
    total = sum(map(len, parts))
    target = "dst.bin" if onto else "new.bin"
    leave_free(core, total - (len(old) if onto else 0) - over)
    before = state(core, op)
    r = client.request("MOVE", f"{UP}/u1/.file", headers={"Destination": url(target)})
    refused_or_done(r.status_code, over)
    if over:
        assert state(core, op) == before
        leave_free(core, total)  # room again: the same upload assembles
        assert client.request("MOVE", f"{UP}/u1/.file", headers={"Destination": url(target)}).status_code in (201, 204)
    assert client.get(url(target)).content == b"".join(parts)


@OVER
def test_core_assembly_early_check_before_any_chunk_is_read(core: Core, op: Op, over: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """uploads.py assemble ``size > room`` on its own: refused before the parts are read and
    hashed (the commit's check_quota would refuse it later, after that work: the HTTP row alone
    cannot tell them apart)."""
    uploads.begin(core, op.principal, "u1")
    parts = [data(100 * KiB, 11), data(60 * KiB, 12)]
    for i, p in enumerate(parts):
        uploads.put_part(core, op.principal, "u1", str(i + 1), [p])
    leave_free(core, sum(map(len, parts)) - over)
    built: list[int] = []
    real_build = uploads._build
    monkeypatch.setattr(uploads, "_build", lambda *a, **k: built.append(1) or real_build(*a, **k))
    if over:
        with pytest.raises(QuotaExceeded):
            uploads.assemble(core, op, "u1", ("new.bin",))
        assert built == []
        return
    uploads.assemble(core, op, "u1", ("new.bin",))
    assert built == [1]


@OVER
def test_assembly_commit_after_a_concurrent_write(core: Core, op: Op, over: int) -> None:
    """quota.py check_quota in the assembly's commit: the early check passed, then another write
    took part of the room (it lands while the assembly turns its tiny inline part into a chunk)."""
    uploads.begin(core, op.principal, "u1")
    parts = [data(100 * KiB, 13), data(2 * KiB, 14)]
    for i, p in enumerate(parts):
        uploads.put_part(core, op.principal, "u1", str(i + 1), [p])
    total, other = sum(map(len, parts)), 10 * KiB
    leave_free(core, total + other)

    def sneak() -> None:
        faults.disarm("writes.after_claim")
        up = Upload(core, op, ("other.bin",), length=other + over)
        up.write(data(other + over, 15))
        up.commit()

    faults.arm("writes.after_claim", sneak)
    if over:
        with pytest.raises(QuotaExceeded):
            uploads.assemble(core, op, "u1", ("big.bin",))
        assert sorted(state(core, op)) == ["<upload u1>/1", "<upload u1>/2", "other.bin"]
        return
    uploads.assemble(core, op, "u1", ("big.bin",))
    assert reads.open_content(core, op.principal, ("big.bin",)).read_all() == b"".join(parts)


@OVER
@pytest.mark.parametrize("size", [8 * KiB, 8 * KiB + 1], ids=["inline-max", "inline-max+1"])
def test_assembled_inline_and_chunked_boundary(client: TestClient, core: Core, op: Op, size: int,
                                               over: int) -> None:
    """uploads.py _build ``size <= inline_max``: an assembled file of at most inline_max bytes made
    of inline parts stays inline; one byte more becomes a chunk. The quota check is the same."""
    body = data(size)
    assert client.request("MKCOL", f"{UP}/u1").status_code == 201
    half = size // 2
    for name, piece in (("1", body[:half]), ("2", body[half:])):
        assert client.put(f"{UP}/u1/{name}", content=piece).status_code == 201
    chunks = chunk_count(core)
    leave_free(core, size - over)
    r = client.request("MOVE", f"{UP}/u1/.file", headers={"Destination": url("a.bin")})
    refused_or_done(r.status_code, over)
    if not over:
        assert client.get(url("a.bin")).content == body
        assert chunk_count(core) == chunks + (2 if size > core.limits.inline_max else 0)  # a chunk per part


# ---------------------------------------------------------------------------------------------
# COPY


@OVER
@pytest.mark.parametrize("what", ["file", "folder", "file-onto-file"])
def test_copy(client: TestClient, core: Core, op: Op, what: str, over: int) -> None:
    """files.py copy: quota.py check_quota ``used + delta > quota`` with delta = the bytes copied
    minus those of the file replaced."""
    assert client.request("MKCOL", url("d")).status_code == 201
    a, b = data(70 * KiB, 16), data(3 * KiB, 17)
    assert client.put(url("d/a.bin"), content=a).status_code == 201
    assert client.put(url("d/b.txt"), content=b).status_code == 201
    dst_old = data(20 * KiB, 18)
    assert client.put(url("dst.bin"), content=dst_old).status_code == 201
    src, dst, need = {"file": ("d/a.bin", "copy.bin", len(a)),
                      "folder": ("d", "e", len(a) + len(b)),
                      "file-onto-file": ("d/a.bin", "dst.bin", len(a) - len(dst_old))}[what]
    leave_free(core, need - over)
    before = state(core, op)
    r = client.request("COPY", url(src), headers={"Destination": url(dst)})
    refused_or_done(r.status_code, over)
    if over:
        assert state(core, op) == before
    elif what == "folder":
        assert client.get(url("e/a.bin")).content == a and client.get(url("e/b.txt")).content == b
    else:
        assert client.get(url(dst)).content == a


# ---------------------------------------------------------------------------------------------
# Bulk upload


@OVER
def test_bulk_upload(client: TestClient, core: Core, op: Op, over: int) -> None:
    """Each file of a bulk upload is a PUT of its own (core/bulk.py: writes.py Upload, checked at
    its commit, and before its body above the early-check threshold). With room for all the files
    all land; one byte less and exactly one is refused (whichever commits last: they commit
    concurrently), the others land whole, and a refused overwrite keeps the old content."""
    old = data(20 * KiB, 19)
    assert client.put(url("old.bin"), content=old).status_code == 201
    files = {"/a.txt": data(3000, 20), "/b.bin": data(100 * KiB, 21), "/c.bin": data(_PRECHECK_MIN + 5, 22),
             "/old.bin": data(50 * KiB, 23)}
    leave_free(core, sum(map(len, files.values())) - len(old) - over)
    r = bulk(client, bulk_body(*(bulk_part(p, d) for p, d in files.items())))
    assert r.status_code == 200, r.text
    answer = r.json()
    refused = [p for p, v in answer.items() if v["error"]]
    assert len(refused) == over, answer
    assert all("quota" in answer[p]["message"] for p in refused)
    for p, d in files.items():
        got = client.get(url(p.lstrip("/")))
        if p not in refused:
            assert got.content == d
        elif p == "/old.bin":
            assert got.content == old
        else:
            assert got.status_code == 404


# ---------------------------------------------------------------------------------------------
# Trash and versions


@OVER
@pytest.mark.parametrize("what", ["file", "folder"])
def test_trash_restore(client: TestClient, core: Core, op: Op, what: str, over: int) -> None:
    """trash.py restore: quota.py check_quota ``used + delta > quota`` with delta = the item's size
    (it comes back into the live files). A refused restore leaves it in the trash."""
    assert client.request("MKCOL", url("d")).status_code == 201
    a, b = data(70 * KiB, 24), data(3 * KiB, 25)
    assert client.put(url("d/a.bin"), content=a).status_code == 201
    assert client.put(url("d/b.txt"), content=b).status_code == 201
    gone, need = {"file": ("d/a.bin", len(a)), "folder": ("d", len(a) + len(b))}[what]
    assert client.delete(url(gone)).status_code == 204
    trash = "/remote.php/dav/trashbin/alice/trash/"
    listing = client.request("PROPFIND", trash, headers={"Depth": "1"})
    assert listing.status_code == 207
    item = [h for h in multistatus(listing.content) if h != trash][0]
    leave_free(core, need - over)
    before = state(core, op)
    r = client.request("MOVE", item, headers={"Destination": "/remote.php/dav/trashbin/alice/restore/x"})
    refused_or_done(r.status_code, over, (201,))
    if over:
        assert state(core, op) == before
        again = client.request("PROPFIND", trash, headers={"Depth": "1"})
        assert again.status_code == 207 and item in multistatus(again.content)
    else:
        assert client.get(url("d/a.bin")).content == a
        assert accounts.get_user(core, "alice").used == accounts.get_user(core, "alice").quota


@OVER
def test_version_restore(client: TestClient, core: Core, op: Op, over: int) -> None:
    """versions.py restore: quota.py check_quota ``used + delta > quota`` with delta = the
    version's size minus the current content's. A refused restore leaves the current content."""
    old, new = data(90 * KiB, 26), data(20 * KiB, 27)
    assert client.put(url("v.bin"), content=old).status_code == 201
    assert client.put(url("v.bin"), content=new).status_code == 204
    fid = client.request("PROPFIND", url("v.bin"), headers={"Depth": "0"})
    assert fid.status_code == 207
    file_id = next(iter(multistatus(fid.content).values()))["{http://owncloud.org/ns}fileid"]
    base = f"/remote.php/dav/versions/alice/versions/{file_id}/"
    listing = client.request("PROPFIND", base, headers={"Depth": "1"})
    assert listing.status_code == 207
    version = [h for h in multistatus(listing.content) if h != base][0]
    leave_free(core, len(old) - len(new) - over)
    before = state(core, op)
    r = client.request("MOVE", version, headers={"Destination": "/remote.php/dav/versions/alice/restore/target"})
    refused_or_done(r.status_code, over, (201,))
    if over:
        assert state(core, op) == before
    else:
        assert client.get(url("v.bin")).content == old
        assert accounts.get_user(core, "alice").used == accounts.get_user(core, "alice").quota
