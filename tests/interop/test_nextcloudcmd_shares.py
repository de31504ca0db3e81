# SPDX-License-Identifier: EUPL-1.2
"""nextcloudcmd (Debian's 3.7.x) as the recipient of a read-only share, against a real
`cartable serve`: the share arrives under Shared/, a local edit is not uploaded (the owner's file
is unchanged: the client keeps it as a conflicted copy), and an unshare removes the folder
locally without deleting anything of the owner's. (nextcloudcmd hangs when a sync would remove
every file of its folder, nextcloud/desktop#3144, whatever --non-interactive says: bob keeps a
file of his own, as every real user does.)"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool, start_live_server
from tests.interop.ncsupport import LoggingProxy, client_env, run

pytestmark = [pytest.mark.interop, pytest.mark.slow]

BOB = ("bob", "bob-secret-password")
OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
JSON = {"OCS-APIRequest": "true", "Accept": "application/json"}


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = start_live_server(tmp_path / "data")
    r = srv.admin("user", "add", BOB[0], "--password-stdin", input=BOB[1] + "\n")
    assert r.returncode == 0, r.stderr
    yield srv
    srv.stop()


def sync(exe: str, folder: Path, proxy: LoggingProxy, home: Path) -> tuple[subprocess.CompletedProcess[str],
                                                                          list[str]]:
    proxy.clear()
    env = client_env() | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    try:
        done = run([exe, "--non-interactive", "-u", BOB[0], "-p", BOB[1], str(folder), proxy.url], env=env,
                   timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("nextcloudcmd hung; its requests:\n" + "\n".join(str(r) for r in proxy.log[-40:]))
    log = [str(r) for r in proxy.log]
    failed = [line for line in log if int(line.rsplit(" ", 1)[1]) >= 500]
    assert not failed, "server errors during the sync:\n" + "\n".join(failed)
    return done, log


@pytest.fixture
def alice(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=30) as client:
        yield client


def _setup(alice: httpx.Client) -> str:
    assert alice.request("MKCOL", f"{DAV}/Cours").status_code == 201
    assert alice.put(f"{DAV}/Cours/lesson.txt", content=b"lesson").status_code == 201
    r = alice.post(OCS, data={"path": "/Cours", "shareType": 0, "shareWith": "bob", "permissions": 1}, headers=JSON)
    assert r.status_code == 200, r.text
    return str(r.json()["ocs"]["data"]["id"])


def test_read_only_share_keeps_local_edits_local(live_server: LiveServer, alice: httpx.Client,
                                                 tmp_path: Path) -> None:
    exe = require_tool("nextcloudcmd")
    _setup(alice)
    folder, home = tmp_path / "bob", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    with LoggingProxy(live_server.url) as proxy:
        done, log = sync(exe, folder, proxy, home)
        assert done.returncode == 0, log[-40:]
        local = folder / "Shared" / "Cours" / "lesson.txt"
        assert local.read_bytes() == b"lesson"
        local.write_bytes(b"bob's edit")
        _, log = sync(exe, folder, proxy, home)
        assert not [line for line in log if line.startswith("PUT ") and line.rsplit(" ", 1)[1].startswith("2")], log
    assert alice.get(f"{DAV}/Cours/lesson.txt").content == b"lesson"


def test_unshare_removes_the_folder_locally_and_deletes_nothing(live_server: LiveServer, alice: httpx.Client,
                                                                tmp_path: Path) -> None:
    exe = require_tool("nextcloudcmd")
    share_id = _setup(alice)
    # bob has files of his own, as every teacher does: if the unshare removed ALL of the sync
    # folder's files, nextcloudcmd would stop to ask for confirmation and hang whatever
    # --non-interactive says (nextcloud/desktop#3144), which is the client's bug, not the unshare's
    with httpx.Client(base_url=live_server.url, auth=BOB, timeout=30) as bob:
        assert bob.put("/remote.php/dav/files/bob/mine.txt", content=b"mine").status_code == 201
    folder, home = tmp_path / "bob", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    with LoggingProxy(live_server.url) as proxy:
        done, log = sync(exe, folder, proxy, home)
        assert done.returncode == 0, log[-40:]
        assert (folder / "Shared" / "Cours" / "lesson.txt").read_bytes() == b"lesson"
        assert alice.delete(f"{OCS}/{share_id}", headers=JSON).status_code == 200
        done, log = sync(exe, folder, proxy, home)
        assert done.returncode == 0, log[-40:]
        assert not (folder / "Shared" / "Cours").exists()
        assert (folder / "mine.txt").read_bytes() == b"mine"
        assert not [line for line in log if line.startswith("DELETE ")], log
    assert alice.get(f"{DAV}/Cours/lesson.txt").content == b"lesson"
