# SPDX-License-Identifier: EUPL-1.2
"""A bulk upload killed at named steps. Its files are committed in batches (core/bulk.py, 64 files
per batch by default), one after the other; the server freezes at the first batch's commit and is
killed there: just before it commits (no file of the request survives) or just after (exactly the
first batch survives, whole, though no 200 ever said so: the next batch waits for the first to
return). The request is never answered; fsck finds no problem."""

from __future__ import annotations

import random
import threading

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer
from tests.nextcloud.davhelp import bulk_body, bulk_part

pytestmark = [pytest.mark.crash, pytest.mark.slow]

BATCH = 64  # core/bulk.py BulkWriter's batch_files


@pytest.mark.parametrize(("point", "survivors"), [("writes.commit.before_commit", 0),
                                                  ("writes.commit.after_commit", BATCH)])
def test_kill9_at_the_commit_of_a_bulk_batch(live_server: LiveServer, point: str, survivors: int) -> None:
    rng = random.Random(12)
    files = {f"/k{i:03d}.bin": rng.randbytes(rng.choice([500, 3000, 9000, 20_000])) for i in range(BATCH + 6)}
    assert sum(map(len, files.values())) < 8 * 1024 * 1024  # batches are cut by count, not by bytes
    marker = live_server.start_paused_at(point)
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
    present = []
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
        for path, data in files.items():
            r = c.get(f"{DAV}{path}")
            assert r.status_code in (200, 404), (path, r.status_code)
            if r.status_code == 200:
                assert r.content == data, f"{path} holds {len(r.content)} bytes that were never sent whole"
                present.append(path)
    assert present == list(files)[:survivors], present
    r = live_server.admin("fsck", "--deep")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
