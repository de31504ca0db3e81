# SPDX-License-Identifier: EUPL-1.2
"""Shares with users and groups over HTTP: the OCS Share API (shareType 0 and 1), the mount point
in each recipient's tree (/Shared/NAME), permissions enforced through it, group membership
changes, renaming and leaving a mount point, the owner's quota, and the change journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts, groups
from cartable.core.context import Core
from cartable.server import build_app
from tests.conftest import DAV, PASSWORD, make_settings
from tests.nextcloud.davhelp import multistatus

OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
JSON = {"OCS-APIRequest": "true", "Accept": "application/json"}
ALICE = ("alice", PASSWORD)
BOB = ("bob", "bob-secret-password")
CAROL = ("carol", "carol-secret-password")
DAVE = ("dave", "dave-secret-password")
BOB_DAV = "/remote.php/dav/files/bob"
CAROL_DAV = "/remote.php/dav/files/carol"
DAVE_DAV = "/remote.php/dav/files/dave"
PROPS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
         'xmlns:ocs="http://open-collaboration-services.org/ns"><d:prop><d:getetag/><oc:permissions/>'
         '<ocs:share-permissions/></d:prop></d:propfind>')

PERM = "{http://owncloud.org/ns}permissions"
SHARE_PERMS = "{http://open-collaboration-services.org/ns}share-permissions"


@pytest.fixture
def web(core: Core, tmp_path: Path) -> Iterator[TestClient]:
    for name, pw in (BOB, CAROL, DAVE):
        accounts.create_user(core, name, pw)
    app = build_app(make_settings(tmp_path / "data", login_max_delay_seconds=0.0), core)
    with TestClient(app, base_url="http://testserver") as tc:
        ok(tc.request("MKCOL", f"{DAV}/Cours", auth=ALICE), 201)
        ok(tc.put(f"{DAV}/Cours/lesson.txt", content=b"lesson", auth=ALICE), 201)
        ok(tc.request("MKCOL", f"{DAV}/Private", auth=ALICE), 201)
        ok(tc.put(f"{DAV}/Private/secret.txt", content=b"secret", auth=ALICE), 201)
        yield tc


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in codes, (r.status_code, r.text)
    return r


def share(web: TestClient, path: str, with_: str, perms: int, *, share_type: int = 0,
          auth: tuple[str, str] = ALICE, status: int = 200) -> dict[str, Any]:
    r = ok(web.post(OCS, data={"path": path, "shareType": share_type, "shareWith": with_, "permissions": perms},
                    headers=JSON, auth=auth), status)
    data: dict[str, Any] = r.json()["ocs"]
    return data["data"] if status == 200 else data["meta"]


def listing(web: TestClient, url: str, auth: tuple[str, str]) -> dict[str, dict[str, str]]:
    r = ok(web.request("PROPFIND", url, content=PROPS, headers={"Depth": "1"}, auth=auth), 207)
    return multistatus(r.content)


def test_a_user_share_appears_under_shared_and_reads(web: TestClient) -> None:
    data = share(web, "/Cours", "bob", 1)
    assert data["share_type"] == 0 and data["share_with"] == "bob" and data["permissions"] == 1
    root = listing(web, f"{BOB_DAV}/", BOB)
    assert f"{BOB_DAV}/Shared/" in root
    shared = listing(web, f"{BOB_DAV}/Shared/", BOB)
    entry = shared[f"{BOB_DAV}/Shared/Cours/"]
    assert entry[PERM].startswith("S") and "W" not in entry[PERM] and "CK" not in entry[PERM]
    assert entry[SHARE_PERMS] == "1"
    inside = listing(web, f"{BOB_DAV}/Shared/Cours/", BOB)
    assert f"{BOB_DAV}/Shared/Cours/lesson.txt" in inside
    assert ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 200).content == b"lesson"
    received = ok(web.get(OCS, params={"shared_with_me": "true"}, headers=JSON, auth=BOB), 200).json()
    [mine] = received["ocs"]["data"]
    assert mine["file_target"] == "/Shared/Cours" and mine["uid_owner"] == "alice"
    assert mine["item_type"] == "folder" and mine["permissions"] == 1
    made = ok(web.get(OCS, headers=JSON, auth=ALICE), 200).json()["ocs"]["data"]
    assert [s["share_with"] for s in made] == ["bob"]


def test_read_only_refuses_every_write_and_changes_nothing(web: TestClient) -> None:
    share(web, "/Cours", "bob", 1)
    base = f"{BOB_DAV}/Shared/Cours"
    ok(web.put(f"{base}/new.txt", content=b"x", auth=BOB), 403)
    ok(web.put(f"{base}/lesson.txt", content=b"x", auth=BOB), 403)
    ok(web.request("MKCOL", f"{base}/sub", auth=BOB), 403)
    ok(web.delete(f"{base}/lesson.txt", auth=BOB), 403)
    ok(web.request("MOVE", f"{base}/lesson.txt", headers={"Destination": f"{base}/renamed.txt"}, auth=BOB), 403)
    ok(web.put(f"{BOB_DAV}/mine.txt", content=b"mine", auth=BOB), 201)
    ok(web.request("MOVE", f"{BOB_DAV}/mine.txt", headers={"Destination": f"{base}/mine.txt"}, auth=BOB), 403)
    ok(web.request("COPY", f"{BOB_DAV}/mine.txt", headers={"Destination": f"{base}/mine.txt"}, auth=BOB), 403)
    assert ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200).content == b"lesson"
    assert set(listing(web, f"{DAV}/Cours/", ALICE)) == {f"{DAV}/Cours/", f"{DAV}/Cours/lesson.txt"}


def test_read_write_share_writes_land_in_the_owners_space(web: TestClient) -> None:
    share(web, "/Cours", "bob", 15)
    base = f"{BOB_DAV}/Shared/Cours"
    ok(web.put(f"{base}/homework.txt", content=b"done", auth=BOB), 201)
    ok(web.request("MKCOL", f"{base}/sub", auth=BOB), 201)
    ok(web.request("MOVE", f"{base}/homework.txt", headers={"Destination": f"{base}/sub/hw.txt"}, auth=BOB), 201)
    assert ok(web.get(f"{DAV}/Cours/sub/hw.txt", auth=ALICE), 200).content == b"done"
    ok(web.delete(f"{base}/lesson.txt", auth=BOB), 204)
    ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 404)
    entry = listing(web, f"{base}/", BOB)[f"{base}/sub/"]
    assert entry[PERM].startswith("S") and "CK" in entry[PERM] and "R" not in entry[PERM]


def test_nothing_above_the_shared_node_and_other_users_get_404(web: TestClient) -> None:
    share(web, "/Cours", "bob", 15)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/../Private/secret.txt", auth=BOB), 404, 400)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/%2e%2e/Private/secret.txt", auth=BOB), 404, 400)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 404)
    ok(web.request("PROPFIND", f"{CAROL_DAV}/Shared/", headers={"Depth": "1"}, auth=CAROL), 404)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 403)
    received = ok(web.get(OCS, params={"shared_with_me": "true"}, headers=JSON, auth=CAROL), 200).json()
    assert received["ocs"]["data"] == []


def test_group_share_reaches_members_now_and_later_and_leaves_with_them(web: TestClient, core: Core) -> None:
    groups.create_group(core, "profs")
    groups.add_member(core, "profs", "bob")
    share(web, "/Cours", "profs", 1, share_type=1)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 200)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 404)
    groups.add_member(core, "profs", "carol")
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 200)
    groups.remove_member(core, "profs", "bob")
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)
    assert f"{BOB_DAV}/Shared/Cours/" not in listing(web, f"{BOB_DAV}/Shared/", BOB)
    assert ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200).content == b"lesson"


def test_unshare_hides_the_mount_and_keeps_the_owners_files(web: TestClient) -> None:
    data = share(web, "/Cours", "bob", 15)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 200)
    ok(web.delete(f"{OCS}/{data['id']}", headers=JSON, auth=ALICE), 200)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)
    assert ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200).content == b"lesson"


def test_recipient_renames_moves_and_leaves_their_mount_point(web: TestClient, core: Core) -> None:
    groups.create_group(core, "profs")
    groups.add_member(core, "profs", "bob")
    groups.add_member(core, "profs", "carol")
    share(web, "/Cours", "profs", 1, share_type=1)
    ok(web.request("MOVE", f"{BOB_DAV}/Shared/Cours",
                   headers={"Destination": f"{BOB_DAV}/Maths"}, auth=BOB), 201)
    ok(web.get(f"{BOB_DAV}/Maths/lesson.txt", auth=BOB), 200)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 200)
    ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200)
    ok(web.delete(f"{BOB_DAV}/Maths", auth=BOB), 204)
    ok(web.get(f"{BOB_DAV}/Maths/lesson.txt", auth=BOB), 404)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 200)
    assert ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200).content == b"lesson"
    groups.add_member(core, "profs", "dave")  # a membership change does not bring bob's share back
    ok(web.get(f"{BOB_DAV}/Maths/lesson.txt", auth=BOB), 404)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)


def test_a_name_clash_gets_a_free_name(web: TestClient) -> None:
    ok(web.request("MKCOL", f"{BOB_DAV}/Shared", auth=BOB), 201)
    ok(web.request("MKCOL", f"{BOB_DAV}/Shared/Cours", auth=BOB), 201)
    share(web, "/Cours", "bob", 1)
    ok(web.get(f"{BOB_DAV}/Shared/Cours (2)/lesson.txt", auth=BOB), 200)
    received = ok(web.get(OCS, params={"shared_with_me": "true"}, headers=JSON, auth=BOB), 200).json()
    assert received["ocs"]["data"][0]["file_target"] == "/Shared/Cours (2)"


def test_writes_through_a_share_use_the_owners_quota(web: TestClient, core: Core) -> None:
    share(web, "/Cours", "bob", 15)
    used = accounts.get_user(core, "alice")
    accounts.set_quota(core, "alice", 100)
    r = ok(web.put(f"{BOB_DAV}/Shared/Cours/big.bin", content=b"x" * 1000, auth=BOB), 507)
    assert "owner of this shared folder is full" in r.text
    ok(web.get(f"{DAV}/Cours/big.bin", auth=ALICE), 404)
    ok(web.put(f"{BOB_DAV}/mine.bin", content=b"x" * 1000, auth=BOB), 201)  # bob's own space is not full
    assert used is not None


def test_reshare_never_widens_and_errors_say_what_to_do(web: TestClient) -> None:
    share(web, "/Cours", "bob", 1 | 16)
    share(web, "/Shared/Cours", "carol", 1, auth=BOB)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 200)
    mine = ok(web.get(OCS, params={"path": "/Shared/Cours", "reshares": "true"}, headers=JSON, auth=BOB), 200)
    assert [s["share_with"] for s in mine.json()["ocs"]["data"]] == ["carol"]
    meta = share(web, "/Shared/Cours", "dave", 15, auth=BOB, status=403)
    assert "permissions" in meta["message"]
    meta = share(web, "/Cours", "nobody", 1, status=404)
    assert "nobody" in meta["message"]
    meta = share(web, "/Cours", "nogroup", 1, share_type=1, status=404)
    assert "nogroup" in meta["message"]
    share(web, "/Cours", "alice", 1, status=400)
    share(web, "/Cours", "carol", 1, auth=CAROL, status=404)  # carol has no /Cours of her own
    share(web, "/Shared/Cours", "dave", 1, auth=CAROL, status=403)  # carol was given no share bit


def test_update_permissions_take_effect_at_once(web: TestClient) -> None:
    data = share(web, "/Cours", "bob", 1)
    ok(web.put(f"{BOB_DAV}/Shared/Cours/x.txt", content=b"x", auth=BOB), 403)
    r = ok(web.put(f"{OCS}/{data['id']}", data={"permissions": 5}, headers=JSON, auth=ALICE), 200)
    assert r.json()["ocs"]["data"]["permissions"] == 5
    ok(web.put(f"{BOB_DAV}/Shared/Cours/x.txt", content=b"x", auth=BOB), 201)
    ok(web.put(f"{OCS}/{data['id']}", data={"permissions": 5}, headers=JSON, auth=CAROL), 404)


def test_search_and_favorites_of_a_recipient_stay_in_their_space(web: TestClient) -> None:
    share(web, "/Private", "bob", 1)
    ok(web.request("PROPPATCH", f"{BOB_DAV}/Shared/Private/secret.txt", auth=BOB,
                   content='<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                           '<d:set><d:prop><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>'), 403, 207)
    body = ('<?xml version="1.0"?><oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            '<d:getetag/></d:prop><oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules></oc:filter-files>')
    r = ok(web.request("REPORT", f"{BOB_DAV}/", content=body, auth=BOB), 207)
    assert "secret" not in r.text


def test_the_journal_sees_a_mount_appear_and_disappear(web: TestClient) -> None:
    r = ok(web.get("/api/v1/changes", auth=BOB), 200)
    cursor = r.json()["cursor"]
    data = share(web, "/Cours", "bob", 1)
    r = ok(web.get("/api/v1/changes", params={"cursor": cursor}, auth=BOB), 200)
    entries = r.json()["changes"]
    assert [(e["op"], e["name"]) for e in entries][-1] == ("create", "Cours")
    cursor = r.json()["cursor"]
    ok(web.delete(f"{OCS}/{data['id']}", headers=JSON, auth=ALICE), 200)
    entries = ok(web.get("/api/v1/changes", params={"cursor": cursor}, auth=BOB), 200).json()["changes"]
    assert [(e["op"], e["name"]) for e in entries] == [("unshare", "Cours")]


def test_a_change_inside_the_share_changes_the_recipients_root_etag(web: TestClient) -> None:
    share(web, "/Cours", "bob", 1)

    def etag(url: str) -> str:
        r = ok(web.request("PROPFIND", url, content=PROPS, headers={"Depth": "0"}, auth=BOB), 207)
        return next(iter(multistatus(r.content).values()))["{DAV:}getetag"]

    before = etag(f"{BOB_DAV}/"), etag(f"{BOB_DAV}/Shared/"), etag(f"{BOB_DAV}/Shared/Cours/")
    ok(web.put(f"{DAV}/Cours/lesson.txt", content=b"lesson, corrected", auth=ALICE), 204, 201)
    after = etag(f"{BOB_DAV}/"), etag(f"{BOB_DAV}/Shared/"), etag(f"{BOB_DAV}/Shared/Cours/")
    assert all(b != a for b, a in zip(before, after, strict=True)), (before, after)
    assert etag(f"{BOB_DAV}/") == after[0]  # stable while nothing changes


def test_a_reshare_goes_when_its_maker_loses_the_share_it_came_from(web: TestClient) -> None:
    data = share(web, "/Cours", "bob", 1 | 2 | 16)
    share(web, "/Shared/Cours", "carol", 3, auth=BOB)
    ok(web.put(f"{CAROL_DAV}/Shared/Cours/lesson.txt", content=b"carol", auth=CAROL), 204)
    ok(web.put(f"{OCS}/{data['id']}", data={"permissions": 1 | 16}, headers=JSON, auth=ALICE), 200)
    ok(web.put(f"{CAROL_DAV}/Shared/Cours/lesson.txt", content=b"again", auth=CAROL), 403)  # narrowed
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 200)
    ok(web.put(f"{OCS}/{data['id']}", data={"permissions": 1}, headers=JSON, auth=ALICE), 200)
    ok(web.get(f"{CAROL_DAV}/Shared/Cours/lesson.txt", auth=CAROL), 404)  # bob may no longer reshare
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 200)
    share(web, "/Shared/Cours", "carol", 1, auth=BOB, status=403)
    ok(web.delete(f"{OCS}/{data['id']}", headers=JSON, auth=ALICE), 200)
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)
    assert ok(web.get(f"{DAV}/Cours/lesson.txt", auth=ALICE), 200).content == b"carol"


def test_deleting_the_group_unshares_in_the_members_journals(web: TestClient, core: Core) -> None:
    groups.create_group(core, "profs")
    groups.add_member(core, "profs", "bob")
    share(web, "/Cours", "profs", 1, share_type=1)
    cursor = ok(web.get("/api/v1/changes", auth=BOB), 200).json()["cursor"]
    groups.delete_group(core, "profs")
    entries = ok(web.get("/api/v1/changes", params={"cursor": cursor}, auth=BOB), 200).json()["changes"]
    assert [(e["op"], e["name"]) for e in entries] == [("unshare", "Cours")]
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)
    groups.create_group(core, "profs")
    groups.add_member(core, "profs", "bob")  # a new group of the same name inherits nothing
    ok(web.get(f"{BOB_DAV}/Shared/Cours/lesson.txt", auth=BOB), 404)


SHARE_PROPS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
               'xmlns:nc="http://nextcloud.org/ns"><d:prop><oc:share-types/><nc:sharees/><oc:owner-id/>'
               '<oc:owner-display-name/></d:prop></d:propfind>')
OC_NS, NC_NS = "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"


def test_webdav_shows_share_types_sharees_and_the_owner(web: TestClient, core: Core) -> None:
    groups.create_group(core, "profs", "Les profs")
    share(web, "/Cours", "bob", 1)
    share(web, "/Cours", "profs", 1, share_type=1)
    ok(web.post(OCS, data={"path": "/Cours", "shareType": 3}, headers=JSON, auth=ALICE), 200)
    r = ok(web.request("PROPFIND", f"{DAV}/", content=SHARE_PROPS, headers={"Depth": "1"}, auth=ALICE), 207)
    props = multistatus(r.content)
    cours, private = props[f"{DAV}/Cours/"], props[f"{DAV}/Private/"]
    assert cours[f"{OC_NS}share-types"].count("<oc:share-type") == 3
    assert all(f">{t}<" in cours[f"{OC_NS}share-types"] for t in (0, 1, 3))
    assert ">bob<" in cours[f"{NC_NS}sharees"] and "Les profs" in cours[f"{NC_NS}sharees"]
    assert private.get(f"{OC_NS}share-types", "") == "" and cours[f"{OC_NS}owner-id"] == "alice"
    r = ok(web.request("PROPFIND", f"{BOB_DAV}/Shared/", content=SHARE_PROPS, headers={"Depth": "1"}, auth=BOB), 207)
    mounted = multistatus(r.content)[f"{BOB_DAV}/Shared/Cours/"]
    assert mounted[f"{OC_NS}owner-id"] == "alice"
    r = ok(web.request("PROPFIND", f"{BOB_DAV}/Shared/Cours/", content=SHARE_PROPS, headers={"Depth": "1"},
                       auth=BOB), 207)
    inside = multistatus(r.content)[f"{BOB_DAV}/Shared/Cours/lesson.txt"]
    assert inside[f"{OC_NS}owner-id"] == "alice" and inside.get(f"{OC_NS}share-types", "") == ""
