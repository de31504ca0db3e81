#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""Which ASGI server should `cartable serve` run? The same cartable app (same settings, SQLite,
one worker process, data folders on the same file system) under uvicorn (uvloop + httptools, what
`cartable serve` runs) and under granian (ASGI interface), measured with wrk in interleaved rounds:

- poll: the desktop client's PROPFIND Depth 0 for getetag, 16 connections;
- small GET: a 4 KiB file, 16 connections;
- big GET: a 256 MiB file, curl, one connection.

    .venv/bin/pip install granian        # not a dependency of cartable: only this bench needs it
    .venv/bin/python bench/servers_bench.py [--rounds 3] [--seconds 8]

Prints requests per second, the server's CPU per request (from /proc) and the ratio granian /
uvicorn, medians over the rounds with their spread. Not a test: no timing is asserted, but every
answer is checked (wrk's non-2xx count, curl's byte count).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from webdav_bench import POLL_BODY, free_port, start_cartable, tree_cpu_seconds, wrk_poll

HERE = Path(__file__).resolve().parent


def start_granian(data: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = Path(sys.executable).parent / "granian"
    if not exe.exists():
        raise SystemExit("granian is not installed in this venv: .venv/bin/pip install granian")
    password = "bench-admin-pw"
    env = dict(os.environ, CARTABLE_DATA=str(data), CARTABLE_ADMIN_USER="admin", CARTABLE_ADMIN_PASSWORD=password,
               CARTABLE_LOG_LEVEL="warning",
               PYTHONPATH=os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.Popen([str(exe), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--loop", "uvloop", "--factory", "asgi_factory:app"],
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_cartable/health", timeout=1).status_code == 200:
                return proc, password
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"granian did not start; see {log}")


def wrk_get(url: str, password: str, seconds: int) -> dict[str, str]:
    import base64
    import re

    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    script.write_text(f'wrk.headers["Authorization"] = "Basic {token}"\n')
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    script.unlink()
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failures:\n{out}")
    return {"rps": re.search(r"Requests/sec:\s+([\d.]+)", out).group(1),  # type: ignore[union-attr]
            "requests": re.search(r"(\d+) requests in", out).group(1)}  # type: ignore[union-attr]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("curl") is None:
        raise SystemExit("needs wrk and curl (apt-get install wrk curl)")
    tmp = Path(tempfile.mkdtemp(prefix="cartable-servers."))
    procs: list[subprocess.Popen[bytes]] = []
    stops = []
    try:
        servers: dict[str, tuple[int, str, int]] = {}  # name -> (pid, password, port)
        port = free_port()
        srv = start_cartable(tmp / "uvicorn-data", port, tmp / "uvicorn.log", {"CARTABLE_WORKERS": "1"})
        stops.append(srv.stop)
        servers["uvicorn"] = (srv.pid, srv.password, port)
        port = free_port()
        proc, password = start_granian(tmp / "granian-data", port, tmp / "granian.log")
        procs.append(proc)
        servers["granian"] = (proc.pid, password, port)
        big = tmp / "big.bin"
        with open(big, "wb") as f:
            for _ in range(64):
                f.write(os.urandom(4 * 1024 * 1024))
        for name, (_, password, port) in servers.items():
            base = f"http://127.0.0.1:{port}/remote.php/dav/files/admin/"
            with httpx.Client(auth=("admin", password), timeout=600) as c:
                assert c.put(base + "small.bin", content=os.urandom(4096)).status_code == 201
                with open(big, "rb") as f:
                    assert c.put(base + "big.bin", content=f).status_code == 201
                assert c.request("PROPFIND", base, content=POLL_BODY, headers={"Depth": "0"}).status_code == 207
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            for name in order:
                pid, password, port = servers[name]
                base = f"http://127.0.0.1:{port}/remote.php/dav/files/admin/"
                for step in ("poll", "small GET", "big GET"):
                    cpu0 = tree_cpu_seconds(pid)
                    if step == "poll":
                        out = wrk_poll("wrk", base, "admin", password, args.seconds, 16, tmp)
                        rate, n = float(out["rps"]), int(out["requests"])
                    elif step == "small GET":
                        out = wrk_get(base + "small.bin", password, args.seconds)
                        rate, n = float(out["rps"]), int(out["requests"])
                    else:
                        t0 = time.perf_counter()
                        got = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "-u",
                                              f"admin:{password}", base + "big.bin"], capture_output=True,
                                             text=True, check=True).stdout
                        wall = time.perf_counter() - t0
                        if int(got) != big.stat().st_size:
                            raise RuntimeError(f"{name}: big GET gave {got} bytes")
                        rate, n = big.stat().st_size / wall / 2**20, 1
                    cpu = tree_cpu_seconds(pid) - cpu0
                    results.setdefault((name, step), []).append((rate, cpu / n))
                    unit = "MiB/s" if step == "big GET" else "req/s"
                    print(f"  r{rnd + 1} {name:8} {step:10} {rate:10.1f} {unit}  cpu/op {cpu / n * 1e3:.3f} ms",
                          flush=True)
        print()
        print("| step | uvicorn | granian | granian / uvicorn (median, min–max) |")
        print("|---|---|---|---|")
        for step in ("poll", "small GET", "big GET"):
            u, g = results[("uvicorn", step)], results[("granian", step)]
            ratios = [gr[0] / ur[0] for gr, ur in zip(g, u)]
            unit = "MiB/s" if step == "big GET" else "req/s"
            cells = [f"{statistics.median(r for r, _ in x):.0f} {unit}, "
                     f"{statistics.median(c for _, c in x) * 1e3:.2f} ms CPU/op" for x in (u, g)]
            print(f"| {step} | {cells[0]} | {cells[1]} | **{statistics.median(ratios):.2f}** "
                  f"({min(ratios):.2f}–{max(ratios):.2f}) |")
        return 0
    finally:
        for stop in stops:
            stop()
        for proc in procs:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
