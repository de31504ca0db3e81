#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""One app node against two: throughput of cartable on PostgreSQL + an S3 bucket (Ceph RGW).

    python bench/nodes_bench.py [--rounds 3] [--users 8] [--small 1000] [--big-mib 128] [--pg-url URL]

Starts PostgreSQL 15 (scripts/engines/postgres.sh, unless --pg-url) and Ceph RGW
(scripts/engines/s3-ceph.sh) on loopback, makes one database and one bucket, creates the users with
cartable's own code (so that the nodes find a migrated database), then starts TWO
``cartable serve`` processes on that database and that bucket (blob_store = "s3"). Each round
runs every workload twice, alternating which goes first: "1 node" sends every request to node A,
"2 nodes" spreads the clients over A and B (client k talks to node k % 2), as a load balancer
would. Same run, same data, same machine: the ratio 2 nodes / 1 node is what a second process buys
on this machine (2 cores, shared with PostgreSQL, RGW and the load generator: see the notes the
report prints).

Workloads (each client is one user; distinct random content, so deduplication does nothing):
- small PUT: --small files of 4 KiB, 16 client threads; small GET of the same files, content checked;
- large PUT: 4 files of --big-mib MiB uploaded at once; large GET of them at once, length checked;
- poll: PROPFIND Depth 0 getetag on a user's root, wrk, 16 connections in all (one wrk per node
  used), --wrk-seconds.
Not a test: no timing is asserted; every answer is checked.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import datetime as dt
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO), str(REPO / "src")]

from webdav_bench import free_port, start_cartable, tree_cpu_seconds  # noqa: E402

MiB = 1024 * 1024
ENGINES = REPO / "scripts" / "engines"
PASSWORD = "nodes-bench-password-xxxx"
POLL_BODY = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def engine_start(script: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    out = subprocess.run(["bash", str(ENGINES / script), "start"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(extra_env or {})), timeout=300).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def engine_stop(script: str, folder: str) -> None:
    subprocess.run(["bash", str(ENGINES / script), "stop", folder], capture_output=True, check=False, timeout=120)


class Nodes:
    def __init__(self, urls: list[str], pids: list[int], users: list[str]) -> None:
        self.urls, self.pids, self.users = urls, pids, users
        self.clients = [httpx.Client(auth=httpx.BasicAuth(u, PASSWORD), timeout=600, trust_env=False,
                                     limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
                        for u in users]

    def base(self, k: int, nodes: int) -> str:
        """The WebDAV root of client k's user on the node client k talks to."""
        return f"{self.urls[k % nodes]}/remote.php/dav/files/{self.users[k % len(self.users)]}/"

    def client(self, k: int) -> httpx.Client:
        return self.clients[k % len(self.users)]

    def cpu(self) -> float:
        return sum(tree_cpu_seconds(p) for p in self.pids)


def check(r: httpx.Response, ok: tuple[int, ...], what: str) -> None:
    if r.status_code not in ok:
        raise RuntimeError(f"{what}: HTTP {r.status_code} (wanted {ok}): {r.text[:300]!r}")


def small_step(nd: Nodes, nodes: int, tag: str, n: int, pool: cf.Executor) -> tuple[float, float]:
    """(PUT ops/s, GET ops/s) of n 4 KiB files, client i % 16 uploads file i."""
    payloads = [os.urandom(4096) for _ in range(n)]
    path = [f"{tag}-{i:05d}.bin" for i in range(n)]

    def put(i: int) -> None:
        k = i % 16
        r = nd.client(k).put(nd.base(k, nodes) + path[i], content=payloads[i])
        check(r, (201, 204), f"PUT {path[i]}")

    def get(i: int) -> None:
        k = i % 16
        r = nd.client(k).get(nd.base(k, nodes) + path[i])
        check(r, (200,), f"GET {path[i]}")
        if r.content != payloads[i]:
            raise RuntimeError(f"GET {path[i]}: wrong content")

    os.sync()
    t0 = time.perf_counter()
    list(pool.map(put, range(n)))
    put_s = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    list(pool.map(get, range(n)))
    get_s = n / (time.perf_counter() - t0)
    list(pool.map(lambda i: check(nd.client(i % 16).delete(nd.base(i % 16, nodes) + path[i]), (204,), "DELETE"),
                  range(n)))
    return put_s, get_s


def big_step(nd: Nodes, nodes: int, tag: str, mib: int, files: int = 4) -> tuple[float, float]:
    """(PUT MiB/s, GET MiB/s) of `files` files of mib MiB each, all at once, client k on node k % nodes."""
    sources = [os.urandom(4 * MiB) for _ in range(files)]

    def body(k: int):
        for j in range(mib // 4):
            buf = bytearray(sources[k])
            buf[:8] = j.to_bytes(8, "big")  # every 4 MiB piece differs: no deduplication
            yield bytes(buf)

    def put(k: int) -> None:
        r = nd.client(k).put(nd.base(k, nodes) + f"{tag}-{k}.bin", content=body(k),
                             headers={"Content-Length": str(mib * MiB)})
        check(r, (201, 204), f"PUT {tag}-{k}.bin")

    def get(k: int) -> None:
        got = 0
        with nd.client(k).stream("GET", nd.base(k, nodes) + f"{tag}-{k}.bin") as r:
            check(r, (200,), f"GET {tag}-{k}.bin")
            for piece in r.iter_raw(MiB):
                got += len(piece)
        if got != mib * MiB:
            raise RuntimeError(f"GET {tag}-{k}.bin: {got} bytes")

    with cf.ThreadPoolExecutor(files) as pool:
        os.sync()
        t0 = time.perf_counter()
        list(pool.map(put, range(files)))
        put_s = files * mib / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        list(pool.map(get, range(files)))
        get_s = files * mib / (time.perf_counter() - t0)
        list(pool.map(lambda k: nd.client(k).delete(nd.base(k, nodes) + f"{tag}-{k}.bin"), range(files)))
    return put_s, get_s


def poll_step(nd: Nodes, nodes: int, seconds: int, work: Path) -> float:
    """Total PROPFIND Depth 0 getetag req/s, 16 connections split over the nodes used."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed; run scripts/install-deps.sh")
    results: list[float] = [0.0] * nodes
    errors: list[str] = []

    def run(i: int) -> None:
        user = nd.users[i % len(nd.users)]
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        script = work / f"poll{i}.lua"
        script.write_text('wrk.method = "PROPFIND"\n'
                          f"wrk.body = '{POLL_BODY}'\n"
                          'wrk.headers["Depth"] = "0"\n'
                          'wrk.headers["Content-Type"] = "application/xml; charset=utf-8"\n'
                          f'wrk.headers["Authorization"] = "Basic {token}"\n')
        out = subprocess.run([wrk, "-t1", f"-c{16 // nodes}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                              nd.base(i, nodes)],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m or re.search(r"Non-2xx or 3xx responses|Socket errors", out):
            errors.append(out)
        else:
            results[i] = float(m.group(1))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("wrk failed or saw errors:\n" + "\n".join(errors))
    return sum(results)


STEPS = [("small PUT 4 KiB (16 clients)", "ops/s"), ("small GET 4 KiB (16 clients)", "ops/s"),
         ("large PUT (4 at once)", "MiB/s"), ("large GET (4 at once)", "MiB/s"),
         ("poll PROPFIND Depth 0 (wrk, 16 conn)", "req/s")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--small", type=int, default=1000, help="small files per step")
    ap.add_argument("--big-mib", type=int, default=128, help="size of each large file (multiple of 4)")
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--pg-url", help="superuser URL of a running PostgreSQL (default: start one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    started = dt.datetime.now()
    work = Path(tempfile.mkdtemp(prefix="cartable-nodes."))
    pg_env: dict[str, str] = {}
    s3_env: dict[str, str] = {}
    stops: list = []
    try:
        if args.pg_url:
            admin_url = args.pg_url
        else:
            pg_env = engine_start("postgres.sh", {"PG_FSYNC": "on"})
            admin_url = pg_env["DATABASE_URL"]
        log("starting Ceph RGW ...")
        s3_env = engine_start("s3-ceph.sh")
        from tests.engines import Engine, _create_bucket

        bucket = "nodes-" + secrets.token_hex(6)
        _create_bucket(Engine("ceph", s3_env), bucket)
        db = "nodes_" + secrets.token_hex(4)
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{db}"')
            fsync = c.execute("SHOW fsync").fetchone()[0]
            pgver = c.execute("SHOW server_version").fetchone()[0]
        sa_url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + db
        settings = {"CARTABLE_DATABASE_URL": sa_url, "CARTABLE_BLOB_STORE": "s3",
                    "CARTABLE_S3_ENDPOINT": s3_env["S3_ENDPOINT_URL"], "CARTABLE_S3_BUCKET": bucket,
                    "CARTABLE_S3_ACCESS_KEY": s3_env["AWS_ACCESS_KEY_ID"],
                    "CARTABLE_S3_SECRET_KEY": s3_env["AWS_SECRET_ACCESS_KEY"], "CARTABLE_S3_REGION": "us-east-1"}

        from cartable.config import load_settings
        from cartable.core.accounts import create_user
        from cartable.server import open_core

        core = open_core(load_settings(overrides={"data": work / "init"}, environ=settings))
        users = [f"user{i:02d}" for i in range(args.users)]
        for u in users:
            create_user(core, u, PASSWORD)
        core.db.dispose()
        urls, pids = [], []
        for name in ("a", "b"):
            port = free_port()
            srv = start_cartable(work / f"node-{name}", port, work / f"node-{name}.log", settings)
            stops.append(srv.stop)
            urls.append(f"http://127.0.0.1:{port}")
            pids.append(srv.pid)
            log(f"node {name}: {urls[-1]} (pid {srv.pid})")
        nd = Nodes(urls, pids, users)
        res: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        with cf.ThreadPoolExecutor(16) as pool:
            small_step(nd, 2, "warm", 64, pool)  # connections, auth caches, pools on both nodes
            for rnd in range(1, args.rounds + 1):
                order = [1, 2] if rnd % 2 else [2, 1]
                log(f"round {rnd}/{args.rounds} (order: {order})")
                for n in order:
                    tag = f"r{rnd}n{n}"
                    c0 = nd.cpu()
                    p, g = small_step(nd, n, tag, args.small, pool)
                    c1 = nd.cpu()
                    bp, bg = big_step(nd, n, tag, args.big_mib)
                    c2 = nd.cpu()
                    pl = poll_step(nd, n, args.wrk_seconds, work)
                    c3 = nd.cpu()
                    for (step, _), v in zip(STEPS, (p, g, bp, bg, pl)):
                        res.setdefault((step, n), []).append(v)
                    cpu.setdefault(("small", n), []).append((c1 - c0) / (2 * args.small))
                    cpu.setdefault(("big", n), []).append((c2 - c1) / (2 * 4 * args.big_mib))
                    cpu.setdefault(("poll", n), []).append((c3 - c2) / max(1.0, pl * args.wrk_seconds))
                    log(f"  {n} node(s): small PUT {p:.0f}/s GET {g:.0f}/s, large PUT {bp:.0f} MiB/s "
                        f"GET {bg:.0f} MiB/s, poll {pl:.0f} req/s")
        for c in nd.clients:
            c.close()
        lines = [f"# One node against two {started:%Y-%m-%d %H:%M}", "",
                 f"- machine: {platform.node()}, {os.cpu_count()} cores (shared by both nodes, PostgreSQL, "
                 f"RGW and the clients), load average at start {os.getloadavg()[0]:.1f}",
                 f"- PostgreSQL {pgver} (fsync={fsync}), Ceph RGW (one OSD, BlueStore on a file), one bucket; "
                 f"{args.users} users; {args.rounds} rounds, order alternating",
                 f"- small: {args.small} × 4 KiB, 16 client threads (httpx); large: 4 × {args.big_mib} MiB at "
                 "once; poll: wrk, 16 connections in all", "",
                 "| workload | 1 node | 2 nodes | ratio 2/1 | min–max of per-round ratios |", "|---|---|---|---|---|"]
        for step, unit in STEPS:
            one, two = res[(step, 1)], res[(step, 2)]
            ratios = [b / a for a, b in zip(one, two)]
            lines.append(f"| {step} | {statistics.median(one):,.0f} {unit} | {statistics.median(two):,.0f} {unit} "
                         f"| **{statistics.median(ratios):.2f}** | {min(ratios):.2f}–{max(ratios):.2f} |")
        lines += ["", "Server CPU (both nodes together), median: "
                  + "; ".join(f"{k} {statistics.median(cpu[(k, 1)]) * 1000:.2f} → "
                              f"{statistics.median(cpu[(k, 2)]) * 1000:.2f} ms per "
                              f"{'MiB' if k == 'big' else 'op'}" for k in ("small", "big", "poll"))]
        text = "\n".join(lines) + "\n"
        print()
        print(text)
        out = args.out or REPO / "bench" / "results" / f"nodes-{started:%Y-%m-%d-%H%M}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"written to {out}")
        for name in ("a", "b"):
            errs = [ln for ln in (work / f"node-{name}.log").read_text(errors="replace").splitlines()
                    if '" 5' in ln or "Traceback" in ln]
            if errs:
                print(f"node {name}: {len(errs)} 5xx/traceback lines, first: {errs[0]}")
        return 0
    finally:
        for stop in stops:
            stop()
        if s3_env:
            engine_stop("s3-ceph.sh", s3_env["CARTABLE_S3_DIR"])
        if pg_env:
            engine_stop("postgres.sh", pg_env["CARTABLE_PG_DIR"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
