# SPDX-License-Identifier: EUPL-1.2
"""The trash and versions under a kill -9 of a real server: killed inside the transaction of a
DELETE into the trash, of a restore from the trash, of a version restore (each kill lands at the
named step: the server is started with a fault pause and killed once it froze there). The
request is never answered, the state before it survives whole, the request can be retried, and
fsck is clean."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer

pytestmark = [pytest.mark.crash, pytest.mark.slow]

TRASH = "/remote.php/dav/trashbin/alice/trash/"
RESTORE = "/remote.php/dav/trashbin/alice/restore/x"
VERSIONS = "/remote.php/dav/versions/alice"


def client(srv: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, auth=("alice", PASSWORD), timeout=120, trust_env=False)


def trash_hrefs(c: httpx.Client) -> list[str]:
    r = c.request("PROPFIND", TRASH, headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return [h for h in re.findall(r"<d:href>([^<]+)</d:href>", r.text) if h != TRASH]


def fsck_clean(srv: LiveServer) -> None:
    r = srv.admin("fsck", "--deep")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def killed_during(srv: LiveServer, point: str, request: Callable[[httpx.Client], httpx.Response]) -> None:
    """Start the server paused at point, send the request, kill -9 once it froze there."""
    marker = srv.start_paused_at(point)
    outcome: list[object] = []

    def send() -> None:
        try:
            with client(srv) as c:
                outcome.append(request(c))
        except Exception as exc:  # examined below
            outcome.append(exc)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    srv.kill_when_paused(marker)
    t.join(60)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    srv.start()


def test_kill9_during_delete_and_restore(live_server: LiveServer) -> None:
    body = random.Random(1).randbytes(2 * 1024 * 1024)
    with client(live_server) as c:
        assert c.request("MKCOL", f"{DAV}/d").status_code == 201
        assert c.put(f"{DAV}/d/a.bin", content=body).status_code == 201
    killed_during(live_server, "trash.delete.before_commit", lambda c: c.delete(f"{DAV}/d"))
    with client(live_server) as c:
        assert c.get(f"{DAV}/d/a.bin").content == body  # never deleted
        assert trash_hrefs(c) == []
        assert c.delete(f"{DAV}/d").status_code == 204  # the retry
        (item,) = trash_hrefs(c)
    fsck_clean(live_server)
    killed_during(live_server, "trash.restore.before_commit",
                  lambda c: c.request("MOVE", item, headers={"Destination": RESTORE}))
    with client(live_server) as c:
        assert c.get(f"{DAV}/d/a.bin").status_code == 404  # never restored
        assert trash_hrefs(c) == [item]
        assert c.request("MOVE", item, headers={"Destination": RESTORE}).status_code == 201
        assert c.get(f"{DAV}/d/a.bin").content == body
    fsck_clean(live_server)


def test_kill9_during_version_restore(live_server: LiveServer) -> None:
    rng = random.Random(2)
    old, new = rng.randbytes(1024 * 1024), rng.randbytes(1024 * 1024)
    with client(live_server) as c:
        assert c.put(f"{DAV}/v.bin", content=old).status_code == 201
        assert c.put(f"{DAV}/v.bin", content=new).status_code == 204
        r = c.request("PROPFIND", f"{DAV}/v.bin", headers={"Depth": "0"})
        assert r.status_code == 207
        file_id = re.search(r"<oc:fileid>(\d+)</oc:fileid>", r.text).group(1)  # type: ignore[union-attr]
        base = f"{VERSIONS}/versions/{file_id}/"
        r = c.request("PROPFIND", base, headers={"Depth": "1"})
        assert r.status_code == 207
        (version,) = [h for h in re.findall(r"<d:href>([^<]+)</d:href>", r.text) if h != base]
    dest = {"Destination": f"{VERSIONS}/restore/target"}
    killed_during(live_server, "versions.restore.before_commit", lambda c: c.request("MOVE", version, headers=dest))
    with client(live_server) as c:
        assert c.get(f"{DAV}/v.bin").content == new  # never restored
        assert c.request("MOVE", version, headers=dest).status_code == 201
        assert c.get(f"{DAV}/v.bin").content == old
    fsck_clean(live_server)
