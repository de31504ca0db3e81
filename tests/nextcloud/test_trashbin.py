# SPDX-License-Identifier: EUPL-1.2
"""The trashbin and versions collections over WebDAV, as the Nextcloud clients and the server's
own integration steps (features/trashbin.feature, versions.feature) use them: PROPFIND shapes,
MOVE to restore/, DELETE to purge or empty, GET, and another user's items out of reach."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts, files
from cartable.core.context import Core
from tests.conftest import DAV
from tests.nextcloud.davhelp import NC, NS, OC, D, multistatus

TRASH = "/remote.php/dav/trashbin/alice/trash"
RESTORE = "/remote.php/dav/trashbin/alice/restore"
VERSIONS = "/remote.php/dav/versions/alice"
TRASH_PROPS = (f'<?xml version="1.0"?><d:propfind {NS}><d:prop><nc:trashbin-filename/>'
               "<nc:trashbin-original-location/><nc:trashbin-deletion-time/><d:getcontentlength/>"
               "<d:resourcetype/><oc:fileid/><oc:permissions/><d:displayname/><d:getetag/></d:prop></d:propfind>")
VERSION_PROPS = (f'<?xml version="1.0"?><d:propfind {NS}><d:prop><d:getcontentlength/><d:getlastmodified/>'
                 "<d:getetag/><d:getcontenttype/><d:resourcetype/></d:prop></d:propfind>")
BOB = ("bob", "bob-secret-pw")


def ok(r, *codes: int):  # type: ignore[no-untyped-def]
    assert r.status_code in codes, (r.status_code, r.text)
    return r


def propfind(client: TestClient, url: str, body: str = TRASH_PROPS, depth: str = "1",
             **kw: object) -> dict[str, dict[str, str]]:
    r = ok(client.request("PROPFIND", url, content=body.encode(), headers={"Depth": depth}, **kw), 207)  # type: ignore[arg-type]
    return multistatus(r.content)


def trash_items(client: TestClient) -> dict[str, dict[str, str]]:
    return {href: props for href, props in propfind(client, TRASH + "/").items() if href != TRASH + "/"}


@pytest.fixture
def bob(core: Core) -> None:
    accounts.create_user(core, *BOB)


def test_delete_lists_restores_and_purges(client: TestClient, core: Core) -> None:
    ok(client.request("MKCOL", f"{DAV}/docs"), 201)
    ok(client.put(f"{DAV}/docs/a.txt", content=b"alpha"), 201)
    ok(client.put(f"{DAV}/b.txt", content=b"beta"), 201)
    ok(client.delete(f"{DAV}/docs"), 204)
    ok(client.delete(f"{DAV}/b.txt"), 204)
    ok(client.get(f"{DAV}/docs/a.txt"), 404)
    items = trash_items(client)
    assert len(items) == 2
    (docs_href, docs), = [(h, p) for h, p in items.items() if p[f"{NC}trashbin-filename"] == "docs"]
    stamp = docs[f"{NC}trashbin-deletion-time"]
    assert docs_href == f"{TRASH}/docs.d{stamp}/" and stamp.isdigit()
    assert docs[f"{NC}trashbin-original-location"] == "docs"
    assert docs[f"{D}resourcetype"].startswith("<d:collection ")
    assert docs[f"{OC}permissions"] == "GD" and docs[f"{D}displayname"] == "docs"
    b = next(p for p in items.values() if p[f"{NC}trashbin-filename"] == "b.txt")
    assert b[f"{D}getcontentlength"] == "4" and b[f"{NC}trashbin-original-location"] == "b.txt"
    # Browse the trashed folder and download a file in it.
    inside = propfind(client, docs_href)
    assert f"{docs_href}a.txt" in inside
    assert inside[f"{docs_href}a.txt"][f"{NC}trashbin-original-location"] == "docs/a.txt"
    got = ok(client.get(f"{docs_href}a.txt"), 200)
    assert got.content == b"alpha" and "attachment" in got.headers["content-disposition"]
    # Restore: MOVE to restore/ANYNAME puts it back where it was.
    ok(client.request("MOVE", docs_href, headers={"Destination": f"http://testserver{RESTORE}/docs"}), 201)
    assert ok(client.get(f"{DAV}/docs/a.txt"), 200).content == b"alpha"
    # Purge one item, then empty the trash.
    b_href = next(h for h in trash_items(client))
    ok(client.delete(b_href), 204)
    assert trash_items(client) == {}
    ok(client.delete(f"{DAV}/docs/a.txt"), 204)
    ok(client.delete(f"{DAV}/docs"), 204)
    assert len(trash_items(client)) == 2
    ok(client.delete(TRASH + "/"), 204)
    assert trash_items(client) == {}
    ok(client.delete(b_href), 404)


def test_restore_beside_a_new_file_of_the_same_name(client: TestClient) -> None:
    ok(client.put(f"{DAV}/r.txt", content=b"old"), 201)
    ok(client.delete(f"{DAV}/r.txt"), 204)
    ok(client.put(f"{DAV}/r.txt", content=b"new"), 201)
    href = next(iter(trash_items(client)))
    ok(client.request("MOVE", href, headers={"Destination": f"{RESTORE}/r.txt"}), 201)
    assert client.get(f"{DAV}/r.txt").content == b"new"
    assert client.get(f"{DAV}/r (restored).txt").content == b"old"


@pytest.mark.parametrize(("destination", "status"), [
    (None, 400),
    (f"{DAV}/elsewhere.txt", 403),
    (f"{RESTORE}", 403),
    ("http://other.example/remote.php/dav/trashbin/alice/restore/x", 403),
    ("/remote.php/dav/trashbin/bob/restore/x", 403),
])
def test_a_trashed_item_only_moves_to_restore(client: TestClient, destination: str | None, status: int) -> None:
    ok(client.put(f"{DAV}/m.txt", content=b"m"), 201)
    ok(client.delete(f"{DAV}/m.txt"), 204)
    href = next(iter(trash_items(client)))
    headers = {"Destination": destination} if destination else {}
    ok(client.request("MOVE", href, headers=headers), status)
    assert list(trash_items(client)) == [href]


def test_another_users_trash_is_refused(client: TestClient, bob: None) -> None:
    ok(client.put(f"{DAV}/secret.txt", content=b"s"), 201)
    ok(client.delete(f"{DAV}/secret.txt"), 204)
    href = next(iter(trash_items(client)))
    name = href.rsplit("/", 1)[-1]
    for method, url, headers in [("PROPFIND", TRASH + "/", {"Depth": "1"}), ("GET", href, {}),
                                 ("DELETE", href, {}), ("DELETE", TRASH + "/", {}),
                                 ("MOVE", href, {"Destination": f"{RESTORE}/x"})]:
        ok(client.request(method, url, headers=headers, auth=BOB), 403)
    # Bob naming alice's item in his own trash finds nothing.
    ok(client.get(f"/remote.php/dav/trashbin/bob/trash/{name}", auth=BOB), 404)
    ok(client.request("MOVE", f"/remote.php/dav/trashbin/bob/trash/{name}", auth=BOB,
                      headers={"Destination": "/remote.php/dav/trashbin/bob/restore/x"}), 404)
    assert list(propfind(client, "/remote.php/dav/trashbin/bob/trash/", auth=BOB)) == [
        "/remote.php/dav/trashbin/bob/trash/"]
    assert list(trash_items(client)) == [href]
    ok(client.request("PROPFIND", TRASH + "/", headers={"Depth": "1"}, auth=("alice", "wrong")), 401)


def test_capabilities_advertise_undelete_and_versioning(client: TestClient) -> None:
    caps = ok(client.get("/ocs/v2.php/cloud/capabilities?format=json"), 200).json()["ocs"]["data"]["capabilities"]
    assert caps["files"]["undelete"] is True and caps["files"]["versioning"] is True


def file_id(core: Core, name: str) -> int:
    from tests.core.conftest import principal

    return files.stat(core, principal(core), (name,)).id


def test_versions_list_download_restore_delete(client: TestClient, core: Core) -> None:
    ok(client.put(f"{DAV}/v.txt", content=b"first", headers={"X-OC-Mtime": "1700000000"}), 201)
    ok(client.put(f"{DAV}/v.txt", content=b"second!"), 204)
    fid = file_id(core, "v.txt")
    listing = propfind(client, f"{VERSIONS}/versions/{fid}/", VERSION_PROPS)
    entries = {h: p for h, p in listing.items() if h != f"{VERSIONS}/versions/{fid}/"}
    assert len(entries) == 1
    (href, props), = entries.items()
    assert href.startswith(f"{VERSIONS}/versions/{fid}/")
    assert props[f"{D}getcontentlength"] == "5"
    assert props[f"{D}getlastmodified"] == "Tue, 14 Nov 2023 22:13:20 GMT"  # the mtime it had
    assert props[f"{D}getetag"].startswith('"') and props[f"{D}getcontenttype"] == "text/plain"
    assert ok(client.get(href), 200).content == b"first"
    ok(client.request("MOVE", href, headers={"Destination": f"http://testserver{VERSIONS}/restore/target"}), 201)
    assert client.get(f"{DAV}/v.txt").content == b"first"
    after = {h: p for h, p in propfind(client, f"{VERSIONS}/versions/{fid}/", VERSION_PROPS).items()
             if h != f"{VERSIONS}/versions/{fid}/"}
    assert [p[f"{D}getcontentlength"] for p in after.values()] == ["7"]
    (second,) = after
    ok(client.request("COPY", second, headers={"Destination": f"{VERSIONS}/restore/target"}), 201)
    assert client.get(f"{DAV}/v.txt").content == b"second!"
    gone = next(h for h in propfind(client, f"{VERSIONS}/versions/{fid}/", VERSION_PROPS)
                if h != f"{VERSIONS}/versions/{fid}/")
    ok(client.delete(gone), 204)
    assert list(propfind(client, f"{VERSIONS}/versions/{fid}/", VERSION_PROPS)) == [f"{VERSIONS}/versions/{fid}/"]
    ok(client.get(gone), 404)


def test_another_users_versions_are_refused(client: TestClient, core: Core, bob: None) -> None:
    ok(client.put(f"{DAV}/v.txt", content=b"1"), 201)
    ok(client.put(f"{DAV}/v.txt", content=b"2"), 204)
    fid = file_id(core, "v.txt")
    href = next(h for h in propfind(client, f"{VERSIONS}/versions/{fid}/", VERSION_PROPS)
                if h != f"{VERSIONS}/versions/{fid}/")
    vid = href.rsplit("/", 1)[-1]
    for method, url, headers in [("PROPFIND", f"{VERSIONS}/versions/{fid}/", {"Depth": "1"}), ("GET", href, {}),
                                 ("DELETE", href, {}), ("MOVE", href, {"Destination": f"{VERSIONS}/restore/target"})]:
        ok(client.request(method, url, headers=headers, auth=BOB), 403)
    bobs = f"/remote.php/dav/versions/bob/versions/{fid}"
    for method, url, headers in [("PROPFIND", f"{bobs}/", {"Depth": "1"}), ("GET", f"{bobs}/{vid}", {}),
                                 ("DELETE", f"{bobs}/{vid}", {}),
                                 ("MOVE", f"{bobs}/{vid}", {"Destination": "/remote.php/dav/versions/bob/restore/t"})]:
        ok(client.request(method, url, headers=headers, auth=BOB), 404)
    ok(client.request("MOVE", href, headers={"Destination": f"{DAV}/v.txt"}), 403)
    ok(client.get(f"{VERSIONS}/versions/notanumber/1"), 404)
    assert client.get(f"{DAV}/v.txt").content == b"2"
