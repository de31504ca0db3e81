# SPDX-License-Identifier: EUPL-1.2
"""The Nextcloud dialect as the desktop and mobile clients use it: status.php, OCS, oc:/nc:
properties and OC-* headers (protocol facts from the captures of the real clients)."""

from __future__ import annotations

import hashlib

from lxml import etree
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from tests.conftest import DAV, PASSWORD

D, OC, NC = "{DAV:}", "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"
API = {"OCS-APIRequest": "true"}
DESKTOP_PROPFIND = b"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>
<d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/>
<oc:size/><oc:id/><oc:fileid/><oc:downloadURL/><oc:dDC/><oc:permissions/><oc:checksums/>
<oc:data-fingerprint/><oc:share-types/></d:prop></d:propfind>"""


def props(client: TestClient, path: str, depth: str = "1", body: bytes = DESKTOP_PROPFIND) -> dict[str, dict[str, str]]:
    r = client.request("PROPFIND", path, headers={"Depth": depth, "Content-Type": "text/xml; charset=utf-8"},
                       content=body)
    assert r.status_code == 207, r.text
    assert "application/xml; charset=utf-8" in r.headers["content-type"]
    out: dict[str, dict[str, str]] = {}
    for resp in etree.fromstring(r.content).iter(f"{D}response"):
        href = resp.findtext(f"{D}href")
        found = {}
        for ps in resp.iter(f"{D}propstat"):
            if "200" in (ps.findtext(f"{D}status") or ""):
                for p in ps.find(f"{D}prop"):
                    found[p.tag] = (p.text or "") + "".join(etree.tostring(c, encoding="unicode") for c in p)
        out[href] = found
    return out


def test_status_php(client: TestClient) -> None:
    r = client.get("/status.php", auth=None)
    assert r.status_code == 200
    body = r.json()
    assert body["installed"] is True and body["maintenance"] is False
    assert int(body["version"].split(".")[0]) >= 10


def test_capabilities_v1_v2_json_and_xml(client: TestClient) -> None:
    r = client.get("/ocs/v1.php/cloud/capabilities?format=json", headers={"OCS-APIREQUEST": "true"})
    assert r.status_code == 200
    ocs = r.json()["ocs"]
    assert ocs["meta"]["statuscode"] == 100
    caps = ocs["data"]["capabilities"]
    assert caps["dav"]["chunking"] == "1.0"
    assert caps["dav"]["bulkupload"] == "1.0"  # implemented (nextcloud/bulk.py); setting bulk_upload
    assert caps["core"]["pollinterval"] > 0
    assert "SHA1" in caps["checksums"]["supportedTypes"]
    assert ocs["data"]["version"]["major"] >= 10
    r2 = client.get("/ocs/v2.php/cloud/capabilities?format=json")
    assert r2.json()["ocs"]["meta"]["statuscode"] == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    x = client.get("/ocs/v2.php/cloud/capabilities")
    assert x.headers["content-type"] == "application/xml; charset=utf-8"
    assert client.get("/ocs/v1.php/cloud/capabilities").headers["content-type"] == "text/xml; charset=UTF-8"
    assert etree.fromstring(x.content).findtext("meta/statuscode") == "200"


def test_cloud_user_and_unauthenticated(client: TestClient, core: Core) -> None:
    accounts.set_quota(core, "alice", 10_000)
    assert client.put(f"{DAV}/a.txt", content=b"x" * 1000).status_code == 201
    data = client.get("/ocs/v1.php/cloud/user?format=json").json()["ocs"]["data"]
    assert data["id"] == "alice"
    assert data["quota"]["used"] == 1000 and data["quota"]["total"] == 10_000 and data["quota"]["free"] == 9000
    r = client.get("/ocs/v1.php/cloud/user?format=json", auth=("alice", "wrong"))
    assert r.status_code == 401 and r.json()["ocs"]["meta"]["statuscode"] == 997
    assert client.get("/ocs/v2.php/cloud/nothing?format=json").status_code == 404


def test_desktop_propfind_properties(client: TestClient) -> None:
    assert client.request("MKCOL", f"{DAV}/Docs").status_code == 201
    sha1 = "SHA1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    assert client.put(f"{DAV}/Docs/a b.txt", content=b"hello", headers={"OC-Checksum": sha1}).status_code == 201
    listing = props(client, f"{DAV}/")
    root = listing[f"{DAV}/"]
    assert root[f"{OC}permissions"] == "GDNVCK"
    assert f"{OC}data-fingerprint" in root
    docs = listing[f"{DAV}/Docs/"]
    assert docs[f"{OC}size"] == "5" and f"{D}getcontentlength" not in docs
    assert docs[f"{OC}id"].startswith(f"{int(docs[f'{OC}fileid']):08d}oc")
    inner = props(client, f"{DAV}/Docs/")[f"{DAV}/Docs/a%20b.txt"]
    assert inner[f"{OC}permissions"] == "GDNVW"
    assert "SHA1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" in inner[f"{OC}checksums"]
    assert inner[f"{OC}share-types"] == ""


def test_oc_headers_mtime_and_ids(client: TestClient) -> None:
    r = client.put(f"{DAV}/f.txt", content=b"data", headers={"X-OC-Mtime": "1700000000"})
    assert r.status_code == 201 and r.headers["X-OC-MTime"] == "accepted"
    etag, fileid = r.headers["ETag"], r.headers["OC-FileId"]
    assert r.headers["OC-ETag"] == etag
    g = client.get(f"{DAV}/f.txt")
    assert (g.headers["ETag"], g.headers["OC-FileId"]) == (etag, fileid)
    assert g.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    listed = props(client, f"{DAV}/f.txt", "0")[f"{DAV}/f.txt"]
    assert listed[f"{D}getetag"] == etag and listed[f"{OC}id"] == fileid
    m = client.request("MOVE", f"{DAV}/f.txt", headers={"Destination": f"{DAV}/g.txt", "X-OC-Mtime": "1600000000"})
    assert m.status_code == 201 and m.headers["X-OC-MTime"] == "accepted"
    assert (m.headers["ETag"], m.headers["OC-FileId"]) == (etag, fileid)  # a move keeps both
    assert client.head(f"{DAV}/g.txt").headers["Last-Modified"] == "Sun, 13 Sep 2020 12:26:40 GMT"
    mk = client.request("MKCOL", f"{DAV}/newdir")
    assert mk.status_code == 201 and "OC-FileId" in mk.headers


def test_checksum_header_and_patch_recalculation(client: TestClient) -> None:
    data = b"some content" * 1000
    sha1 = hashlib.sha1(data).hexdigest()
    assert client.put(f"{DAV}/c.bin", content=data, headers={"OC-Checksum": f"SHA1:{sha1}"}).status_code == 201
    assert client.get(f"{DAV}/c.bin").headers["OC-Checksum"] == f"SHA1:{sha1}"
    r = client.request("PATCH", f"{DAV}/c.bin", headers={"X-Recalculate-Hash": "MD5"})
    assert r.status_code == 204 and r.headers["OC-Checksum"] == f"MD5:{hashlib.md5(data).hexdigest()}"
    assert client.get(f"{DAV}/c.bin").headers["OC-Checksum"] == f"MD5:{hashlib.md5(data).hexdigest()}"
    assert client.request("PATCH", f"{DAV}/c.bin", headers={"X-Recalculate-Hash": "CRC99"}).status_code == 400
    assert client.request("PATCH", f"{DAV}/c.bin").status_code == 405


def test_favorite_is_settable(client: TestClient) -> None:
    assert client.put(f"{DAV}/fav.txt", content=b"x").status_code == 201
    body = (b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            b"<d:set><d:prop><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>")
    assert client.request("PROPPATCH", f"{DAV}/fav.txt", content=body).status_code == 207
    got = props(client, f"{DAV}/fav.txt", "0", b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" '
                b'xmlns:oc="http://owncloud.org/ns"><d:prop><oc:favorite/></d:prop></d:propfind>')
    assert got[f"{DAV}/fav.txt"][f"{OC}favorite"] == "1"


def test_app_password_endpoints(client: TestClient) -> None:
    r = client.get("/ocs/v2.php/core/getapppassword?format=json", headers=API)
    token = r.json()["ocs"]["data"]["apppassword"]
    assert len(token) == 72
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", token), headers={"Depth": "0"}).status_code == 207
    assert client.delete("/ocs/v2.php/core/apppassword?format=json", auth=("alice", token),
                         headers=API).status_code == 200
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", token), headers={"Depth": "0"}).status_code == 401
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", PASSWORD), headers={"Depth": "0"}).status_code == 207


def test_user_lists_and_revokes_app_passwords(client: TestClient) -> None:
    tokens = [client.get("/ocs/v2.php/core/getapppassword?format=json",
                         headers={"User-Agent": f"device-{i}", **API}).json()["ocs"]["data"]["apppassword"]
              for i in range(2)]
    listed = client.get("/ocs/v2.php/apps/cartable/api/v1/apppasswords?format=json").json()["ocs"]["data"]
    assert [x["name"] for x in listed] == ["device-0", "device-1"]
    first = listed[0]["id"]
    r = client.delete(f"/ocs/v2.php/apps/cartable/api/v1/apppasswords/{first}?format=json", headers=API)
    assert r.status_code == 200
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", tokens[0]), headers={"Depth": "0"}).status_code == 401
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", tokens[1]), headers={"Depth": "0"}).status_code == 207
    assert client.delete(f"/ocs/v2.php/apps/cartable/api/v1/apppasswords/{first}?format=json",
                         headers=API).status_code == 404


def test_credential_calls_need_the_ocs_api_header(client: TestClient) -> None:
    """A page of another site can make a browser send cached Basic credentials, never a custom
    header: without OCS-APIRequest no app password is minted or revoked (412, as Nextcloud)."""
    for url in ("/ocs/v2.php/core/getapppassword?format=json", "/ocs/v1.php/core/getapppassword?format=json"):
        r = client.get(url)
        assert r.status_code == 412 and "CSRF" in r.json()["ocs"]["meta"]["message"]
    assert client.get("/ocs/v2.php/apps/cartable/api/v1/apppasswords?format=json").json()["ocs"]["data"] == []
    token = client.get("/ocs/v2.php/core/getapppassword?format=json", headers=API).json()["ocs"]["data"]["apppassword"]
    app_id = client.get("/ocs/v2.php/apps/cartable/api/v1/apppasswords?format=json").json()["ocs"]["data"][0]["id"]
    assert client.delete("/ocs/v2.php/core/apppassword?format=json", auth=("alice", token)).status_code == 412
    assert client.delete(f"/ocs/v2.php/apps/cartable/api/v1/apppasswords/{app_id}?format=json").status_code == 412
    assert client.request("PROPFIND", f"{DAV}/", auth=("alice", token), headers={"Depth": "0"}).status_code == 207
    bearer = client.get("/ocs/v2.php/core/getapppassword?format=json", auth=None,
                        headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code != 412  # a Bearer token cannot be sent by a cross-site page either
