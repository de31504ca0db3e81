# SPDX-License-Identifier: EUPL-1.2
"""Public links over HTTP: the OCS Share API, WebDAV through /public.php/dav/files/{token} and the
legacy /public.php/webdav, /s/{token}/download, the security headers of content served through a
link, hostile paths and Destinations, passwords, and the owner's quota (507)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from cartable.server import build_app
from tests.conftest import DAV, PASSWORD, make_settings

OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
OCS1 = "/ocs/v1.php/apps/files_sharing/api/v1/shares"
PUB = "/public.php/dav/files"
JSON = {"OCS-APIRequest": "true", "Accept": "application/json"}


@pytest.fixture
def web(core: Core, tmp_path: Path) -> Iterator[TestClient]:
    """A client of a server whose throttling never waits (the tests count failures, not time)."""
    app = build_app(make_settings(tmp_path / "data", login_max_delay_seconds=0.0), core)
    with TestClient(app, base_url="http://testserver") as tc:
        yield tc


ALICE = ("alice", PASSWORD)


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in codes, (r.status_code, r.text)
    return r


def make_link(web: TestClient, path: str, **params: object) -> dict[str, Any]:
    r = ok(web.post(OCS, data={"path": path, "shareType": 3, **params}, headers=JSON, auth=ALICE), 200)
    data: dict[str, Any] = r.json()["ocs"]["data"]
    return data


def seed(web: TestClient) -> None:
    ok(web.request("MKCOL", f"{DAV}/class", auth=ALICE), 201)
    ok(web.request("MKCOL", f"{DAV}/private", auth=ALICE), 201)
    ok(web.put(f"{DAV}/class/a.txt", content=b"lesson", auth=ALICE), 201)
    ok(web.put(f"{DAV}/class/page.html", content=b"<script>alert(1)</script>", auth=ALICE), 201)
    ok(web.put(f"{DAV}/private/secret.txt", content=b"secret", auth=ALICE), 201)


def test_ocs_create_list_get_update_delete(web: TestClient) -> None:
    seed(web)
    share = make_link(web, "/class", permissions=1, label="parents", note="for Monday", expireDate="2999-01-31")
    assert share["share_type"] == 3 and share["path"] == "/class" and share["item_type"] == "folder"
    assert share["url"] == f"http://testserver/s/{share['token']}" and len(share["token"]) == 32
    assert share["expiration"] == "2999-01-31 00:00:00" and share["password"] == ""
    listed = ok(web.get(OCS, headers=JSON, auth=ALICE), 200).json()["ocs"]["data"]
    assert [s["id"] for s in listed] == [share["id"]]
    by_path = ok(web.get(OCS, params={"path": "/class"}, headers=JSON, auth=ALICE), 200).json()["ocs"]["data"]
    assert len(by_path) == 1
    mine = ok(web.get(OCS, params={"shared_with_me": "true"}, headers=JSON, auth=ALICE), 200)
    assert mine.json()["ocs"]["data"] == []
    one = ok(web.get(f"{OCS}/{share['id']}", headers=JSON, auth=ALICE), 200).json()["ocs"]["data"]
    assert one[0]["label"] == "parents"
    updated = ok(web.put(f"{OCS}/{share['id']}", data={"permissions": 15, "password": "pw-for-parents",
                                                         "expireDate": ""}, headers=JSON, auth=ALICE), 200)
    data = updated.json()["ocs"]["data"]
    assert data["permissions"] == 15 and data["password"] == "********" and data["expiration"] is None
    # v1 twin, XML envelope
    r = ok(web.get(OCS1, auth=ALICE, headers={"OCS-APIRequest": "true"}), 200)
    assert "<share_type>3</share_type>" in r.text and "<statuscode>100</statuscode>" in r.text
    ok(web.delete(f"{OCS}/{share['id']}", headers=JSON, auth=ALICE), 200)
    ok(web.request("PROPFIND", f"{PUB}/{share['token']}/", headers={"Depth": "1"}), 404)


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"path": "/nope", "shareType": 3}, 404, "does not exist"),
    ({"path": "/", "shareType": 3}, 403, "whole space"),
    ({"path": "/class", "shareType": 0, "shareWith": "bob"}, 404, "no user 'bob'"),
    ({"path": "/class", "shareType": 4, "shareWith": "x@example.org"}, 400, "shareType must be"),
    ({"path": "/class/a.txt", "shareType": 3, "publicUpload": "true"}, 400, "is a file"),
    ({"path": "/class", "shareType": 3, "permissions": 2}, 400, "permissions"),
    ({"path": "/class", "shareType": 3, "expireDate": "tomorrow"}, 400, "YYYY-MM-DD"),
    ({"path": "/class", "shareType": 3, "expireDate": "2001-01-01"}, 400, "past"),
    ({"shareType": 3}, 400, "path"),
])
def test_ocs_errors_say_what_to_do(web: TestClient, params: dict[str, object], status: int, words: str) -> None:
    seed(web)
    r = web.post(OCS, data=params, headers=JSON, auth=ALICE)
    assert r.status_code == status, r.text
    assert words in r.json()["ocs"]["meta"]["message"]
    r1 = web.post(OCS1, data=params, headers=JSON, auth=ALICE)
    assert r1.status_code == 200 and r1.json()["ocs"]["meta"]["statuscode"] == status


def test_capabilities_advertise_links_user_and_group_shares(web: TestClient) -> None:
    caps = ok(web.get("/ocs/v2.php/cloud/capabilities", headers=JSON), 200).json()["ocs"]["data"]["capabilities"]
    sharing = caps["files_sharing"]
    assert sharing["api_enabled"] and sharing["public"]["enabled"] and sharing["public"]["upload"]
    assert sharing["resharing"] is True and sharing["public"]["password"]["enforced"] is False
    assert sharing["group_sharing"] is True and sharing["group"]["enabled"] is True
    assert sharing["user"]["send_mail"] is False
    assert "sharebymail" not in caps


def test_public_webdav_and_download(web: TestClient) -> None:
    seed(web)
    token = make_link(web, "/class", permissions=1)["token"]
    r = ok(web.request("PROPFIND", f"{PUB}/{token}/", headers={"Depth": "1"}), 207)
    assert f"{PUB}/{token}/a.txt" in r.text and "secret" not in r.text
    r = ok(web.get(f"{PUB}/{token}/page.html"), 200)
    assert r.content == b"<script>alert(1)</script>"
    assert r.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"
    # legacy: token as the Basic user
    r = ok(web.request("PROPFIND", "/public.php/webdav/", headers={"Depth": "1"}, auth=(token, "")), 207)
    assert "/public.php/webdav/a.txt" in r.text
    ok(web.get("/public.php/webdav/a.txt", auth=(token, "")), 200)
    ok(web.get("/public.php/webdav/a.txt"), 401)
    # /s/{token}/download: the folder as a zip, one file, a subpath
    assert ok(web.get(f"/s/{token}", follow_redirects=False), 303).headers["location"] == f"/s/{token}/download"
    r = ok(web.get(f"/s/{token}/download"), 200)
    assert r.headers["content-type"] == "application/zip" and "sandbox" in r.headers["content-security-policy"]
    assert sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())[-2:] == ["files/a.txt", "files/page.html"] or \
        "a.txt" in "".join(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    r = ok(web.get(f"/s/{token}/download", params={"files": "a.txt"}), 200)
    assert r.content == b"lesson" and r.headers["content-disposition"].startswith("attachment")
    r = ok(web.get(f"/s/{token}/download", params={"files": json.dumps(["a.txt", "page.html"])}), 200)
    assert sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == ["a.txt", "page.html"]
    file_token = make_link(web, "/class/a.txt")["token"]
    r = ok(web.get(f"/s/{file_token}/download"), 200)
    assert r.content == b"lesson" and "a.txt" in r.headers["content-disposition"]
    assert ok(web.get(f"{PUB}/{file_token}"), 200).content == b"lesson"


def test_password_by_basic_auth_any_user(web: TestClient) -> None:
    seed(web)
    token = make_link(web, "/class", password="for-the-parents")["token"]
    r = ok(web.get(f"{PUB}/{token}/a.txt"), 401)
    assert r.headers["www-authenticate"].startswith("Basic")
    ok(web.get(f"{PUB}/{token}/a.txt", auth=("whoever", "wrong")), 401)
    ok(web.get(f"{PUB}/{token}/a.txt", auth=("whoever", "for-the-parents")), 200)
    ok(web.get("/public.php/webdav/a.txt", auth=(token, "for-the-parents")), 200)
    ok(web.get("/public.php/webdav/a.txt", auth=(token, "nope")), 401)
    ok(web.get(f"/s/{token}/download", params={"files": "a.txt"}, auth=("", "for-the-parents")), 200)


def test_download_limit_over_http(web: TestClient, core: Core) -> None:
    seed(web)
    share = make_link(web, "/class")
    from cartable.core import shares
    from cartable.core.tree import Op
    from tests.core.conftest import principal

    shares.update_link(core, Op(principal(core)), int(share["id"]), download_limit=1)
    ok(web.get(f"{PUB}/{share['token']}/a.txt"), 200)
    r = ok(web.get(f"{PUB}/{share['token']}/a.txt"), 403)
    assert "download limit" in r.text
    ok(web.request("PROPFIND", f"{PUB}/{share['token']}/", headers={"Depth": "1"}), 207)  # browsing is not a download


def test_hostile_paths_and_destinations(web: TestClient) -> None:
    seed(web)
    token = make_link(web, "/class", permissions=15)["token"]
    other = make_link(web, "/private", permissions=15)["token"]
    base = f"{PUB}/{token}"
    for path in ("/../private/secret.txt", "/%2e%2e/private/secret.txt", "/a%00.txt", "/..%2fprivate%2fsecret.txt"):
        r = web.get(base + path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert b"secret" not in r.content
    for dest in (f"{DAV}/private/stolen.txt", f"http://testserver{DAV}/stolen.txt", f"{PUB}/{other}/stolen.txt",
                 f"{base}/../private/stolen.txt", "http://elsewhere.example/x", "/public.php/webdav/stolen.txt"):
        for method in ("MOVE", "COPY"):
            r = web.request(method, f"{base}/a.txt", headers={"Destination": dest})
            assert r.status_code in (400, 403), (method, dest, r.status_code, r.text)
    ok(web.get(f"{DAV}/class/a.txt", auth=ALICE), 200)
    ok(web.get(f"{DAV}/private/stolen.txt", auth=ALICE), 404)
    ok(web.get(f"{DAV}/stolen.txt", auth=ALICE), 404)
    # account-only methods are not offered through a link
    ok(web.request("REPORT", f"{base}/", content=b"<x/>"), 405)
    ok(web.request("SEARCH", f"{base}/", content=b"<x/>"), 405)


def test_a_full_owner_refuses_writes_through_the_link_with_507(web: TestClient, core: Core) -> None:
    seed(web)
    token = make_link(web, "/class", permissions=15)["token"]
    from cartable.core import files
    from tests.core.conftest import principal

    used = files.usage(core, principal(core)).used
    accounts.set_quota(core, "alice", used + 3)
    r = ok(web.put(f"{PUB}/{token}/big.bin", content=b"x" * 1000), 507)
    assert "quota" in r.text
    ok(web.get(f"{DAV}/class/big.bin", auth=ALICE), 404)
    ok(web.put(f"{PUB}/{token}/tiny.bin", content=b"xy"), 201)
    assert files.usage(core, principal(core)).used == used + 2


def test_oc_permissions_show_what_the_link_allows(web: TestClient) -> None:
    seed(web)
    body = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            b"<oc:permissions/></d:prop></d:propfind>")
    for perms, folder, file in ((1, "G", "G"), (15, "GDNVCK", "GDNVW"), (5, "GCK", "G")):
        token = make_link(web, "/class", permissions=perms)["token"]
        r = ok(web.request("PROPFIND", f"{PUB}/{token}/", content=body, headers={"Depth": "1"}), 207)
        found = r.text.split("<oc:permissions>")[1:]
        values = sorted(v.split("<")[0] for v in found)
        assert values == sorted([folder, file, file]), (perms, values)


def test_wrong_link_passwords_are_throttled(core: Core, tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "data", login_max_delay_seconds=0.0, login_max_failures_per_user=2), core)
    with TestClient(app, base_url="http://testserver") as web:
        seed(web)
        token = make_link(web, "/class", password="right-one")["token"]
        for _ in range(3):  # the counters leak as time passes: the third failure puts them over the cap
            ok(web.get(f"{PUB}/{token}/a.txt", auth=("x", "wrong")), 401, 429)
        r = ok(web.get(f"{PUB}/{token}/a.txt", auth=("x", "right-one")), 429)
        assert int(r.headers["retry-after"]) > 0
