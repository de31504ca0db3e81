# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/files_features/trashbin.feature, and
dav_features/file-versions.feature. The steps list a trash folder with PROPFIND Depth 1 on
/remote.php/dav/trashbin/USER/trash/ (a sub-folder: the trashed folder's item, found by its
nc:trashbin-filename), and restore by MOVE of the item whose nc:trashbin-original-location is
the path to /remote.php/dav/trashbin/USER/restore/NAME."""

from __future__ import annotations

from tests.nextcloud.davhelp import NC, multistatus
from tests.nextcloud.scenarios.conftest import USER, Nc

TRASH = f"/remote.php/dav/trashbin/{USER}/trash/"
PROPS = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:prop>'
         b"<nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/></d:prop>"
         b"</d:propfind>")


def listing(nc: Nc, href: str) -> dict[str, dict[str, str]]:
    r = nc.client.request("PROPFIND", href, content=PROPS, headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return {h: p for h, p in multistatus(r.content).items() if h.rstrip("/") != href.rstrip("/")}


def trash_folder(nc: Nc, folder: str) -> dict[str, dict[str, str]]:
    """user in trash folder FOLDER: its elements, by href."""
    href = TRASH
    for name in [p for p in folder.split("/") if p]:
        found = [h for h, p in listing(nc, href).items() if p[f"{NC}trashbin-filename"] == name]
        assert len(found) == 1, (folder, found)
        href = found[0]
    return listing(nc, href)


def names(nc: Nc, folder: str) -> list[str]:
    return sorted(p[f"{NC}trashbin-filename"] for p in trash_folder(nc, folder).values())


def restores(nc: Nc, path: str) -> None:
    """user restores PATH from trash."""
    parent = path.rsplit("/", 1)[0]
    (href,) = [h for h, p in trash_folder(nc, parent).items()
               if "/" + p[f"{NC}trashbin-original-location"] == path]
    r = nc.client.request("MOVE", href, headers={
        "Destination": f"http://testserver/remote.php/dav/trashbin/{USER}/restore/{path.rsplit('/', 1)[-1]}"})
    assert r.status_code == 201, r.text


def exists(nc: Nc, path: str) -> bool:
    r = nc.request("PROPFIND", path, headers={"Depth": "0"})
    assert r.status_code in (207, 404), r.text
    return r.status_code == 207


def test_deleting_a_file_moves_it_to_trashbin(nc: Nc) -> None:
    """deleting a file moves it to trashbin"""
    assert nc.request("DELETE", "/textfile0.txt").status_code == 204
    assert names(nc, "/") == ["textfile0.txt"]


def test_clearing_the_trashbin(nc: Nc) -> None:
    """clearing the trashbin"""
    assert nc.request("DELETE", "/textfile0.txt").status_code == 204
    assert nc.client.request("DELETE", TRASH).status_code == 204
    assert names(nc, "/") == []


def test_restoring_file_from_trashbin(nc: Nc) -> None:
    """restoring file from trashbin"""
    assert nc.request("DELETE", "/textfile0.txt").status_code == 204
    restores(nc, "/textfile0.txt")
    assert names(nc, "/") == [] and exists(nc, "/textfile0.txt")


def _folder_with_textfile0(nc: Nc) -> None:
    assert nc.mkcol("/testfolder") == 201
    assert nc.moves("/textfile0.txt", "/testfolder/textfile0.txt").status_code == 201
    assert exists(nc, "/testfolder/textfile0.txt")


def test_deleting_and_restoring_a_folder(nc: Nc) -> None:
    """deleting and restoring a folder"""
    _folder_with_textfile0(nc)
    assert nc.request("DELETE", "/testfolder").status_code == 204
    assert names(nc, "/") == ["testfolder"]
    assert names(nc, "/testfolder") == ["textfile0.txt"]
    restores(nc, "/testfolder")
    assert names(nc, "/") == [] and exists(nc, "/testfolder/textfile0.txt")


def test_deleting_a_file_from_a_subfolder_and_restoring_it_moves_it_back_to_the_subfolder(nc: Nc) -> None:
    """deleting a file from a subfolder and restoring it moves it back to the subfolder"""
    _folder_with_textfile0(nc)
    assert nc.request("DELETE", "/testfolder/textfile0.txt").status_code == 204
    assert names(nc, "/") == ["textfile0.txt"]
    restores_by_name(nc, "textfile0.txt")
    assert names(nc, "/") == []
    assert not exists(nc, "/textfile0.txt") and exists(nc, "/testfolder/textfile0.txt")


def restores_by_name(nc: Nc, name: str) -> None:
    """The step "restores /textfile0.txt" for an item deleted from /testfolder: Nextcloud's step
    looks the item up in the trash root by its name."""
    (href,) = [h for h, p in trash_folder(nc, "/").items() if p[f"{NC}trashbin-filename"] == name]
    r = nc.client.request("MOVE", href, headers={"Destination": f"/remote.php/dav/trashbin/{USER}/restore/{name}"})
    assert r.status_code == 201, r.text


def test_deleting_a_folder_and_restoring_a_file_inside_it(nc: Nc) -> None:
    """deleting and a folder and restoring a file inside it"""
    _folder_with_textfile0(nc)
    assert nc.request("DELETE", "/testfolder").status_code == 204
    assert names(nc, "/") == ["testfolder"]
    assert names(nc, "/testfolder") == ["textfile0.txt"]
    restores(nc, "/testfolder/textfile0.txt")
    assert names(nc, "/") == ["testfolder"]
    assert names(nc, "/testfolder") == []
    assert exists(nc, "/textfile0.txt")


def test_download_a_previous_version_of_a_file_via_the_versions_dav_endpoint(nc: Nc) -> None:
    """Download a previous version of a file via the versions DAV endpoint (file-versions.feature)"""
    assert nc.request("PUT", "/versioned.txt", content=b"first version",
                      headers={"X-OC-Mtime": "1111111111"}).status_code == 201
    assert nc.request("PUT", "/versioned.txt", content=b"second version",
                      headers={"X-OC-Mtime": "2222222222"}).status_code == 204
    r = nc.request("PROPFIND", "/versioned.txt", headers={"Depth": "0"}, content=(
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>'))
    assert r.status_code == 207
    (props,) = multistatus(r.content).values()
    file_id = props["{http://owncloud.org/ns}fileid"]
    got = nc.client.get(f"/remote.php/dav/versions/{USER}/versions/{file_id}/1111111111")
    assert got.status_code == 200 and got.content == b"first version"
