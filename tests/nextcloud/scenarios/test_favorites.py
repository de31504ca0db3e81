# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/files_features/favorites.feature.

Not ported: "moving a favorite file out of a share keeps favorite state" (no shares yet)."""

from __future__ import annotations

import pytest

from tests.nextcloud.davhelp import OC, multistatus
from tests.nextcloud.scenarios.conftest import Nc


def favorites(nc: Nc, path: str, on: int) -> None:
    """user favorites / unfavorites element (the step's PROPPATCH through Sabre's client)."""
    body = (f'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            f"<d:set><d:prop><oc:favorite>{on}</oc:favorite></d:prop></d:set></d:propertyupdate>").encode()
    assert nc.request("PROPPATCH", path, content=body).status_code == 207


def favorite_prop(nc: Nc, path: str) -> str:
    r = nc.request("PROPFIND", path, headers={"Depth": "0"}, content=(
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:favorite/></d:prop></d:propfind>'))
    (props,) = multistatus(r.content).values()  # "the single response"
    return props[f"{OC}favorite"]


def favorited_in(nc: Nc, folder: str) -> set[str]:
    """user in folder should have favorited the following elements (the step's REPORT body)."""
    body = ('<?xml version="1.0" encoding="utf-8" ?><oc:filter-files xmlns:a="DAV:" xmlns:oc="http://owncloud.org/ns" >'
            "<a:prop><oc:favorite/></a:prop><oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules>"
            "</oc:filter-files>").encode()
    r = nc.request("REPORT", folder, content=body)
    assert r.status_code == 207
    return {h[len(nc.dav):].rstrip("/") for h in multistatus(r.content)}


@pytest.mark.parametrize("element", ["/FOLDER", "/textfile0.txt"], ids=["folder", "file"])
def test_favorite_an_element(nc_any: Nc, element: str) -> None:
    """Favorite a folder / a file (old and new endpoint)"""
    favorites(nc_any, element, 1)
    assert favorite_prop(nc_any, element) == "1"


@pytest.mark.parametrize("element", ["/FOLDER", "/textfile0.txt"], ids=["folder", "file"])
def test_favorite_and_unfavorite_an_element(nc_any: Nc, element: str) -> None:
    """Favorite and unfavorite a folder / a file (old and new endpoint)"""
    favorites(nc_any, element, 1)
    favorites(nc_any, element, 0)
    assert favorite_prop(nc_any, element) == "0"


def test_get_favorited_elements_of_a_folder(nc_any: Nc) -> None:
    """Get favorited elements of a folder (and "using new path")"""
    for element in ("/FOLDER", "/textfile0.txt", "/textfile1.txt"):
        favorites(nc_any, element, 1)
    assert favorited_in(nc_any, "/") >= {"/FOLDER", "/textfile0.txt", "/textfile1.txt"}


def test_get_favorited_elements_of_a_subfolder(nc_any: Nc) -> None:
    """Get favorited elements of a subfolder (and "using new path")"""
    assert nc_any.mkcol("/subfolder") == 201
    for i in range(3):
        assert nc_any.moves(f"/textfile{i}.txt", f"/subfolder/textfile{i}.txt").status_code == 201
        favorites(nc_any, f"/subfolder/textfile{i}.txt", 1)
    favorites(nc_any, "/subfolder/textfile1.txt", 0)
    assert favorited_in(nc_any, "/subfolder") == {"/subfolder/textfile0.txt", "/subfolder/textfile2.txt"}
