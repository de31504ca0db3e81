# SPDX-License-Identifier: EUPL-1.2
"""Scenarios of nextcloud/server's webdav-related.feature and dav-v2.feature that depend on work
other helpers are doing while these were ported (download security headers, backslash names,
Nextcloud's challenge and disabled users). They are expected to fail until that work lands;
they are not skipped."""

from __future__ import annotations

import pytest

from cartable.core import accounts
from tests.nextcloud.scenarios.conftest import NEW, OLD, USER, Nc

SECURITY_HEADERS = {
    "Content-Disposition": "attachment; filename*=UTF-8''welcome.txt; filename=\"welcome.txt\"",
    "Content-Security-Policy": "default-src 'none';",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-Robots-Tag": "noindex, nofollow",
    "X-XSS-Protection": "1; mode=block",
}


def test_downloading_a_file_should_serve_security_headers(nc_any: Nc) -> None:
    """Downloading a file on the old endpoint should serve security headers / ... on the new
    endpoint (webdav-related.feature, dav-v2.feature)"""
    r = nc_any.download("/welcome.txt")
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


@pytest.mark.parametrize("path", [OLD, NEW])
def test_unauthenticated_call_challenge_is_nextclouds(nc: Nc, path: str) -> None:
    """Unauthenticated call old / new dav path: the exact challenge
    `Basic realm="Nextcloud", charset="UTF-8"`."""
    r = nc.client.request("PROPFIND", path + "/", auth=None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Nextcloud", charset="UTF-8"'


def test_a_disabled_user_cannot_use_webdav(nc: Nc) -> None:
    """A disabled user cannot use webdav (Nextcloud answers 503)"""
    accounts.set_disabled(nc.core, USER, True)
    assert nc.download("/welcome.txt").status_code == 503
