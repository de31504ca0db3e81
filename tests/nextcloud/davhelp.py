# SPDX-License-Identifier: EUPL-1.2
"""Typed helpers for the Nextcloud adapter tests: multistatus parsing, favorites, SEARCH bodies
and bulk bodies, as the Nextcloud clients and the server's own integration steps send them."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

from lxml import etree
from starlette.testclient import TestClient

from tests.conftest import DAV

D, OC, NC = "{DAV:}", "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"
NS = 'xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"'
API = {"OCS-APIRequest": "true"}


def multistatus(body: bytes) -> dict[str, dict[str, str]]:
    """href (percent-decoded) → {clark name: text} of the 200 propstat."""
    out: dict[str, dict[str, str]] = {}
    for resp in etree.fromstring(body).iter(f"{D}response"):
        href = unquote(resp.findtext(f"{D}href") or "")
        found: dict[str, str] = {}
        for ps in resp.iter(f"{D}propstat"):
            if "200" in (ps.findtext(f"{D}status") or ""):
                for p in ps.find(f"{D}prop"):
                    found[p.tag] = (p.text or "") + "".join(etree.tostring(c, encoding="unicode") for c in p)
        out[href] = found
    return out


def set_favorite(client: TestClient, path: str, on: bool, auth: tuple[str, str] | None = None) -> None:
    body = (f'<?xml version="1.0"?><d:propertyupdate {NS}><d:set><d:prop><oc:favorite>{int(on)}</oc:favorite>'
            "</d:prop></d:set></d:propertyupdate>").encode()
    kwargs = {"auth": auth} if auth else {}
    r = client.request("PROPPATCH", f"{DAV}{path}", content=body, **kwargs)
    assert r.status_code == 207 and "200 OK" in r.text, r.text


def report_favorites(client: TestClient, folder: str, props: str = "<oc:favorite/>", extra: str = "",
                     base: str = DAV) -> dict[str, dict[str, str]]:
    body = (f'<?xml version="1.0" encoding="utf-8" ?><oc:filter-files xmlns:a="DAV:" xmlns:oc="http://owncloud.org/ns"'
            f' xmlns:nc="http://nextcloud.org/ns"><a:prop>{props}</a:prop><oc:filter-rules>'
            f"<oc:favorite>1</oc:favorite></oc:filter-rules>{extra}</oc:filter-files>").encode()
    r = client.request("REPORT", f"{base}{folder}", content=body)
    assert r.status_code == 207, r.text
    assert r.headers["content-type"] == "application/xml; charset=utf-8"
    return multistatus(r.content)


def search_body(where: str, *, scope: str = "/files/alice", depth: str = "infinity",
                select: str = "<d:displayname/><oc:fileid/>", order: str = "", limit: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><d:searchrequest {NS} '
            'xmlns:ns="https://github.com/icewind1991/SearchDAV/ns"><d:basicsearch>'
            f"<d:select><d:prop>{select}</d:prop></d:select>"
            f"<d:from><d:scope><d:href>{scope}</d:href><d:depth>{depth}</d:depth></d:scope></d:from>"
            f"<d:where>{where}</d:where><d:orderby>{order}</d:orderby>{limit}"
            "</d:basicsearch></d:searchrequest>").encode()


def cmp(op: str, prop: str, literal: str) -> str:
    return f"<d:{op}><d:prop>{prop}</d:prop><d:literal>{literal}</d:literal></d:{op}>"


def search(client: TestClient, body: bytes, status: int = 207, **kwargs: object):  # type: ignore[no-untyped-def]
    r = client.request("SEARCH", "/remote.php/dav/", content=body, headers={"Content-Type": "text/xml"}, **kwargs)
    assert r.status_code == status, r.text
    return r


def names(resp) -> list[str]:  # type: ignore[no-untyped-def]
    """Result paths below the user's root, in answer order."""
    root = f"{DAV}/"
    return [h[len(root):] for h in multistatus(resp.content)]


def bulk_part(path: str, data: bytes, *, md5: str | None = None, mtime: str | None = "1111111111",
              extra: str = "", boundary: str = "boundary_azertyuiop") -> bytes:
    head = f"--{boundary}\r\nX-File-Path: {path}\r\nX-File-MD5: {md5 or hashlib.md5(data).hexdigest()}\r\n"
    if mtime is not None:
        head += f"X-File-Mtime: {mtime}\r\n"
    head += f"{extra}Content-Length: {len(data)}\r\n\r\n"
    return head.encode() + data + b"\r\n"


def bulk_body(*parts: bytes, boundary: str = "boundary_azertyuiop") -> bytes:
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def bulk(client: TestClient, body: bytes, boundary: str = "boundary_azertyuiop", **kwargs: object):  # type: ignore[no-untyped-def]
    return client.post("/remote.php/dav/bulk", content=body,
                       headers={"Content-Type": f"multipart/related; boundary={boundary}"}, **kwargs)
