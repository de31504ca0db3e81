# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads (/remote.php/dav/uploads/USER/ID/): every client's naming flavour assembles
byte for byte, resume, preconditions, quota, checksums, abort, expiry, no byte copy, isolation;
fsck stays clean after each scenario."""

from __future__ import annotations

import hashlib
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cartable.common.timefmt import http_date
from cartable.core import accounts, fsck, gc, reads
from cartable.core import uploads as core_uploads
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, NotFound, QuotaExceeded
from cartable.core.tree import Op
from cartable.store.meta import content
from tests.conftest import DAV
from tests.core.conftest import FakeClock, make_core, principal

UP = "/remote.php/dav/uploads/alice"
MIB = 1 << 20

Namer = Callable[[int, int, int], str]
FLAVOURS: dict[str, tuple[Namer, bool]] = {
    # name(index, offset, size), whether the client sends Destination on MKCOL and PUT (v2)
    "nextcloudcmd": (lambda i, off, n: f"{i:016d}", False),
    "owncloudcmd": (lambda i, off, n: f"{off:016d}", False),
    "v2-docs": (lambda i, off, n: f"{i + 1:05d}", True),
    "android": (lambda i, off, n: f"{i + 1:06d}", True),
    "rclone": (lambda i, off, n: f"{off:015d}-{off + n - 1:012d}", False),
}


def clean(core: Core) -> None:
    rep = fsck.check(core, deep=True)
    assert rep.ok, rep.problems


def blob_count(core: Core) -> int:
    return sum(1 for _ in core.blobs.iter_digests())


def split(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(off, data[off:off + size]) for off in range(0, len(data), size)]


def chunked_upload(client: TestClient, upload_id: str, data: bytes, dest: str, *, part: int = 5 * MIB,
                   order: list[int] | None = None, move_headers: dict[str, str] | None = None,
                   namer: Namer = FLAVOURS["nextcloudcmd"][0], v2: bool = False) -> object:
    extra = {"Destination": f"http://testserver{DAV}/{dest}"} if v2 else {}
    r = client.request("MKCOL", f"{UP}/{upload_id}", headers={"OC-Total-Length": str(len(data)), **extra})
    assert r.status_code == 201, r.text
    pieces = split(data, part)
    for i in order if order is not None else range(len(pieces)):
        off, piece = pieces[i]
        r = client.put(f"{UP}/{upload_id}/{namer(i, off, len(piece))}", content=piece,
                       headers={"OC-Chunk-Offset": str(off), **extra})
        assert r.status_code == 201, r.text
    headers = {"Destination": f"{DAV}/{dest}", "OC-Total-Length": str(len(data)), **(move_headers or {})}
    return client.request("MOVE", f"{UP}/{upload_id}/.file", headers=headers)


@pytest.fixture(scope="module")
def big() -> bytes:
    return random.Random(7).randbytes(15 * MIB)


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_each_flavour_assembles_byte_for_byte(client: TestClient, core: Core, big: bytes, flavour: str) -> None:
    namer, v2 = FLAVOURS[flavour]
    sha1 = hashlib.sha1(big).hexdigest()
    r = chunked_upload(client, "3736580026", big, "big.bin", order=[2, 0, 1], namer=namer, v2=v2,
                       move_headers={"X-OC-Mtime": "1750000000", "OC-Checksum": f"SHA1:{sha1}",
                                     "OC-Total-File-Length": str(len(big))})
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    h = r.headers  # type: ignore[attr-defined]
    assert h["ETag"] and h["OC-ETag"] == h["ETag"] and h["OC-FileId"] and h["X-OC-MTime"] == "accepted"
    got = client.get(f"{DAV}/big.bin")
    assert got.status_code == 200 and got.content == big
    assert got.headers["ETag"] == h["ETag"]
    assert got.headers["Last-Modified"] == http_date(1750000000)
    assert client.request("PROPFIND", f"{UP}/3736580026").status_code == 404  # staging gone
    clean(core)


def test_numeric_order_when_names_are_digits(client: TestClient, core: Core) -> None:
    data = random.Random(3).randbytes(11 * 1000)
    assert client.request("MKCOL", f"{UP}/n").status_code == 201
    for i in range(11):  # "10" sorts after "9" numerically, before "2" lexicographically
        assert client.put(f"{UP}/n/{i}", content=data[i * 1000:(i + 1) * 1000]).status_code == 201
    r = client.request("MOVE", f"{UP}/n/.file", headers={"Destination": f"{DAV}/n.bin"})
    assert r.status_code == 201
    assert client.get(f"{DAV}/n.bin").content == data  # tiny parts became chunks (11000 > inline)
    clean(core)


def test_tiny_upload_stays_inline(client: TestClient, core: Core) -> None:
    assert client.request("MKCOL", f"{UP}/t").status_code == 201
    assert client.put(f"{UP}/t/1", content=b"hello ").status_code == 201
    assert client.put(f"{UP}/t/2", content=b"world").status_code == 201
    before = blob_count(core)
    r = client.request("MOVE", f"{UP}/t/.file", headers={"Destination": f"{DAV}/t.txt", "OC-Total-Length": "11"})
    assert r.status_code == 201
    assert client.get(f"{DAV}/t.txt").content == b"hello world"
    assert blob_count(core) == before
    clean(core)


def test_resume_from_propfind_listing(client: TestClient, core: Core, big: bytes) -> None:
    pieces = split(big, 5 * MIB)
    assert client.request("MKCOL", f"{UP}/777", headers={"OC-Total-Length": str(len(big))}).status_code == 201
    for i in (0, 1):
        assert client.put(f"{UP}/777/{i:016d}", content=pieces[i][1]).status_code == 201
    # The client was interrupted; on the next run it asks what the server holds.
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
            "<d:getcontentlength/><d:getetag/><d:getlastmodified/></d:prop></d:propfind>")
    r = client.request("PROPFIND", f"{UP}/777", headers={"Depth": "1"}, content=body)
    assert r.status_code == 207 and r.headers["content-type"] == "application/xml; charset=utf-8"
    ns = {"d": "DAV:"}
    root = ET.fromstring(r.content)
    listed = {}
    for resp in root.findall("d:response", ns):
        href = resp.findtext("d:href", namespaces=ns)
        assert href is not None and href.startswith(f"{UP}/777/")
        is_dir = resp.find(".//d:resourcetype/d:collection", ns) is not None
        assert resp.findtext(".//d:getetag", namespaces=ns)
        assert resp.findtext(".//d:getlastmodified", namespaces=ns)
        if not is_dir:
            listed[href.rsplit("/", 1)[1]] = int(resp.findtext(".//d:getcontentlength", namespaces=ns) or -1)
    assert listed == {f"{0:016d}": 5 * MIB, f"{1:016d}": 5 * MIB}
    r0 = client.request("PROPFIND", f"{UP}/777", headers={"Depth": "0"})
    assert r0.status_code == 207 and r0.text.count("<d:response>") == 1
    assert client.put(f"{UP}/777/{2:016d}", content=pieces[2][1]).status_code == 201
    r = client.request("MOVE", f"{UP}/777/.file", headers={"Destination": f"{DAV}/r.bin"})
    assert r.status_code == 201 and client.get(f"{DAV}/r.bin").content == big
    clean(core)


def test_replaced_part_wins_and_releases_old_chunks(client: TestClient, core: Core) -> None:
    a, b = random.Random(1).randbytes(MIB), random.Random(2).randbytes(MIB)
    assert client.request("MKCOL", f"{UP}/x").status_code == 201
    assert client.put(f"{UP}/x/0", content=a).status_code == 201
    clean(core)
    assert client.put(f"{UP}/x/0", content=b).status_code == 201  # retried after an error: same name, other bytes
    clean(core)
    assert client.request("MOVE", f"{UP}/x/.file", headers={"Destination": f"{DAV}/x.bin"}).status_code == 201
    assert client.get(f"{DAV}/x.bin").content == b
    clean(core)


def test_if_header_replaces_known_file(client: TestClient, core: Core, big: bytes) -> None:
    first = big[:6 * MIB]
    r = chunked_upload(client, "1", first, "big2.bin", part=3 * MIB)
    assert r.status_code == 201  # type: ignore[attr-defined]
    old_etag = r.headers["ETag"].strip('"')  # type: ignore[attr-defined]
    second = big[6 * MIB:12 * MIB]
    bad = chunked_upload(client, "2", second, "big2.bin", part=3 * MIB,
                         move_headers={"If": f'<{DAV}/big2.bin> (["not-the-etag"])'})
    assert bad.status_code == 412  # type: ignore[attr-defined]
    assert client.get(f"{DAV}/big2.bin").content == first
    clean(core)
    bad_im = client.request("MOVE", f"{UP}/2/.file",
                            headers={"Destination": f"{DAV}/big2.bin", "If-Match": '"nope"'})
    assert bad_im.status_code == 412
    ok = client.request("MOVE", f"{UP}/2/.file",
                        headers={"Destination": f"http://testserver{DAV}/big2.bin",
                                 "If": f'<http://testserver{DAV}/big2.bin> (["{old_etag}"])'})
    assert ok.status_code == 204, ok.text
    assert client.get(f"{DAV}/big2.bin").content == second
    assert ok.headers["OC-FileId"] == r.headers["OC-FileId"]  # type: ignore[attr-defined]
    clean(core)


def test_total_length_mismatch_is_400_and_invisible(client: TestClient, core: Core) -> None:
    data = random.Random(4).randbytes(2 * MIB)
    r = chunked_upload(client, "m", data, "m.bin", part=MIB, move_headers={"OC-Total-Length": str(len(data) + 1)})
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert client.get(f"{DAV}/m.bin").status_code == 404
    clean(core)
    assert client.request("DELETE", f"{UP}/m").status_code == 204
    clean(core)


def test_checksum_mismatch_is_400_and_invisible(client: TestClient, core: Core) -> None:
    data = random.Random(5).randbytes(2 * MIB)
    r = chunked_upload(client, "c", data, "c.bin", part=MIB,
                       move_headers={"OC-Checksum": "SHA1:" + "0" * 40})
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert client.get(f"{DAV}/c.bin").status_code == 404
    clean(core)


def test_quota_at_mkcol_and_at_assembly(client: TestClient, core: Core) -> None:
    accounts.set_quota(core, "alice", 12 * MIB)
    r = client.request("MKCOL", f"{UP}/q", headers={"OC-Total-Length": str(20 * MIB)})
    assert r.status_code == 507
    assert client.request("PROPFIND", f"{UP}/q").status_code == 404
    assert client.put(f"{DAV}/fill.bin", content=random.Random(6).randbytes(8 * MIB)).status_code == 201
    data = random.Random(8).randbytes(6 * MIB)
    assert client.request("MKCOL", f"{UP}/q2").status_code == 201  # no OC-Total-Length: no early check
    for off, piece in split(data, 3 * MIB):
        assert client.put(f"{UP}/q2/{off}", content=piece).status_code == 201  # staging fits the quota
    r = client.request("MOVE", f"{UP}/q2/.file", headers={"Destination": f"{DAV}/q.bin"})
    assert r.status_code == 507
    assert client.get(f"{DAV}/q.bin").status_code == 404
    clean(core)


def test_delete_releases_references(client: TestClient, core: Core) -> None:
    assert client.request("MKCOL", f"{UP}/d").status_code == 201
    for i in range(3):
        assert client.put(f"{UP}/d/{i}", content=random.Random(10 + i).randbytes(MIB)).status_code == 201
    with core.db.read() as tx:
        assert all(rc == 1 for _d, _s, _st, rc in content.iter_chunks(tx))
    clean(core)
    assert client.request("DELETE", f"{UP}/d").status_code == 204
    with core.db.read() as tx:
        assert all(rc == 0 for _d, _s, _st, rc in content.iter_chunks(tx))
    assert client.request("DELETE", f"{UP}/d").status_code == 404
    clean(core)


def test_unknown_upload_and_methods(client: TestClient, core: Core) -> None:
    assert client.put(f"{UP}/nope/0", content=b"x").status_code == 404
    assert client.request("PROPFIND", f"{UP}/nope").status_code == 404
    assert client.request("MOVE", f"{UP}/nope/.file", headers={"Destination": f"{DAV}/z"}).status_code == 404
    assert client.request("MKCOL", f"{UP}/dup").status_code == 201
    assert client.request("MKCOL", f"{UP}/dup").status_code == 405
    assert client.put(f"{UP}/dup/0", content=b"abc").status_code == 201
    assert client.get(f"{UP}/dup/0").status_code == 405
    assert client.request("MOVE", f"{UP}/dup/.file").status_code == 400  # no Destination
    r = client.request("MOVE", f"{UP}/dup/.file", headers={"Destination": "/remote.php/dav/files/bob/z"})
    assert r.status_code == 403
    clean(core)


def test_assembly_copies_no_bytes(client: TestClient, core: Core, big: bytes) -> None:
    assert client.request("MKCOL", f"{UP}/nc").status_code == 201
    for off, piece in split(big, 5 * MIB):
        assert client.put(f"{UP}/nc/{off:016d}", content=piece).status_code == 201
    before = blob_count(core)
    r = client.request("MOVE", f"{UP}/nc/.file", headers={"Destination": f"{DAV}/nc.bin"})
    assert r.status_code == 201
    assert blob_count(core) == before
    assert client.get(f"{DAV}/nc.bin").content == big
    clean(core)


def test_other_user_is_forbidden(client: TestClient, core: Core) -> None:
    accounts.create_user(core, "bob", "bob-secret-pw-1")
    assert client.request("MKCOL", f"{UP}/secret").status_code == 201
    assert client.put(f"{UP}/secret/0", content=b"alice's").status_code == 201
    bob = ("bob", "bob-secret-pw-1")
    assert client.request("PROPFIND", f"{UP}/secret", auth=bob).status_code == 403
    assert client.put(f"{UP}/secret/1", content=b"x", auth=bob).status_code == 403
    assert client.request("DELETE", f"{UP}/secret", auth=bob).status_code == 403
    assert client.request("MOVE", f"{UP}/secret/.file", auth=bob,
                          headers={"Destination": "/remote.php/dav/files/bob/s"}).status_code == 403
    # bob's own namespace does not see alice's upload either
    assert client.request("PROPFIND", "/remote.php/dav/uploads/bob/secret", auth=bob).status_code == 404
    assert client.request("PROPFIND", f"{UP}/secret").status_code == 207
    assert client.request("PROPFIND", f"{UP}/secret", auth=("alice", "wrong")).status_code == 401


# --- core level -------------------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Core, FakeClock]]:
    clock = FakeClock()
    core = make_core(tmp_path, clock, gc_grace_seconds=3600.0)
    accounts.create_user(core, "alice", "alice-secret-pw")
    yield core, clock
    core.db.dispose()


def test_expiry_reclaims_abandoned_upload(fake: tuple[Core, FakeClock]) -> None:
    core, clock = fake
    who = principal(core)
    core_uploads.begin(core, who, "old", 2 * MIB)
    core_uploads.put_part(core, who, "old", "0", [random.Random(20).randbytes(MIB)])
    core_uploads.begin(core, who, "fresh")
    clock.advance(23 * 3600)
    core_uploads.put_part(core, who, "fresh", "0", [random.Random(21).randbytes(MIB)])
    assert blob_count(core) >= 2
    clock.advance(2 * 3600)  # "old" is 25 h idle, "fresh" 2 h
    stats = gc.collect(core)
    assert stats.uploads_expired == 1 and stats.chunks_deleted == 0  # released, still in grace
    clean(core)
    clock.advance(2 * 3600)
    assert gc.collect(core).chunks_deleted >= 1
    with pytest.raises(NotFound):
        core_uploads.list_parts(core, who, "old")
    assert [p.name for p in core_uploads.list_parts(core, who, "fresh").parts] == ["0"]
    clean(core)
    core_uploads.abort(core, who, "fresh")
    clock.advance(2 * 3600)
    gc.collect(core)
    assert blob_count(core) == 0
    clean(core)


def test_core_assemble_and_errors(fake: tuple[Core, FakeClock]) -> None:
    core, _clock = fake
    who = principal(core)
    op = Op(who)
    data = random.Random(30).randbytes(3 * MIB + 5)
    core_uploads.begin(core, who, "k", len(data))
    core_uploads.put_part(core, who, "k", "b", [data[MIB:]])
    core_uploads.put_part(core, who, "k", "a", [data[:MIB]])
    with pytest.raises(InvalidInput):
        core_uploads.assemble(core, op, "k", ("f.bin",), total_length=len(data) - 1)
    res = core_uploads.assemble(core, op, "k", ("f.bin",))
    assert res.created and res.node.size == len(data)
    assert reads.open_content(core, who, ("f.bin",)).read_all() == data
    clean(core)
    accounts.set_quota(core, "alice", 4 * MIB)
    with pytest.raises(QuotaExceeded):
        core_uploads.begin(core, who, "k2", 2 * MIB)
    core_uploads.begin(core, who, "k2", 2 * MIB, dst_parts=("f.bin",))  # replaces f.bin: fits
    with pytest.raises(QuotaExceeded):  # staging is bounded by the quota
        core_uploads.put_part(core, who, "k2", "0", [b"x" * (5 * MIB)], length=5 * MIB)
    with pytest.raises(InvalidInput):
        core_uploads.put_part(core, who, "k2", "0", [b"x" * 10], length=11)
    with pytest.raises(NotFound):
        core_uploads.put_part(core, who, "zz", "0", [b"x"])
    core_uploads.put_part(core, who, "k2", "0", [b"tiny"])
    accounts.delete_user(core, "alice")  # releases the staged parts too
    clean(core)


def test_zero_bytes_and_overwrite_f(client: TestClient, core: Core) -> None:
    assert client.request("MKCOL", f"{UP}/z", headers={"OC-Total-Length": "0"}).status_code == 201
    r = client.request("MOVE", f"{UP}/z/.file", headers={"Destination": f"{DAV}/empty", "OC-Total-Length": "0"})
    assert r.status_code == 201 and client.get(f"{DAV}/empty").content == b""
    assert client.request("MKCOL", f"{UP}/o").status_code == 201
    assert client.put(f"{UP}/o/0", content=b"new").status_code == 201
    r = client.request("MOVE", f"{UP}/o/.file", headers={"Destination": f"{DAV}/empty", "Overwrite": "F"})
    assert r.status_code == 412 and client.get(f"{DAV}/empty").content == b""
    r = client.request("MOVE", f"{UP}/o/.file", headers={"Destination": f"{DAV}/empty", "Overwrite": "T"})
    assert r.status_code == 204 and client.get(f"{DAV}/empty").content == b"new"
    clean(core)
