# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/dav_features/webdav-related.feature.

Not ported (cartable has no such feature yet): every scenario with shares or public links,
web-login/CSRF-token scenarios (no web session yet), and "Retrieving folder quota when no quota
is set" (no unlimited quota: every account has one).

Adapted where cartable is deliberately stricter or names itself: the download's
Content-Security-Policy also forbids framing and sandboxes the document, X-Frame-Options is DENY
(Nextcloud: SAMEORIGIN, for its own viewer), X-XSS-Protection is not sent (obsolete, and harmful in
old browsers), and the challenge's realm is "cartable" (clients only read its scheme)."""

from __future__ import annotations

import pytest

from cartable.core import accounts
from tests.nextcloud.davhelp import D, bulk, bulk_body, bulk_part, multistatus
from tests.nextcloud.scenarios.conftest import NEW, OLD, SKELETON, USER, WELCOME, Nc

# What Nextcloud's scenario expects, with cartable's stricter values (see the module docstring).
SECURITY_HEADERS = {
    "Content-Disposition": "attachment; filename*=UTF-8''welcome.txt; filename=\"welcome.txt\"",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-Robots-Tag": "noindex, nofollow",
}


def test_downloading_a_file_should_serve_security_headers(nc_any: Nc) -> None:
    """Downloading a file on the old endpoint should serve security headers / ... on the new
    endpoint (webdav-related.feature, dav-v2.feature)"""
    r = nc_any.download("/welcome.txt")
    assert r.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name
    assert r.content.startswith(b"Welcome to your Nextcloud account!")


@pytest.mark.parametrize("target", ["/%5C", "/%5Ctestshare", "/hola%5Chola"],
                         ids=["backslash", "beginning with a backslash", "including a backslash"])
def test_renaming_a_folder_to_a_backslash_name_is_an_error(nc_any: Nc, target: str) -> None:
    """Renaming a folder to a backslash encoded / beginning with / including a backslash encoded
    should return an error using old endpoint / new endpoint"""
    assert nc_any.mkcol("/testshare") == 201
    r = nc_any.client.request("MOVE", nc_any.url("/testshare"), headers={"Destination": nc_any.dav + target})
    assert r.status_code == 400
    assert nc_any.client.request("PROPFIND", nc_any.url("/testshare"), headers={"Depth": "0"}).status_code == 207


QUOTA_PROPFIND = b'<d:propfind xmlns:d="DAV:"><d:prop><d:quota-available-bytes/></d:prop></d:propfind>'


@pytest.mark.parametrize("path", [OLD, NEW])
def test_unauthenticated_call(nc: Nc, path: str) -> None:
    """Unauthenticated call old dav path / Unauthenticated call new dav path (status and challenge
    shape; the realm's name is the product's, see the pending module for Nextcloud's exact one)."""
    r = nc.client.request("PROPFIND", path + "/", auth=None)
    assert r.status_code == 401
    challenges = r.headers.get_list("www-authenticate")
    assert len(challenges) == len(set(challenges))  # there are no duplicate headers
    assert challenges[0].startswith("Basic realm=") and 'charset="UTF-8"' in challenges[0]


def test_moving_a_file(nc: Nc) -> None:
    """Moving a file"""
    nc.dav = OLD
    assert nc.moves("/welcome.txt", "/FOLDER/welcome.txt").status_code == 201
    assert nc.download("/FOLDER/welcome.txt", "bytes=0-6").content == b"Welcome"


def test_moving_and_overwriting_a_file_old_way(nc: Nc) -> None:
    """Moving and overwriting a file old way"""
    nc.dav = OLD
    assert nc.moves("/welcome.txt", "/textfile0.txt").status_code == 204
    assert nc.download("/textfile0.txt", "bytes=0-6").content == b"Welcome"


def test_moving_and_overwriting_its_parent(nc_any: Nc) -> None:
    """Moving and overwriting it's parent (here and in dav-v2.feature): 403, nothing changes."""
    assert nc_any.mkcol("/test") == 201 and nc_any.mkcol("/test/test") == 201
    assert nc_any.moves("/test/test", "/test").status_code == 403
    assert nc_any.request("PROPFIND", "/test/test", headers={"Depth": "0"}).status_code == 207


def test_copying_a_file(nc: Nc) -> None:
    """Copying a file"""
    nc.dav = OLD
    assert nc.copies("/welcome.txt", "/FOLDER/welcome.txt").status_code == 201
    assert nc.download("/FOLDER/welcome.txt", "bytes=0-6").content == b"Welcome"


def test_copying_and_overwriting_a_file(nc: Nc) -> None:
    """Copying and overwriting a file"""
    nc.dav = OLD
    assert nc.copies("/welcome.txt", "/textfile1.txt").status_code == 204
    assert nc.download("/textfile1.txt", "bytes=0-6").content == b"Welcome"


def test_download_a_file_with_range(nc_any: Nc) -> None:
    """download a file with range (and "download a file with range using new endpoint")"""
    r = nc_any.download("/welcome.txt", "bytes=52-78")
    assert r.status_code == 206 and r.content == b"example file for developers"


def test_upload_forbidden_if_quota_is_0(nc: Nc) -> None:
    """Upload forbidden if quota is 0 (and "Uploading a file having 0B as quota")"""
    nc.dav = OLD
    accounts.set_quota(nc.core, USER, 0)
    assert nc.request("PUT", "/asdf.txt", content=b"text file\n").status_code == 507


def _quota_available(nc: Nc) -> int:
    r = nc.request("PROPFIND", "/", headers={"Depth": "0"}, content=QUOTA_PROPFIND)
    (props,) = multistatus(r.content).values()
    return int(props[f"{D}quota-available-bytes"])


def test_retrieving_folder_quota_when_quota_is_set(nc: Nc) -> None:
    """Retrieving folder quota when quota is set (10 MB less what the skeleton uses)"""
    nc.dav = OLD
    accounts.set_quota(nc.core, USER, 10 * 1024 * 1024)
    used = sum(len(v) for v in SKELETON.values())
    assert _quota_available(nc) == 10 * 1024 * 1024 - used


def test_retrieving_folder_quota_when_quota_is_set_and_a_file_was_uploaded(nc: Nc) -> None:
    """Retrieving folder quota when quota is set and a file was uploaded"""
    nc.dav = OLD
    accounts.set_quota(nc.core, USER, 1024)
    before = _quota_available(nc)
    assert nc.request("PUT", "/prueba.txt", content=b"x" * 93).status_code == 201
    assert _quota_available(nc) == before - 93


def test_a_file_that_is_not_shared_does_not_have_a_share_types_property(nc: Nc) -> None:
    """A file that is not shared does not have a share-types property"""
    assert nc.mkcol("/test") == 201
    r = nc.request("PROPFIND", "/test", headers={"Depth": "0"}, content=(
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:share-types/></d:prop>'
        b"</d:propfind>"))
    (props,) = multistatus(r.content).values()
    assert props["{http://owncloud.org/ns}share-types"] == ""


def _chunked(nc: Nc, order: str, dest: str = "/myChunkedFile.txt", size: int | None = None) -> int:
    up = f"/remote.php/dav/uploads/{USER}/chunking-42"
    assert nc.client.request("MKCOL", up).status_code == 201
    data = {"1": b"AAAAA", "2": b"BBBBB", "3": b"CCCCC"}
    for name in order:
        assert nc.client.put(f"{up}/{name}", content=data[name]).status_code == 201
    headers = {"Destination": f"http://testserver{NEW}{dest}"}
    if size is not None:
        headers["OC-Total-Length"] = str(size)
    return int(nc.client.request("MOVE", f"{up}/.file", headers=headers).status_code)


@pytest.mark.parametrize("order", ["123", "321", "231"], ids=["asc", "desc", "random"])
def test_upload_chunked_file_with_new_chunking(nc: Nc, order: str) -> None:
    """Upload chunked file asc / desc / random with new chunking"""
    assert _chunked(nc, order) == 201
    assert nc.download("/myChunkedFile.txt").content == b"AAAAABBBBBCCCCC"


@pytest.mark.parametrize("folder", ["/test_folder", "/test_folder:5"])
def test_creating_a_folder(nc: Nc, folder: str) -> None:
    """Creating a folder / Creating a folder with special chars"""
    nc.dav = OLD
    assert nc.mkcol(folder) == 201
    r = nc.request("PROPFIND", folder, headers={"Depth": "0"},
                   content=b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>')
    (props,) = multistatus(r.content).values()
    assert props[f"{D}resourcetype"].startswith("<d:collection ")


def test_removing_everything_of_a_folder(nc_any: Nc) -> None:
    """Removing everything of a folder / Removing everything of a folder using new dav path"""
    nc = nc_any
    assert nc.moves("/welcome.txt", "/FOLDER/welcome.txt").status_code == 201
    assert nc.mkcol("/FOLDER/SUBFOLDER") == 201
    assert nc.copies("/textfile0.txt", "/FOLDER/SUBFOLDER/testfile0.txt").status_code == 201
    listing = multistatus(nc.request("PROPFIND", "/FOLDER/", headers={"Depth": "1"}).content)
    for href in list(listing)[1:]:
        assert nc.client.delete(href).status_code == 204
    seen = multistatus(nc.request("PROPFIND", "/", headers={"Depth": "1"}).content)
    base = nc.dav + "/"
    assert {h[len(base):] for h in seen} >= {"FOLDER/", "PARENT/", "textfile0.txt", "textfile4.txt"}
    assert multistatus(nc.request("PROPFIND", "/FOLDER/", headers={"Depth": "1"}).content).keys() == {base + "FOLDER/"}


def _fileid(nc: Nc, path: str) -> str:
    r = nc.request("PROPFIND", path, headers={"Depth": "0"}, content=(
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>'))
    (props,) = multistatus(r.content).values()
    return props["{http://owncloud.org/ns}fileid"]


def test_checking_file_id_after_a_move_using_new_endpoint(nc: Nc) -> None:
    """Checking file id after a move using new endpoint"""
    stored = _fileid(nc, "/textfile0.txt")
    assert nc.moves("/textfile0.txt", "/FOLDER/textfile0.txt").status_code == 201
    assert _fileid(nc, "/FOLDER/textfile0.txt") == stored


def test_checking_file_id_after_a_move_overwrite_using_new_chunking_endpoint(nc: Nc) -> None:
    """Checking file id after a move overwrite using new chunking endpoint"""
    assert nc.copies("/textfile0.txt", "/existingFile.txt").status_code == 201
    stored = _fileid(nc, "/existingFile.txt")
    assert _chunked(nc, "123", "/existingFile.txt") == 204
    assert _fileid(nc, "/existingFile.txt") == stored


@pytest.mark.parametrize("size, status", [(5, 400), (15, 201)], ids=["wrong", "correct"])
def test_upload_file_via_new_chunking_endpoint_with_size_header(nc: Nc, size: int, status: int) -> None:
    """Upload file via new chunking endpoint with wrong size header / with correct size header"""
    assert _chunked(nc, "123", size=size) == status


def test_upload_bulked_files(nc: Nc) -> None:
    """Upload bulked files (the step's exact body: relative paths, X-OC-Mtime then X-File-Mtime)"""
    body = bulk_body(bulk_part("A.txt", b"AAAAA", mtime=None, extra="X-OC-Mtime: 1111111111\r\n"),
                     bulk_part("B.txt", b"BBBBB", mtime=None, extra="X-OC-Mtime: 2222222222\r\n"),
                     bulk_part("C.txt", b"CCCCC", mtime="3333333333"))
    r = bulk(nc.client, body)
    assert r.status_code == 200 and not any(v["error"] for v in r.json().values())
    for name, content, date in (("A.txt", b"AAAAA", "Fri, 18 Mar 2005 01:58:31 GMT"),
                                ("B.txt", b"BBBBB", "Sat, 02 Jun 2040 03:57:02 GMT"),
                                ("C.txt", b"CCCCC", "Sun, 18 Aug 2075 05:55:33 GMT")):
        assert nc.download(f"/{name}").content == content
        r = nc.request("PROPFIND", f"/{name}", headers={"Depth": "0"},
                       content=b'<d:propfind xmlns:d="DAV:"><d:prop><d:getlastmodified/></d:prop></d:propfind>')
        (props,) = multistatus(r.content).values()
        assert props[f"{D}getlastmodified"] == date


def test_creating_a_folder_with_invalid_characters(nc: Nc) -> None:
    """Creating a folder with invalid characters"""
    assert nc.mkcol("/testshare%09") == 400


def test_welcome_is_the_skeleton(nc: Nc) -> None:
    """(The Background: the skeleton user0 starts with, byte for byte.)"""
    assert nc.download("/welcome.txt").content == WELCOME
