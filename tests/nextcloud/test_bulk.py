# SPDX-License-Identifier: EUPL-1.2
"""Bulk upload (POST /remote.php/dav/bulk) over plain HTTP, as nextcloudcmd and Nextcloud's own
integration step send it: per-file results keyed by X-File-Path, per-file failures (bad MD5,
quota, missing folder, hostile name) that leave the others alone, malformed and truncated bodies,
a dropped connection, concurrent writers; never a half-written file."""

from __future__ import annotations

import hashlib
import threading

import anyio
import pytest
from starlette.testclient import TestClient

from cartable.core import accounts, fsck
from cartable.core.context import Core
from cartable.nextcloud import bulk as bulk_module
from tests.conftest import DAV, PASSWORD
from tests.nextcloud.davhelp import OC, bulk, bulk_body, bulk_part, multistatus


def test_good_files_with_mtimes_and_checksums(client: TestClient) -> None:
    assert client.request("MKCOL", f"{DAV}/dir").status_code == 201
    body = bulk_body(bulk_part("/A.txt", b"AAAAA", mtime="1111111111"),
                     bulk_part("dir/B.txt", b"B" * 20_000, mtime=None, extra="X-OC-Mtime: 2222222222\r\n"),
                     bulk_part("/empty.txt", b""),
                     bulk_part("/dir/é ü.txt", "ünïcode".encode(), extra="OC-Checksum: SHA1:"
                               + hashlib.sha1("ünïcode".encode()).hexdigest() + "\r\n"))
    r = bulk(client, body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    answer = r.json()
    assert list(answer) == ["/A.txt", "dir/B.txt", "/empty.txt", "/dir/é ü.txt"]  # exact X-File-Path keys
    for path, want in (("/A.txt", b"AAAAA"), ("dir/B.txt", b"B" * 20_000), ("/empty.txt", b""),
                       ("/dir/é ü.txt", "ünïcode".encode())):
        res = answer[path]
        assert res["error"] is False and res["permissions"] == "GDNVW"
        g = client.get(f"{DAV}/{path.lstrip('/')}")
        assert g.status_code == 200 and g.content == want
        assert g.headers["ETag"] == f'"{res["etag"]}"' and g.headers["OC-FileId"] == res["fileid"]  # unquoted etag
    assert client.head(f"{DAV}/A.txt").headers["Last-Modified"] == "Fri, 18 Mar 2005 01:58:31 GMT"
    assert client.head(f"{DAV}/dir/B.txt").headers["Last-Modified"] == "Sat, 02 Jun 2040 03:57:02 GMT"
    # The checksum the client sent is stored (or the MD5 when it sent none).
    assert client.get(f"{DAV}/dir/é ü.txt").headers["OC-Checksum"].startswith("SHA1:")
    assert client.get(f"{DAV}/A.txt").headers["OC-Checksum"] == "MD5:" + hashlib.md5(b"AAAAA").hexdigest()
    # Replacing in bulk: a new etag, the same file id.
    again = bulk(client, bulk_body(bulk_part("/A.txt", b"second"))).json()["/A.txt"]
    assert again["fileid"] == answer["/A.txt"]["fileid"] and again["etag"] != answer["/A.txt"]["etag"]
    assert client.get(f"{DAV}/A.txt").content == b"second"


@pytest.mark.parametrize("part, message", [
    (bulk_part("/bad-md5.txt", b"x", md5="0" * 32), "MD5"),
    (bulk_part("/nodir/c.txt", b"x"), "does not exist"),
    (bulk_part("../evil.txt", b"x"), "not allowed"),
    (bulk_part("/a/../../evil.txt", b"x"), "not allowed"),
    (bulk_part("/ctl\x01.txt", b"x"), "control character"),
    (bulk_part("/", b"x"), "root"),
    (bulk_part("/bad-mtime.txt", b"x", mtime="soon"), "X-OC-Mtime"),
    (bulk_part("/bad-sum.txt", b"x", extra="OC-Checksum: SHA1:" + "0" * 40 + "\r\n"), "SHA1"),
    (b"--boundary_azertyuiop\r\nX-File-Path: /nomd5.txt\r\nContent-Length: 1\r\n\r\nx\r\n", "X-File-MD5"),
    (bulk_part("/folder", b"x"), "folder"),
])
def test_one_failing_file_does_not_fail_the_others(client: TestClient, part: bytes, message: str) -> None:
    assert client.request("MKCOL", f"{DAV}/folder").status_code == 201
    r = bulk(client, bulk_body(bulk_part("/before.txt", b"1"), part, bulk_part("/after.txt", b"2")))
    assert r.status_code == 200
    answer = r.json()
    assert answer["/before.txt"]["error"] is False and answer["/after.txt"]["error"] is False
    (bad_key,) = [k for k in answer if k not in ("/before.txt", "/after.txt")]
    assert answer[bad_key]["error"] is True and message in answer[bad_key]["message"], answer[bad_key]
    assert client.get(f"{DAV}/before.txt").content == b"1" and client.get(f"{DAV}/after.txt").content == b"2"
    listing = client.request("PROPFIND", f"{DAV}/", headers={"Depth": "1"})
    assert "evil" not in listing.text and "bad-md5" not in listing.text and "nomd5" not in listing.text


def test_quota_exceeded_mid_batch(client: TestClient, core: Core) -> None:
    accounts.set_quota(core, "alice", 25_000)
    parts = [bulk_part(f"/f{i}.bin", bytes([i]) * 10_000) for i in range(4)]
    answer = bulk(client, bulk_body(*parts)).json()
    ok = [k for k, v in answer.items() if not v["error"]]
    refused = [k for k, v in answer.items() if v["error"]]
    assert len(ok) == 2 and len(refused) == 2
    assert all("quota" in answer[k]["message"] for k in refused)
    for k in ok:
        assert client.get(f"{DAV}{k}").content == bytes([int(k[2])]) * 10_000
    for k in refused:
        assert client.get(f"{DAV}{k}").status_code == 404
    data = client.get("/ocs/v1.php/cloud/user?format=json").json()["ocs"]["data"]
    assert data["quota"]["used"] == 20_000


@pytest.mark.parametrize("body, content_type", [
    (bulk_body(bulk_part("/a.txt", b"x")), "multipart/form-data; boundary=boundary_azertyuiop"),
    (bulk_body(bulk_part("/a.txt", b"x")), "multipart/related"),
    (bulk_body(bulk_part("/a.txt", b"x")), None),
    (b"garbage before\r\n" + bulk_body(bulk_part("/a.txt", b"x")), "multipart/related; boundary=boundary_azertyuiop"),
    (b"--boundary_azertyuiop\r\nX-File-Path: /a.txt\r\nX-File-MD5: x\r\n\r\nx\r\n--boundary_azertyuiop--\r\n",
     "multipart/related; boundary=boundary_azertyuiop"),                              # no Content-Length
    (b"--boundary_azertyuiop\r\nno colon here\r\nContent-Length: 1\r\n\r\nx\r\n--boundary_azertyuiop--\r\n",
     "multipart/related; boundary=boundary_azertyuiop"),
    (b"--boundary_azertyuiop\r\nContent-Length: 5\r\nX-File-MD5: x\r\nX-File-Path: /a\r\n\r\nxx\r\n"
     b"--boundary_azertyuiop--\r\n", "multipart/related; boundary=boundary_azertyuiop"),  # length too long
    (b"--boundary_azertyuiop\r\n" + b"X" * 20_000 + b"\r\n", "multipart/related; boundary=boundary_azertyuiop"),
])
def test_malformed_bodies_are_400(client: TestClient, body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/remote.php/dav/bulk", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert client.get(f"{DAV}/a.txt").status_code == 404


def test_truncated_body_keeps_whole_files_only(client: TestClient, core: Core) -> None:
    body = bulk_body(bulk_part("/one.txt", b"1" * 100), bulk_part("/two.bin", b"2" * 50_000))
    cut = body[:body.index(b"2" * 100) + 20_000]  # inside the second file's bytes
    r = bulk(client, cut)
    assert r.status_code == 400
    assert r.json() == {"/one.txt": r.json()["/one.txt"]} and r.json()["/one.txt"]["error"] is False
    assert client.get(f"{DAV}/one.txt").content == b"1" * 100
    assert client.get(f"{DAV}/two.bin").status_code == 404
    assert fsck.check(core).ok


def test_dropped_connection_commits_nothing_half_written(client: TestClient, core: Core) -> None:
    app = client.app
    body = bulk_body(bulk_part("/kept.txt", b"k" * 10), bulk_part("/lost.bin", b"l" * 100_000))
    cut = body.index(b"l" * 100) + 30_000
    messages = [{"type": "http.request", "body": body[:cut], "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    token = __import__("base64").b64encode(f"alice:{PASSWORD}".encode())
    scope = {"type": "http", "method": "POST", "path": "/remote.php/dav/bulk", "raw_path": b"/remote.php/dav/bulk",
             "query_string": b"", "headers": [(b"authorization", b"Basic " + token),
                                               (b"content-type", b"multipart/related; boundary=boundary_azertyuiop")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "scheme": "http", "http_version": "1.1"}
    anyio.run(app, scope, receive, send)
    assert client.get(f"{DAV}/kept.txt").content == b"k" * 10
    assert client.get(f"{DAV}/lost.bin").status_code == 404
    assert fsck.check(core).ok


def test_part_limits(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_module, "MAX_PART", 1000)
    monkeypatch.setattr(bulk_module, "MAX_PARTS", 3)
    answer = bulk(client, bulk_body(bulk_part("/big.bin", b"b" * 1001), bulk_part("/small.txt", b"s"))).json()
    assert answer["/big.bin"]["error"] is True and "PUT" in answer["/big.bin"]["message"]
    assert answer["/small.txt"]["error"] is False
    r = bulk(client, bulk_body(*(bulk_part(f"/n{i}.txt", b"n") for i in range(4))))
    assert r.status_code == 400 and len(r.json()) == 3


def test_same_path_twice_in_one_request_last_wins(client: TestClient) -> None:
    answer = bulk(client, bulk_body(bulk_part("/same.txt", b"first"), bulk_part("/same.txt", b"second"))).json()
    assert list(answer) == ["/same.txt"] and answer["/same.txt"]["error"] is False
    assert client.get(f"{DAV}/same.txt").content == b"second"


def test_many_files_and_concurrent_writers(client: TestClient, core: Core) -> None:
    """Two bulk requests and PUTs on overlapping paths at once: every file is whole, the answers
    match what is stored, and the metadata and chunks are consistent."""
    assert client.request("MKCOL", f"{DAV}/d").status_code == 201
    bodies = [{f"/d/f{i:03d}.bin": bytes([k]) * (100 + i * 97) for i in range(120)} for k in (1, 2)]
    results: list[dict] = [{}, {}]

    def send(k: int) -> None:
        with TestClient(client.app) as tc:
            tc.auth = ("alice", PASSWORD)
            results[k] = bulk(tc, bulk_body(*(bulk_part(p, d) for p, d in bodies[k].items()))).json()

    def puts() -> None:
        with TestClient(client.app) as tc:
            tc.auth = ("alice", PASSWORD)
            for i in range(0, 120, 10):
                assert tc.put(f"{DAV}/d/f{i:03d}.bin", content=b"put" * 10).status_code in (201, 204)

    threads = [threading.Thread(target=send, args=(k,)) for k in (0, 1)] + [threading.Thread(target=puts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not v["error"] for r in results for v in r.values())
    listing = multistatus(client.request("PROPFIND", f"{DAV}/d", headers={"Depth": "1"}, content=(
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/><oc:id/>'
        b"</d:prop></d:propfind>")).content)
    for i in range(120):
        path = f"/d/f{i:03d}.bin"
        got = client.get(f"{DAV}{path}").content
        assert got in (bodies[0][path], bodies[1][path], b"put" * 10)
        assert listing[f"{DAV}{path}"][f"{OC}id"] in (results[0][path]["fileid"], results[1][path]["fileid"])
    assert fsck.check(core).ok


def test_only_post_and_only_the_caller(client: TestClient) -> None:
    assert client.get("/remote.php/dav/bulk").status_code == 405
    r = client.post("/remote.php/dav/bulk", content=bulk_body(bulk_part("/a.txt", b"x")), auth=("alice", "wrong"),
                    headers={"Content-Type": "multipart/related; boundary=boundary_azertyuiop"})
    assert r.status_code == 401 and client.get(f"{DAV}/a.txt").status_code == 404


def test_switched_off_by_the_setting(core: Core, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cartable.server import build_app
    from tests.conftest import make_settings

    app = build_app(make_settings(tmp_path / "data", bulk_upload="false"), core)
    with TestClient(app) as tc:
        tc.auth = ("alice", PASSWORD)
        caps = tc.get("/ocs/v1.php/cloud/capabilities?format=json").json()["ocs"]["data"]["capabilities"]
        assert "bulkupload" not in caps["dav"]
        assert bulk(tc, bulk_body(bulk_part("/a.txt", b"x"))).status_code == 404


@pytest.mark.parametrize(("mode", "agent", "offered"), [
    ("auto", "Mozilla/5.0 (Linux) mirall/3.7.3git (nextcloudcmd, debian-6.1.0 ClientArchitecture: x86_64)", False),
    ("auto", "Mozilla/5.0 (Windows) mirall/3.8.2stable (Nextcloud, windows-10.0.19045)", False),
    ("auto", "Mozilla/5.0 (Windows) mirall/3.9.0stable (Nextcloud, windows-10.0.19045)", True),
    ("auto", "Mozilla/5.0 (Macintosh) mirall/3.16.4 (Nextcloud, osx-24.1.0)", True),
    ("auto", "Mozilla/5.0 (Android) Nextcloud-android/3.30.1", True),
    ("auto", "rclone/v1.60.1", True),
    ("true", "Mozilla/5.0 (Linux) mirall/3.7.3git (nextcloudcmd)", True),
    ("false", "Mozilla/5.0 (Android) Nextcloud-android/3.30.1", False),
])
def test_who_is_offered_bulk_upload(core: Core, tmp_path, mode: str, agent: str,  # type: ignore[no-untyped-def]
                                    offered: bool) -> None:
    """auto: everyone but desktop clients before 3.9 (they abort a bulk request holding an empty
    file, nextcloud/desktop#5824); the endpoint itself answers unless the setting is false."""
    from cartable.server import build_app
    from tests.conftest import make_settings

    app = build_app(make_settings(tmp_path / "data", bulk_upload=mode), core)
    with TestClient(app) as tc:
        tc.auth = ("alice", PASSWORD)
        caps = tc.get("/ocs/v1.php/cloud/capabilities?format=json",
                      headers={"User-Agent": agent}).json()["ocs"]["data"]["capabilities"]
        assert (caps["dav"].get("bulkupload") == "1.0") is offered
        served = bulk(tc, bulk_body(bulk_part("/a.txt", b"x"))).status_code
        assert served == (404 if mode == "false" else 200)
