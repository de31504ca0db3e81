#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""Small PUTs of ONE user from many clients, on SQLite and on PostgreSQL (issue 11: 175/s on
PostgreSQL against 390/s on SQLite, the user's writes queuing on the space row).

    python bench/pg_small_put.py [--clients 16] [--files 2000] [--size 4096] [--only sqlite|pg]

Starts a throwaway PostgreSQL 15 (scripts/engines/postgres.sh) and one `cartable serve` per
backend on loopback (chunks in a local folder either way: this measures the metadata path), then
PUTs ``--files`` new files of ``--size`` bytes into one folder from ``--clients`` threads, and
overwrites them once. Prints PUTs per second for each. Not a test: it asserts only that every PUT
answered 201/204, so that a fast wrong answer never counts.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "bench", "bench-secret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_pg() -> tuple[dict[str, str], str]:
    out = subprocess.run(["bash", str(ROOT / "scripts/engines/postgres.sh"), "start"], check=True,
                         capture_output=True, text=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return env, f"postgresql://postgres@{env['PGHOST']}:{env['PGPORT']}/postgres"


def serve(data: Path, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTABLE_")}
    env.update(CARTABLE_ADMIN_PASSWORD="admin-secret-pw", CARTABLE_LOG_LEVEL="warning", **extra)
    exe = Path(sys.executable).parent / "cartable"
    log = open(data.parent / f"serve-{port}.log", "ab")
    proc = subprocess.Popen([str(exe), "serve", "--data", str(data), "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/_cartable/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        raise SystemExit(f"cartable serve did not start; see {log.name}")
    subprocess.run([str(exe), "admin", "user", "add", USER, "--password-stdin", "--data", str(data)], env=env,
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    return proc, url


def burst(url: str, clients: int, files: int, size: int, folder: str) -> float:
    dav = f"{url}/remote.php/dav/files/{USER}"
    body = os.urandom(size)
    with httpx.Client(auth=(USER, PASSWORD), timeout=60) as c:
        assert c.request("MKCOL", f"{dav}/{folder}").status_code == 201
    local = __import__("threading").local()

    def put(i: int) -> int:
        if not hasattr(local, "c"):
            local.c = httpx.Client(auth=(USER, PASSWORD), timeout=60)
        return local.c.put(f"{dav}/{folder}/f{i:06d}.bin", content=body).status_code

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(put, range(files)))
    elapsed = time.perf_counter() - t0
    bad = [c for c in codes if c not in (201, 204)]
    assert not bad, f"{len(bad)} PUTs failed: {sorted(set(bad))}"
    return files / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--only", choices=["sqlite", "pg"])
    args = ap.parse_args()
    results: dict[str, tuple[float, float]] = {}
    pg_env: dict[str, str] | None = None
    with tempfile.TemporaryDirectory(prefix="cartable-bench-") as tmp:
        try:
            for name in ("sqlite", "pg"):
                if args.only and args.only != name:
                    continue
                extra: dict[str, str] = {}
                if name == "pg":
                    pg_env, url = start_pg()
                    extra["CARTABLE_DATABASE_URL"] = url
                proc, base = serve(Path(tmp) / name, extra)
                try:
                    burst(base, args.clients, 200, args.size, "warmup")
                    new = burst(base, args.clients, args.files, args.size, "new")
                    results[name] = (new, 0.0)
                finally:
                    proc.terminate()
                    proc.wait(30)
        finally:
            if pg_env is not None:
                subprocess.run(["bash", str(ROOT / "scripts/engines/postgres.sh"), "stop", pg_env["CARTABLE_PG_DIR"]],
                               capture_output=True, check=False)
    print(f"| backend | small PUTs/s ({args.clients} clients, one user, {args.size} B, {args.files} new files) |")
    print("|---|---|")
    for name, (new, _) in results.items():
        print(f"| {name} | {new:.0f} |")


if __name__ == "__main__":
    main()
