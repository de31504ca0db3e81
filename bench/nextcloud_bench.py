#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""Nextcloud-client benchmark for cartable (loopback, one run):

  (0) nextcloudcmd FIRST sync of a 10,000-small-file tree, once against a server started with
      bulk upload off (CARTABLE_BULK_UPLOAD=false: dav.bulkupload not advertised, one PUT per
      file) and once with it on (POST /remote.php/dav/bulk, up to 100 files a request), each from
      a fresh copy of the tree with a fresh client journal; wall time, requests on the wire, the
      server's CPU seconds, and the ratio;
  (a) nextcloudcmd no-change sync of a 10,000-file tree: first sync untimed, then 3 timed no-change
      syncs straight to the server (wall time), plus one more through a logging proxy to count the
      requests a no-change sync makes;
  (b) the desktop GUI's 30-second poll: PROPFIND Depth 0 on the user root asking for getetag,
      hammered by wrk (16 connections, 10 s); implied clients per process = req/s × 30.

    python bench/nextcloud_bench.py [--files 10000] [--duration 10] [--connections 16] [--tmp DIR]
                                    [--only first-sync|no-change]

Needs nextcloudcmd and wrk (scripts/install-deps.sh). Not a test: it asserts no timing, but it does
check that the syncs succeed and that wrk saw no error or non-2xx answer."""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from tests.interop.ncsupport import LoggingProxy, client_env  # noqa: E402
from webdav_bench import free_port, start_cartable, tree_cpu_seconds, wrk_poll  # noqa: E402


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"{tool} is not installed; run scripts/install-deps.sh")
    return path


def make_tree(root: Path, n: int, seed: int = 1) -> None:
    """n small files (1..4 KiB) in 10 × 10 nested folders. Never empty: nextcloudcmd 3.7.x
    aborts a bulk request that holds an empty file (nextcloud/desktop#5824, fixed in 3.9)."""
    rng = random.Random(seed)
    folders = [root / f"top{i:02d}" / f"sub{j:02d}" for i in range(10) for j in range(10)]
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        (folders[k % len(folders)] / f"file{k:05d}.txt").write_bytes(rng.randbytes(rng.randint(1, 4096)))


def first_sync(ncc: str, files: int, work: Path, bulk: bool) -> dict[str, float | int | str]:
    """One server (bulk on or off), one fresh tree and client journal, one timed first sync."""
    name = "bulk" if bulk else "nobulk"
    srv = start_cartable(work / f"data-{name}", free_port(), work / f"cartable-{name}.log",
                         {"CARTABLE_BULK_UPLOAD": "true" if bulk else "false"})
    user, password = base64.b64decode(srv.auth._auth_header.split()[1]).decode().split(":", 1)  # type: ignore[union-attr]
    env = client_env() | {"HOME": str(work / f"home-{name}")}
    try:
        with LoggingProxy(srv.base.split("/remote.php/")[0]) as proxy:
            folder = work / f"tree-{name}"
            make_tree(folder, files)
            subprocess.run(["sync"], check=False)
            cpu0 = tree_cpu_seconds(srv.pid)
            wall = sync(ncc, folder, proxy.url, user, password, env)
            cpu = tree_cpu_seconds(srv.pid) - cpu0
            log = proxy.log
        methods: dict[str, int] = {}
        for r in log:
            methods[r.method] = methods.get(r.method, 0) + 1
        bad = [str(r) for r in log if r.status >= 400]
        if bad:
            raise RuntimeError(f"first sync ({name}) had failed requests: {bad[:10]}")
        return {"wall": wall, "cpu": cpu, "requests": len(log),
                "methods": ", ".join(f"{m} {n}" for m, n in sorted(methods.items(), key=lambda x: -x[1]))}
    finally:
        srv.stop()


def compare_first_sync(ncc: str, files: int, work: Path) -> list[tuple[str, str]]:
    print(f"first sync of {files} small files, bulk upload off then on ...", flush=True)
    off = first_sync(ncc, files, work, bulk=False)
    print(f"  bulk off: {off}", flush=True)
    on = first_sync(ncc, files, work, bulk=True)
    print(f"  bulk on:  {on}", flush=True)
    return [
        (f"first sync, {files} files (1-4 KiB) in 100 folders, bulk upload OFF (wall)",
         f"{off['wall']:.1f} s; {off['requests']} requests ({off['methods']}); server CPU {off['cpu']:.1f} s"),
        (f"first sync, {files} files, bulk upload ON (wall)",
         f"{on['wall']:.1f} s; {on['requests']} requests ({on['methods']}); server CPU {on['cpu']:.1f} s"),
        ("first sync: bulk ON is faster by (wall off / wall on)", f"{off['wall'] / on['wall']:.1f}×"),
    ]


def sync(exe: str, folder: Path, url: str, user: str, password: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([exe, "--non-interactive", "--silent", "-u", user, "-p", password, str(folder), url],
                       env=env, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"nextcloudcmd exited with {p.returncode}:\n{(p.stdout + p.stderr)[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", choices=("first-sync", "no-change"), default=None)
    args = ap.parse_args()
    ncc, wrk = need("nextcloudcmd"), need("wrk")

    work = Path(tempfile.mkdtemp(prefix="nc-bench-", dir=args.tmp))
    rows: list[tuple[str, str]] = []
    if args.only != "no-change":
        try:
            rows += compare_first_sync(ncc, args.files, work)
        finally:
            if args.only == "first-sync" and not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        if args.only == "first-sync":
            print_rows(ncc, rows)
            return
    srv = start_cartable(work / "data", free_port(), work / "cartable.log")
    # start_cartable makes user "admin" with a random password; read it back from its BasicAuth.
    user, password = base64.b64decode(srv.auth._auth_header.split()[1]).decode().split(":", 1)  # type: ignore[union-attr]
    root_url = srv.base.split("/remote.php/")[0]
    env = client_env() | {"HOME": str(work / "home")}
    try:
        # Every sync goes through the logging proxy: nextcloudcmd names its journal after the server
        # URL, so switching URLs between syncs would start over with a fresh journal.
        with LoggingProxy(root_url) as proxy:
            folder = work / "tree"
            make_tree(folder, args.files)
            print(f"first sync of {args.files} files (untimed) ...", flush=True)
            first = sync(ncc, folder, proxy.url, user, password, env)
            sync(ncc, folder, proxy.url, user, password, env)  # lists the folders just made (empty journal etags)
            walls, counts = [], []
            for i in range(3):
                proxy.clear()
                walls.append(sync(ncc, folder, proxy.url, user, password, env))
                log = [str(r) for r in proxy.log]
                counts.append(len(log))
                print(f"  no-change sync {i + 1}: {walls[-1]:.2f} s, {len(log)} requests: {log}", flush=True)
        print(f"wrk: PROPFIND Depth 0 getetag, {args.connections} connections, {args.duration} s ...", flush=True)
        w = wrk_poll(wrk, srv.base, user, password, args.duration, args.connections, work)
        rps = float(w["rps"])
        rows += [
            (f"first sync, {args.files} files in 100 folders (default settings, through the proxy)", f"{first:.1f} s"),
            (f"no-change sync, {args.files} files: wall, median of 3 (through the proxy)",
             f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f})"),
            ("no-change sync: requests per sync", f"{'/'.join(map(str, counts))} ("
             + ", ".join(r.split(" -> ")[0] for r in log[:6]) + (", ..." if len(log) > 6 else "") + ")"),
            (f"poll PROPFIND Depth 0 getetag, {args.connections} conn, {args.duration} s (wrk, direct)",
             f"{rps:,.0f} req/s (p50 {w['p50']}, p99 {w['p99']}, {w['requests']} requests)"),
            ("implied 30-s-polling desktop clients per process (req/s × 30)", f"{rps * 30:,.0f}"),
        ]
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_rows(ncc, rows)


def print_rows(ncc: str, rows: list[tuple[str, str]]) -> None:
    print()
    version = subprocess.run([ncc, "--version"], capture_output=True, text=True, env=client_env()).stdout
    version = next((line for line in version.splitlines() if "version" in line.lower()), "?").strip()
    print(f"{version}; {os.cpu_count()} CPUs; cartable `serve` (its default workers: one per core), loopback")
    print()
    print("| measure | result |")
    print("| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
