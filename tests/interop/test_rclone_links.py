# SPDX-License-Identifier: EUPL-1.2
"""rclone through public links, against a real `cartable serve`: the legacy /public.php/webdav
with the token as the user name (and the link's password as the password), as Nextcloud
documents it for rclone. A read-write link copies up and down and checks; a read-only link
lists and downloads but its uploads fail and change nothing; a password link needs the password."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool
from tests.interop.ncsupport import make_tree, run

pytestmark = [pytest.mark.interop, pytest.mark.slow]

OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"


def link(server: LiveServer, path: str, **params: object) -> str:
    r = httpx.post(server.url + OCS, data={"path": path, "shareType": 3, **params}, auth=("alice", PASSWORD),
                   headers={"OCS-APIRequest": "true", "Accept": "application/json"})
    assert r.status_code == 200, r.text
    token: str = r.json()["ocs"]["data"]["token"]
    return token


def rclone(exe: str, home: Path, url: str, user: str, password: str, *args: str, ok: bool = True) -> str:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RCLONE_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    obscured = run([exe, "obscure", password]).stdout.strip()
    env.update(HOME=str(home), RCLONE_CONFIG=str(home / "rclone.conf"), RCLONE_CONFIG_PUB_TYPE="webdav",
               RCLONE_CONFIG_PUB_URL=url, RCLONE_CONFIG_PUB_VENDOR="other", RCLONE_CONFIG_PUB_USER=user,
               RCLONE_CONFIG_PUB_PASS=obscured)
    p = run([exe, *args, "--retries", "1", "--low-level-retries", "1"], env=env, timeout=300)
    if ok:
        assert p.returncode == 0, p.stderr[-3000:]
    else:
        assert p.returncode != 0, p.stdout
    return p.stdout + p.stderr


def test_rclone_through_links(live_server: LiveServer, tmp_path: Path) -> None:
    exe = require_tool("rclone")
    url = live_server.url + "/public.php/webdav"
    home = tmp_path / "home"
    auth = ("alice", PASSWORD)
    for folder in ("class", "class/ro", "drop"):
        assert httpx.request("MKCOL", f"{live_server.url}{DAV}/{folder}", auth=auth).status_code == 201
    assert httpx.put(f"{live_server.url}{DAV}/class/ro/lesson.txt", content=b"lesson", auth=auth).status_code == 201
    src = tmp_path / "src"
    make_tree(src, n_files=12, seed=7, max_size=20_000)

    rw = link(live_server, "/class", permissions=15)
    rclone(exe, home, url, rw, "", "copy", str(src), "pub:up")
    assert "0 differences found" in rclone(exe, home, url, rw, "", "check", "--download", str(src), "pub:up")
    down = tmp_path / "down"
    rclone(exe, home, url, rw, "", "copy", "pub:ro", str(down))
    assert (down / "lesson.txt").read_bytes() == b"lesson"

    ro = link(live_server, "/class/ro", permissions=1, password="parents-pw")
    assert "lesson.txt" in rclone(exe, home, url, ro, "parents-pw", "lsf", "pub:")
    rclone(exe, home, url, ro, "wrong", "lsf", "pub:", ok=False)
    rclone(exe, home, url, ro, "parents-pw", "copy", str(src), "pub:", ok=False)
    listed = httpx.request("PROPFIND", f"{live_server.url}{DAV}/class/ro/", auth=auth, headers={"Depth": "1"})
    assert listed.text.count("<d:response>") == 2, listed.text  # the folder and lesson.txt, nothing added
