#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""How many sync clients waiting for changes (GET /api/v1/changes/wait) one node holds, and what
they cost it.

    python bench/longpoll_bench.py [--clients 100,1000,5000] [--workers N] [--idle-seconds 10]

Starts one ``cartable serve`` (the embedded default, its default workers unless --workers), then
for each count N: opens N waits at once (one connection each, as N desktop clients would), lets
them sit ``--idle-seconds`` and measures the server's CPU per second and its memory (the sum of
the resident sets of its processes) while they wait; then one PUT, and the time until each wait's
answer starts (median, p99, max: every client was woken by then). Every answer is checked (status, the change's name).
Not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from webdav_bench import free_port, start_cartable, tree_cpu_seconds, tree_pids  # noqa: E402

USER = "admin"


def rss_mib(root_pid: int) -> float:
    total = 0
    for pid in tree_pids(root_pid):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def one_round(base: str, password: str, pid: int, n: int, idle: float, round_no: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, auth=(USER, password), timeout=300, trust_env=False) as c:
        cursor = (await c.get("/api/v1/changes")).json()["cursor"]
        mem0 = rss_mib(pid)
        woke: list[float] = []
        name = f"round-{round_no}-{n}.txt"

        port = int(base.rsplit(":", 1)[1])
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        request = (f"GET /api/v1/changes/wait?cursor={cursor}&timeout=120 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Basic {token}\r\nConnection: close\r\n\r\n").encode()

        async def wait() -> None:
            # a raw connection per client: an HTTP client library's pool would be the bottleneck
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                await writer.drain()
                raw = await reader.read(1)  # the answer starts: this client is woken
                woke.append(time.perf_counter())
                raw += await reader.read()
            finally:
                writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            status = head.split(b" ", 2)[1] if head else b"?"
            if status != b"200":
                raise RuntimeError(f"wait: HTTP {status.decode()}: {raw[:300]!r}")
            names = [e["name"] for e in json.loads(body)["changes"]]
            if names != [name]:
                raise RuntimeError(f"wait answered {names}, wanted [{name!r}]")

        tasks = [asyncio.create_task(wait()) for _ in range(n)]
        await asyncio.sleep(min(30.0, 2.0 + n / 500))  # every wait reaches the server
        cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(idle)
        cpu_per_s = (tree_cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
        mem = rss_mib(pid)
        early = sum(t.done() for t in tasks)
        if early:
            raise RuntimeError(f"{early} waits answered before anything changed")
        put_at = time.perf_counter()
        r = await c.put(f"/remote.php/dav/files/{USER}/{name}", content=b"x")
        if r.status_code != 201:
            raise RuntimeError(f"PUT: HTTP {r.status_code}")
        put_took = time.perf_counter() - put_at
        await asyncio.gather(*tasks)
        lat = sorted(t - put_at for t in woke)
        return {"put": put_took, "cpu_per_s": cpu_per_s, "mem": mem, "mem_per_wait_kib": (mem - mem0) * 1024 / n,
                "p50": statistics.median(lat), "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "max": lat[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="100,1000,5000")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    args = ap.parse_args()
    counts = [int(x) for x in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="cartable-longpoll.") as tmp:
        port = free_port()
        env: dict[str, str] = {}
        if args.workers is not None:
            env["CARTABLE_WORKERS"] = str(args.workers)
        srv = start_cartable(Path(tmp) / "data", port, Path(tmp) / "server.log", env)
        try:
            base = f"http://127.0.0.1:{port}"
            rows = []
            for i, n in enumerate(counts):
                res = asyncio.run(one_round(base, srv.password, srv.pid, n, args.idle_seconds, i))
                rows.append((n, res))
                print(f"{n:6,} waits: server CPU {res['cpu_per_s'] * 100:5.1f} % of a core while waiting, "
                      f"memory {res['mem']:6.0f} MiB ({res['mem_per_wait_kib']:.1f} KiB per wait), "
                      f"woken in p50 {res['p50'] * 1000:.0f} ms, p99 {res['p99'] * 1000:.0f} ms, "
                      f"max {res['max'] * 1000:.0f} ms (the PUT took {res['put'] * 1000:.0f} ms)", flush=True)
        finally:
            srv.stop()
    workers = args.workers if args.workers is not None else "default (one per core)"
    print(f"\n# Long-poll: waiting sync clients on one node ({platform.node()}, {os.cpu_count()} cores, "
          f"workers: {workers}, load average {os.getloadavg()[0]:.1f})\n")
    print("| waiting clients | server CPU while waiting | server memory (all workers) | per wait | "
          "all woken by one write: p50 / p99 / max |")
    print("|---|---|---|---|---|")
    for n, r in rows:
        print(f"| {n:,} | {r['cpu_per_s'] * 100:.1f} % of a core | {r['mem']:.0f} MiB | "
              f"{r['mem_per_wait_kib']:.1f} KiB | {r['p50'] * 1000:.0f} / {r['p99'] * 1000:.0f} / "
              f"{r['max'] * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
