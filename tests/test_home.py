# SPDX-License-Identifier: EUPL-1.2
"""What a browser meets at the root: a short page in French or English, and the well-known
redirects to the DAV root."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from starlette.testclient import TestClient


def test_home_page_is_french_by_default(client: TestClient) -> None:
    r = client.get("/", auth=None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-language"] == "fr" and 'lang="fr"' in r.text
    assert "Ce serveur fait fonctionner cartable" in r.text
    assert "<code>http://testserver/</code>" in r.text, "the address to give the Nextcloud apps"
    assert "<code>http://testserver/remote.php/dav/files/IDENTIFIANT/</code>" in r.text
    assert client.get("/", auth=None, headers={"Accept-Language": "de-DE,de;q=0.9"}).headers[
        "content-language"] == "fr"


@pytest.mark.parametrize("accept", ["en", "en-GB,en;q=0.9,fr;q=0.5", "de, en;q=0.8"])
def test_home_page_speaks_english_when_preferred(client: TestClient, accept: str) -> None:
    r = client.get("/", auth=None, headers={"Accept-Language": accept})
    assert 'lang="en"' in r.text and "This server runs cartable" in r.text
    assert "http://testserver/remote.php/dav/files/USERNAME/" in r.text
    assert r.headers["vary"] == "Accept-Language"


def test_home_page_is_locked_down(client: TestClient) -> None:
    r = client.get("/", auth=None)
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "script" not in csp and "<script" not in r.text
    style = re.search(r"<style>(.*?)</style>", r.text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp, "the page's only style is allowed by its hash"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "http://" not in r.text.replace("http://testserver", "")  # no external resource


def test_home_page_escapes_the_host(client: TestClient) -> None:
    r = client.get("/", auth=None, headers={"Host": 'evil"><script>x</script>'})
    assert "<script>" not in r.text


def test_home_page_methods(client: TestClient) -> None:
    head = client.head("/", auth=None)
    assert head.status_code == 200 and head.content == b""
    r = client.post("/", auth=None)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/.well-known/webdav", "/.well-known/caldav", "/.well-known/carddav",
                                  "/.well-known/carddav/", "/.well-known/caldav/x/y"])
@pytest.mark.parametrize("method", ["GET", "PROPFIND"])
def test_well_known_names_redirect_to_the_dav_root(client: TestClient, path: str, method: str) -> None:
    r = client.request(method, path, auth=None, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/remote.php/dav/"


def test_other_well_known_names_are_not_found(client: TestClient) -> None:
    for path in ("/.well-known/acme-challenge/x", "/.well-known/webdavx", "/.well-known/"):
        assert client.get(path, auth=None, follow_redirects=False).status_code == 404
