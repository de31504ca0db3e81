# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/dav_features/dav-v2.feature.

"Moving and overwriting it's parent", "download a file with range using new endpoint" and
"Uploading a file having 0B as quota" are the same steps as in test_webdav_related.py (run there
on both paths). Not ported: web-login/CSRF scenarios and the share scenario. The security
headers scenario is in test_pending_webdav_related.py."""

from __future__ import annotations

from tests.nextcloud.davhelp import OC, cmp, multistatus, search, search_body
from tests.nextcloud.scenarios.conftest import NEW, USER, Nc

IMAGE_WHERE = ("<d:and><d:or>" + "".join(cmp("eq", "<d:getcontenttype/>", t) for t in (
    "image/png", "image/jpeg", "image/heic", "video/mp4", "video/quicktime")) + "</d:or>"
    + cmp("eq", "<oc:owner-id/>", USER) + "</d:and>")
SELECT = ("<oc:fileid /> <d:getlastmodified /> <d:getetag /> <d:getcontenttype /> <d:getcontentlength /> "
          "<nc:has-preview /> <oc:favorite /> <d:resourcetype />")
ORDER = "<d:order><d:prop><d:getlastmodified/></d:prop><d:descending/></d:order>"
LIMIT = "<d:limit><d:nresults>35</d:nresults><ns:firstresult>0</ns:firstresult></d:limit>"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def test_moving_a_file_new_endpoint_way(nc: Nc) -> None:
    """moving a file new endpoint way"""
    assert nc.moves("/textfile0.txt", "/FOLDER/textfile0.txt").status_code == 201


def _search(nc: Nc, where: str, select: str = SELECT) -> dict[str, dict[str, str]]:
    body = search_body(where, scope=f"/files/{USER}", select=select, order=ORDER, limit=LIMIT)
    return multistatus(search(nc.client, body).content)


def test_create_a_search_query_on_image(nc: Nc) -> None:
    """Create a search query on image"""
    assert nc.mkcol("/testquota") == 201
    assert nc.request("PUT", "/testquota/asdf.txt", content=b"text").status_code == 201
    assert _search(nc, IMAGE_WHERE) == {}
    assert nc.request("PUT", "/image.png", content=PNG).status_code == 201
    (props,) = _search(nc, IMAGE_WHERE).values()
    assert props["{DAV:}getcontenttype"] == "image/png"


def test_create_a_search_query_on_favorite(nc: Nc) -> None:
    """Create a search query on favorite"""
    assert nc.request("PUT", "/fav_image.png", content=PNG).status_code == 201
    where = cmp("eq", "<oc:favorite/>", "yes")
    assert _search(nc, where, "<oc:favorite/>") == {}
    nc.dav = NEW
    _favorite(nc, "/fav_image.png")
    (props,) = _search(nc, where, "<oc:favorite/>").values()
    assert props[f"{OC}favorite"] == "1"


def _favorite(nc: Nc, path: str) -> None:
    body = (b'<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop>'
            b"<oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>")
    assert nc.request("PROPPATCH", path, content=body).status_code == 207


