# SPDX-License-Identifier: EUPL-1.2
"""Favorites as the Nextcloud apps use them: PROPPATCH oc:favorite 0/1, the property in
listings, REPORT oc:filter-files on any folder with paging; per user; gone with the node."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from tests.conftest import DAV
from tests.nextcloud.davhelp import OC, multistatus, report_favorites, set_favorite

FAV_PROPFIND = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                b"<d:prop><oc:favorite/></d:prop></d:propfind>")


def tree(client: TestClient) -> None:
    for d in ("A", "A/sub", "B"):
        assert client.request("MKCOL", f"{DAV}/{d}").status_code == 201
    for f in ("top.txt", "A/a1.txt", "A/a2.txt", "A/sub/deep é.txt", "B/b.txt"):
        assert client.put(f"{DAV}/{f}", content=f.encode()).status_code == 201


def favorite_of(client: TestClient, path: str) -> str:
    r = client.request("PROPFIND", f"{DAV}{path}", headers={"Depth": "0"}, content=FAV_PROPFIND)
    return next(iter(multistatus(r.content).values()))[f"{OC}favorite"]


def test_set_and_unset_shows_in_listings(client: TestClient) -> None:
    tree(client)
    assert favorite_of(client, "/A") == "0"
    set_favorite(client, "/A", True)
    set_favorite(client, "/A/sub/deep é.txt", True)
    set_favorite(client, "/A/sub/deep é.txt", True)  # twice is fine
    assert favorite_of(client, "/A") == "1" and favorite_of(client, "/A/sub/deep%20%C3%A9.txt") == "1"
    r = client.request("PROPFIND", f"{DAV}/A/sub", headers={"Depth": "1"}, content=FAV_PROPFIND)
    listed = multistatus(r.content)
    assert listed[f"{DAV}/A/sub/"][f"{OC}favorite"] == "0"
    assert listed[f"{DAV}/A/sub/deep é.txt"][f"{OC}favorite"] == "1"
    set_favorite(client, "/A", False)
    assert favorite_of(client, "/A") == "0"
    # A favorite is not a dead property: it never shows in allprop as one.
    assert "favorite" not in client.request("PROPFIND", f"{DAV}/A", headers={"Depth": "0"}).text


def test_report_on_root_and_subfolder_with_paging(client: TestClient) -> None:
    tree(client)
    for p in ("/top.txt", "/A/a1.txt", "/A/sub/deep é.txt", "/B"):
        set_favorite(client, p, True)
    set_favorite(client, "/A/a1.txt", False)
    everything = report_favorites(client, "/", "<oc:favorite/><oc:fileid/><a:getetag/>")
    assert set(everything) == {f"{DAV}/top.txt", f"{DAV}/A/sub/deep é.txt", f"{DAV}/B/"}
    assert all(v[f"{OC}favorite"] == "1" and v[f"{OC}fileid"] for v in everything.values())
    # On a sub-folder: only what is below it, with full hrefs.
    assert list(report_favorites(client, "/A")) == [f"{DAV}/A/sub/deep é.txt"]
    assert report_favorites(client, "/A/sub/") == {f"{DAV}/A/sub/deep é.txt": {f"{OC}favorite": "1"}}
    # Paging, both spellings (DAV:limit + nc:firstresult, and the older oc:search).
    page1 = report_favorites(client, "/", extra="<a:limit><a:nresults>2</a:nresults>"
                             "<nc:firstresult>0</nc:firstresult></a:limit>")
    page2 = report_favorites(client, "/", extra="<oc:search><oc:offset>2</oc:offset><oc:limit>2</oc:limit></oc:search>")
    assert len(page1) == 2 and len(page2) == 1 and set(page1) | set(page2) == set(everything)
    # The legacy root answers the same set.
    legacy = report_favorites(client, "/", base="/remote.php/webdav")
    assert len(legacy) == 3


@pytest.mark.parametrize("body, status", [
    (b'<oc:filter-files xmlns:oc="http://owncloud.org/ns" xmlns:d="DAV:"><d:prop><oc:favorite/></d:prop>'
     b"</oc:filter-files>", 400),                                          # no filter rules: would list everything
    (b'<oc:filter-files xmlns:oc="http://owncloud.org/ns"><oc:filter-rules/></oc:filter-files>', 400),
    (b'<d:sync-collection xmlns:d="DAV:"/>', 400),                         # an unsupported report
    (b"<oc:filter-files", 400),                                            # not XML
    (b'<!DOCTYPE x [<!ENTITY e "x">]><oc:filter-files xmlns:oc="http://owncloud.org/ns"/>', 400),
    (b'<oc:filter-files xmlns:oc="http://owncloud.org/ns" xmlns:d="DAV:"><oc:filter-rules><oc:favorite>1'
     b"</oc:favorite></oc:filter-rules><d:limit><d:nresults>-1</d:nresults></d:limit></oc:filter-files>", 400),
])
def test_report_refuses_bad_bodies(client: TestClient, body: bytes, status: int) -> None:
    r = client.request("REPORT", f"{DAV}/", content=body)
    assert r.status_code == status, r.text


def test_report_on_a_missing_folder_is_404_and_tags_match_nothing(client: TestClient) -> None:
    tree(client)
    set_favorite(client, "/top.txt", True)
    body = (b'<oc:filter-files xmlns:oc="http://owncloud.org/ns"><oc:filter-rules><oc:favorite>1</oc:favorite>'
            b"</oc:filter-rules></oc:filter-files>")
    assert client.request("REPORT", f"{DAV}/nowhere", content=body).status_code == 404
    tags = (b'<oc:filter-files xmlns:oc="http://owncloud.org/ns"><oc:filter-rules><oc:systemtag>1</oc:systemtag>'
            b"</oc:filter-rules></oc:filter-files>")
    r = client.request("REPORT", f"{DAV}/", content=tags)
    assert r.status_code == 207 and multistatus(r.content) == {}


def test_favorites_are_per_user_and_follow_moves_and_deletes(client: TestClient, core: Core) -> None:
    tree(client)
    accounts.create_user(core, "bob", "bob-secret-pw")
    bob = ("bob", "bob-secret-pw")
    assert client.put("/remote.php/dav/files/bob/mine.txt", content=b"b", auth=bob).status_code == 201
    set_favorite(client, "/A/a2.txt", True)
    set_favorite(client, "/A/sub", True)
    # bob sees none of alice's favorites, and cannot set one on her files.
    r = client.request("REPORT", "/remote.php/dav/files/bob/", auth=bob, content=(
        b'<oc:filter-files xmlns:oc="http://owncloud.org/ns"><oc:filter-rules><oc:favorite>1</oc:favorite>'
        b"</oc:filter-rules></oc:filter-files>"))
    assert r.status_code == 207 and multistatus(r.content) == {}
    body = (b'<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop>'
            b"<oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>")
    assert client.request("PROPPATCH", f"{DAV}/top.txt", content=body, auth=bob).status_code == 403
    # A move keeps the favorite; a delete (of the file, or of a folder above it) drops it.
    assert client.request("MOVE", f"{DAV}/A/a2.txt", headers={"Destination": f"{DAV}/B/moved.txt"}).status_code == 201
    assert set(report_favorites(client, "/")) == {f"{DAV}/B/moved.txt", f"{DAV}/A/sub/"}
    assert client.delete(f"{DAV}/A").status_code == 204
    assert set(report_favorites(client, "/")) == {f"{DAV}/B/moved.txt"}
    assert client.request("MKCOL", f"{DAV}/A").status_code == 201
    assert client.request("MKCOL", f"{DAV}/A/sub").status_code == 201
    assert favorite_of(client, "/A/sub") == "0"  # a new node at the old path is not a favorite
