# SPDX-License-Identifier: EUPL-1.2
"""A bulk upload killed at a named step: the server freezes right after the second file of the
request committed (fault point writes.commit.after_commit, second hit) and is killed there. The
request is never answered; after the restart each file of it is whole or absent (the first
commits at least are there, though no 200 ever said so) and fsck finds no problem."""

from __future__ import annotations

import random
import threading

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer
from tests.nextcloud.davhelp import bulk_body, bulk_part

pytestmark = [pytest.mark.crash, pytest.mark.slow]


def test_kill9_after_the_second_file_of_a_bulk_request_committed(live_server: LiveServer) -> None:
    rng = random.Random(12)
    files = {f"/k{i}.bin": rng.randbytes(rng.choice([500, 9000, 120_000, 400_000])) for i in range(8)}
    marker = live_server.start_paused_at("writes.commit.after_commit", 2)
    outcome: list[object] = []

    def post() -> None:
        try:
            with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
                outcome.append(c.post("/remote.php/dav/bulk", content=bulk_body(
                    *(bulk_part(p, d) for p, d in files.items())),
                    headers={"Content-Type": "multipart/related; boundary=boundary_azertyuiop"}))
        except Exception as exc:  # examined below
            outcome.append(exc)

    t = threading.Thread(target=post, daemon=True)
    t.start()
    live_server.kill_when_paused(marker)
    t.join(60)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    live_server.start()
    present = 0
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
        for path, data in files.items():
            r = c.get(f"{DAV}{path}")
            assert r.status_code in (200, 404), (path, r.status_code)
            if r.status_code == 200:
                assert r.content == data, f"{path} holds {len(r.content)} bytes that were never sent whole"
                present += 1
    assert present >= 2, f"only {present} files survived: the two commits before the kill were lost"
    r = live_server.admin("fsck", "--deep")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
