# SPDX-License-Identifier: EUPL-1.2
"""Crash safety of bulk upload: SIGKILL a real ``cartable serve`` while bulk requests are being
committed, restart it, and check that every file a 200 answer acknowledged is there byte for byte,
that every other file of those requests is either absent or one of the complete contents sent for
its path (never a prefix or a mix), and that ``cartable admin fsck`` finds no problem."""

from __future__ import annotations

import hashlib
import random
import threading
import time

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer
from tests.nextcloud.davhelp import bulk_body, bulk_part

pytestmark = [pytest.mark.crash, pytest.mark.slow]

THREADS, FILES, ROUNDS = 3, 60, 200


def content(tid: int, rnd: int, i: int) -> bytes:
    rng = random.Random(f"{tid}-{rnd}-{i}")
    return rng.randbytes(rng.choice([10, 3000, 9000, 40_000, 200_000]))


def test_kill9_during_bulk_uploads(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
        for tid in range(THREADS):
            assert c.request("MKCOL", f"{DAV}/t{tid}").status_code == 201
    acked: dict[str, int] = {}  # path → index in sent[path] of the last acknowledged content
    sent: dict[str, list[bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    answered = [0]

    def worker(tid: int) -> None:
        with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
            for rnd in range(ROUNDS):
                if stop.is_set():
                    return
                files = {f"/t{tid}/f{i:02d}.bin": content(tid, rnd, i) for i in range(FILES)}
                with lock:
                    for p, d in files.items():
                        sent.setdefault(p, []).append(d)
                body = bulk_body(*(bulk_part(p, d) for p, d in files.items()))
                try:
                    r = c.post("/remote.php/dav/bulk", content=body,
                               headers={"Content-Type": "multipart/related; boundary=boundary_azertyuiop"})
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text[:300]
                with lock:
                    for p, res in r.json().items():
                        assert res["error"] is False, res
                        acked[p] = sent[p].index(files[p])
                    answered[0] += 1

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while answered[0] < 4 and time.monotonic() < deadline:  # polled, not slept: kill mid-stream
        time.sleep(0.01)
    assert answered[0] >= 4, "fewer than 4 bulk requests were answered in 120 s"
    live_server.kill()
    stop.set()
    for t in threads:
        t.join(60)

    live_server.start()
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120) as c:
        for path, contents in sent.items():
            r = c.get(f"{DAV}{path}")
            if r.status_code == 404:
                assert path not in acked, f"{path} was acknowledged and is gone after the crash"
                continue
            assert r.status_code == 200
            allowed = contents[acked.get(path, 0):]  # the acknowledged content or a later one
            sha = hashlib.sha256(r.content).hexdigest()[:12]
            assert r.content in allowed, f"{path}: {len(r.content)} bytes never sent whole after its ack ({sha})"
    r = live_server.admin("fsck")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
