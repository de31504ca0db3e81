#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""WebDAV benchmark: cartable against Apache httpd (mod_dav_fs) on loopback, same machine, one run.

    python bench/webdav_bench.py [--rounds 3] [--quick] [--only apache|cartable] [--tmp DIR]
                                 [--database sqlite|pg|both] [--workers N] [--poll-seconds 10]

Starts both servers itself, with both data folders on the same file system, and for each round runs
every step group on both servers in turn (the order alternates between rounds: A B, B A, ...),
calling sync(2) before each timed step. Reports wall time, throughput and the server's own CPU
seconds (utime+stime of its whole process tree, from /proc) per step; prints a Markdown table of
medians over the rounds and writes it to bench/results/webdav-<date>.md.

``--database both`` runs cartable twice in the same rounds: on SQLite ("cartable") and on a
throwaway PostgreSQL 15 with fsync on ("cartable-pg"); each is compared with Apache. The poll row
is wrk (16 connections) sending the desktop client's PROPFIND Depth 0 for getetag.

This is not a test: it never asserts timings. It does check that every request did what it should
(status codes, lengths, entry counts) so that a fast wrong answer never counts as a win.
"""

from __future__ import annotations

import argparse
import array
import base64
import concurrent.futures as cf
import datetime as dt
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import httpx

MiB = 1024 * 1024
GiB = 1024 * MiB
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PIECE = 4 * MiB  # the big file is generated and streamed in pieces of this size
STAMP_EVERY = 4096  # bytes: each 4 KiB block of an upload starts with that upload's own nonce

PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
    b"</d:prop></d:propfind>"
)
# The desktop client's poll (wrk_poll).
POLL_BODY = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
RESPONSE_RE = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?response[\s>]")


@dataclass
class Sizes:
    big: int  # bytes of the single large file
    small_n: int  # number of small files
    small_size: int  # bytes per small file
    tree_n: int  # entries in the PROPFIND / MOVE / DELETE folder
    propfind_reps: int
    threads: int


FULL = Sizes(big=1 * GiB, small_n=2000, small_size=4096, tree_n=5000, propfind_reps=5, threads=16)
QUICK = Sizes(big=64 * MiB, small_n=200, small_size=4096, tree_n=500, propfind_reps=5, threads=16)


# --------------------------------------------------------------------------------------------------
# measuring


def tree_pids(root_pid: int) -> list[int]:
    """root_pid and all its descendants (a server's workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry.name))
    out, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def reset_peak_memory(root_pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of the server's processes (Linux: clear_refs 5; needs to own
    them or be root). False if the kernel refused: peaks then count from the process start."""
    ok = True
    for pid in tree_pids(root_pid):
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def peak_memory_mib(root_pid: int) -> float:
    """The largest peak RSS (VmHWM) of one process of the server's tree, MiB: per worker, since
    reset_peak_memory."""
    peak = 0
    for pid in tree_pids(root_pid):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def tree_cpu_seconds(root_pid: int) -> float:
    """utime+stime (+ reaped children's cutime+cstime) of root_pid and all its descendants."""
    parent: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rindex(b")") + 2 :].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        # fields[0] is state (field 3); utime is field 14 -> index 11
        times[pid] = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    if root_pid not in times:
        raise RuntimeError(f"server process {root_pid} is gone")
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / CLK_TCK


@dataclass
class Measure:
    step: str
    server: str
    round: int
    wall: float  # seconds
    cpu: float  # server CPU seconds
    amount: float  # MiB or operations
    unit: str  # "MiB/s", "ops/s", "files/s", "req/s"
    note: str = ""
    client_cpu: float = 0.0  # this benchmark process's CPU seconds (all threads) for the step
    peak_mib: float = 0.0  # the largest peak RSS of one server process (a worker) during the step

    @property
    def speed(self) -> float:
        return self.amount / self.wall if self.wall > 0 else float("inf")


# --------------------------------------------------------------------------------------------------
# servers


def self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    base: str  # WebDAV collection URL, ends with /
    pid: int
    auth: httpx.Auth | None = None
    stop: Callable[[], None] = lambda: None
    info: str = ""
    password: str = "unused"  # the admin's (wrk sends it; Apache has no auth and ignores it)
    client: httpx.Client | None = field(default=None, repr=False)


def start_apache(data: Path, port: int) -> Server:
    out = subprocess.run(
        ["bash", str(HERE / "apache.sh"), "start", str(data), str(port)],
        check=True, capture_output=True, text=True,
    ).stdout
    kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    version = subprocess.run(["/usr/sbin/apache2", "-v"], capture_output=True, text=True).stdout
    version = version.splitlines()[0].split(":", 1)[-1].strip() if version else "?"

    def stop() -> None:
        subprocess.run(["bash", str(HERE / "apache.sh"), "stop", kv["APACHE_DIR"]], check=False,
                       capture_output=True)

    return Server("apache", kv["APACHE_URL"], int(kv["APACHE_PID"]), None, stop,
                  f"{version}, mpm_event, mod_dav_fs, no auth")


def start_cartable(data: Path, port: int, log: Path, settings: dict[str, str] | None = None,
                   ready_seconds: float = 30, name: str = "cartable") -> Server:
    """settings: extra CARTABLE_* environment (e.g. {"CARTABLE_BULK_UPLOAD": "false"});
    ready_seconds: how long to wait for the health check."""
    exe = Path(sys.executable).parent / "cartable"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cartable"]
    cmd += ["serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    password = secrets.token_urlsafe(18)
    env = dict(os.environ, CARTABLE_ADMIN_USER="admin", CARTABLE_ADMIN_PASSWORD=password, **(settings or {}))
    logf = open(log, "ab")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                print("cartable did not stop within 15 s after SIGTERM: SIGKILL", file=sys.stderr)
                proc.kill()
                proc.wait(5)
        logf.close()

    health = f"http://127.0.0.1:{port}/_cartable/health"
    deadline = time.monotonic() + ready_seconds
    while True:
        if proc.poll() is not None:
            logf.flush()
            tail = log.read_text(errors="replace")[-3000:]
            stop()
            raise RuntimeError(f"cartable exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            if httpx.get(health, timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop()
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"cartable not healthy at {health} after {ready_seconds:.0f} s:\n{tail}")
        time.sleep(0.05)
    try:
        from importlib.metadata import version

        ver = version("cartable")
    except Exception:
        ver = "?"
    srv = Server(name, f"http://127.0.0.1:{port}/remote.php/dav/files/admin/", proc.pid,
                 httpx.BasicAuth("admin", password), stop, f"cartable {ver}, `{' '.join(cmd[1:])}`"
                 + "".join(f" {k}={v}" for k, v in (settings or {}).items() if "PASSWORD" not in k
                           and not k.endswith("DATABASE_URL")))
    srv.password = password
    return srv


def wrk_poll(wrk: str, url: str, user: str, password: str, duration: int, connections: int,
             work: Path) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    script = work / "poll.lua"
    script.write_text(
        'wrk.method = "PROPFIND"\n'
        f"wrk.body = '{POLL_BODY}'\n"
        'wrk.headers["Depth"] = "0"\n'
        'wrk.headers["Content-Type"] = "application/xml; charset=utf-8"\n'
        f'wrk.headers["Authorization"] = "Basic {token}"\n'
        'wrk.headers["User-Agent"] = "Mozilla/5.0 (Linux) mirall/3.7.3 (bench)"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("STATUS_ERRORS %d\\n", summary.errors.status))\n'
        "end\n")
    threads = min(connections, os.cpu_count() or 2)
    out = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency",
                          "-s", str(script),
                          url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    if bad or errs:
        raise RuntimeError(f"wrk saw failures (non-2xx: {bad and bad.group(1)}, "
                           f"socket: {errs and errs.group(1)}):\n{out}")
    lat = {p: re.search(rf"^\s+{p}%\s+(\S+)", out, re.M) for p in ("50", "99")}
    total = re.search(r"(\d+) requests in", out)
    return {"rps": rps.group(1), "p50": lat["50"].group(1) if lat["50"] else "?",
            "p99": lat["99"].group(1) if lat["99"] else "?", "requests": total.group(1) if total else "?"}


# --------------------------------------------------------------------------------------------------
# payloads


def make_source(path: Path, size: int) -> None:
    """Random bytes from os.urandom in 4 MiB pieces, once; every upload streams (and stamps) it."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(PIECE, left)
            f.write(os.urandom(n))
            left -= n


def stamped_pieces(path: Path, size: int, nonce: int) -> Iterator[bytes]:
    """Stream the source file, overwriting the first 8 bytes of every 4 KiB block with a nonce unique
    to this upload: the content never repeats inside a file (urandom) nor between uploads, so a
    deduplicating server can't skip work that a plain one does. Costs the client well under 1 ms/piece."""
    stamp_cache: dict[int, array.array] = {}
    with open(path, "rb", buffering=0) as f:
        left = size
        while left:
            buf = bytearray(f.read(min(PIECE, left)))
            if not buf:
                raise RuntimeError("source file shorter than expected")
            words = len(buf) // 8
            step = STAMP_EVERY // 8
            count = (words + step - 1) // step
            if words and count not in stamp_cache:
                stamp_cache[count] = array.array("Q", [nonce]) * count
            if words:
                memoryview(buf)[: words * 8].cast("Q")[::step] = stamp_cache[count]
            left -= len(buf)
            yield buf  # httpx sends a bytearray as is: no extra copy


def small_payloads(n: int, size: int) -> list[bytes]:
    return [os.urandom(size) for _ in range(n)]


# --------------------------------------------------------------------------------------------------
# steps


class Bench:
    def __init__(self, sizes: Sizes, source: Path, verbose: bool = True, poll_seconds: int = 10):
        self.sizes = sizes
        self.poll_seconds = poll_seconds
        self.source = source
        self.results: list[Measure] = []
        self.verbose = verbose
        self.nonce = secrets.randbits(63)

    def timed(self, srv: Server, rnd: int, step: str, amount: float, unit: str,
              fn: Callable[[], str | None]) -> Measure:
        os.sync()
        reset_peak_memory(srv.pid)
        cpu0 = tree_cpu_seconds(srv.pid)
        self0 = self_cpu_seconds()
        t0 = time.perf_counter()
        note = fn() or ""
        wall = time.perf_counter() - t0
        client_cpu = self_cpu_seconds() - self0
        cpu = tree_cpu_seconds(srv.pid) - cpu0
        m = Measure(step, srv.name, rnd, wall, cpu, amount, unit, note, client_cpu, peak_memory_mib(srv.pid))
        self.record(m)
        return m

    def record(self, m: Measure) -> None:
        self.results.append(m)
        if self.verbose:
            print(f"  r{m.round} {m.server:8} {m.step:30} {m.wall:8.3f} s {m.speed:10.1f} {m.unit:7}"
                  f" server cpu {m.cpu:6.2f} s, client cpu {m.client_cpu:6.2f} s {m.note}", flush=True)

    # -- helpers
    @staticmethod
    def check(r: httpx.Response, ok: tuple[int, ...], what: str) -> None:
        if r.status_code not in ok:
            raise RuntimeError(f"{what}: HTTP {r.status_code} (wanted {ok}): {r.text[:300]!r}")

    def mkcol(self, srv: Server, path: str) -> None:
        r = srv.client.request("MKCOL", srv.base + path)
        self.check(r, (201,), f"MKCOL {path}")

    def delete(self, srv: Server, path: str) -> None:
        r = srv.client.request("DELETE", srv.base + path)
        self.check(r, (200, 204), f"DELETE {path}")

    def parallel_puts(self, srv: Server, folder: str, payloads: list[bytes], pool: cf.Executor) -> None:
        c = srv.client

        def put(i: int) -> None:
            r = c.put(f"{srv.base}{folder}f{i:05d}.bin", content=payloads[i])
            self.check(r, (200, 201, 204), f"PUT {folder}f{i:05d}.bin")

        for _ in pool.map(put, range(len(payloads))):
            pass

    # -- step groups (each leaves the server as it found it)
    def group_big(self, srv: Server, rnd: int) -> None:
        size = self.sizes.big
        name = f"big-r{rnd}.bin"
        self.nonce += 1
        nonce = self.nonce
        label = f"{size // MiB} MiB"

        def put() -> str:
            r = srv.client.put(srv.base + name, content=stamped_pieces(self.source, size, nonce),
                               headers={"Content-Length": str(size),
                                        "Content-Type": "application/octet-stream"})
            self.check(r, (200, 201, 204), f"PUT {name}")
            return ""

        def get() -> str:
            n = 0
            with srv.client.stream("GET", srv.base + name) as r:
                self.check(r, (200,), f"GET {name}")
                for chunk in r.iter_raw(1 * MiB):
                    n += len(chunk)
            if n != size:
                raise RuntimeError(f"GET {name}: {n} bytes, wanted {size}")
            return ""

        self.timed(srv, rnd, f"PUT {label} file", size / MiB, "MiB/s", put)
        self.timed(srv, rnd, f"GET {label} file", size / MiB, "MiB/s", get)
        self.delete(srv, name)

    def group_small(self, srv: Server, rnd: int, pool: cf.Executor) -> None:
        n, size = self.sizes.small_n, self.sizes.small_size
        folder = f"small-r{rnd}/"
        payloads = small_payloads(n, size)
        self.mkcol(srv, folder)
        c = srv.client

        def get(i: int) -> None:
            r = c.get(f"{srv.base}{folder}f{i:05d}.bin")
            self.check(r, (200,), f"GET {folder}f{i:05d}.bin")
            if r.content != payloads[i]:
                raise RuntimeError(f"GET {folder}f{i:05d}.bin: wrong content ({len(r.content)} bytes)")

        def gets() -> str:
            for _ in pool.map(get, range(n)):
                pass
            return ""

        t = self.sizes.threads
        self.timed(srv, rnd, f"PUT {n}×{size // 1024} KiB ({t} thr)", n, "ops/s",
                   lambda: self.parallel_puts(srv, folder, payloads, pool))
        self.timed(srv, rnd, f"GET {n}×{size // 1024} KiB ({t} thr)", n, "ops/s", gets)
        self.delete(srv, folder)

    def group_poll(self, srv: Server, rnd: int, work: Path) -> None:
        """The desktop client's poll, PROPFIND Depth 0 for getetag, from wrk (16 connections)."""
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("wrk is not installed (apt-get install wrk; scripts/install-deps.sh does)")
        seen: dict[str, str] = {}

        def poll() -> str:
            seen.update(wrk_poll(wrk, srv.base, "admin", srv.password, self.poll_seconds, 16, work))
            return f"p50 {seen['p50']}, p99 {seen['p99']}"

        # Warm up: the credential verified once (argon2), as a desktop client's is after its first poll.
        r = srv.client.request("PROPFIND", srv.base, content=POLL_BODY.encode(), headers={"Depth": "0"})
        self.check(r, (207,), "PROPFIND Depth 0 (warm-up)")
        os.sync()
        reset_peak_memory(srv.pid)
        cpu0 = tree_cpu_seconds(srv.pid)
        note = poll()
        cpu = tree_cpu_seconds(srv.pid) - cpu0
        # wrk's own count over its own duration (a wall clock here would add its start and stop).
        requests = int(seen["requests"])
        if not requests or not float(seen["rps"]):
            raise RuntimeError(f"wrk made no request to {srv.name} in {self.poll_seconds} s: {seen}")
        self.record(Measure("poll PROPFIND D0 (wrk, 16 conn)", srv.name, rnd, requests / float(seen["rps"]), cpu,
                            requests, "ops/s", note, 0.0, peak_memory_mib(srv.pid)))

    def group_tree(self, srv: Server, rnd: int, pool: cf.Executor) -> None:
        n = self.sizes.tree_n
        folder, moved = f"tree-r{rnd}/", f"moved-r{rnd}/"
        self.mkcol(srv, folder)
        self.parallel_puts(srv, folder, small_payloads(n, 100), pool)  # untimed setup

        walls: list[float] = []
        cpus: list[float] = []
        sizes: list[int] = []
        self0 = self_cpu_seconds()
        reset_peak_memory(srv.pid)
        for _ in range(self.sizes.propfind_reps):
            os.sync()
            cpu0 = tree_cpu_seconds(srv.pid)
            t0 = time.perf_counter()
            r = srv.client.request("PROPFIND", srv.base + folder, content=PROPFIND_BODY,
                                   headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
            body = r.content
            walls.append(time.perf_counter() - t0)
            cpus.append(tree_cpu_seconds(srv.pid) - cpu0)
            self.check(r, (207,), f"PROPFIND {folder}")
            entries = len(RESPONSE_RE.findall(body))
            if entries != n + 1:
                raise RuntimeError(f"PROPFIND {folder}: {entries} entries, wanted {n + 1}")
            sizes.append(len(body))
        m = Measure(f"PROPFIND depth 1, {n} entries", srv.name, rnd, statistics.median(walls),
                    sum(cpus) / len(cpus), 1, "req/s",
                    f"wall: median of {len(walls)}, cpu: mean; {sizes[0] / 1e6:.2f} MB",
                    (self_cpu_seconds() - self0) / len(walls), peak_memory_mib(srv.pid))
        self.record(m)

        def move() -> str:
            r = srv.client.request("MOVE", srv.base + folder,
                                   headers={"Destination": srv.base + moved, "Overwrite": "F"})
            self.check(r, (201, 204), f"MOVE {folder} -> {moved}")
            return ""

        def delete() -> str:
            self.delete(srv, moved)
            return ""

        self.timed(srv, rnd, f"MOVE folder of {n}", n, "files/s", move)
        self.timed(srv, rnd, f"DELETE folder of {n}", n, "files/s", delete)
        r = srv.client.request("PROPFIND", srv.base + moved, headers={"Depth": "0"})
        self.check(r, (404,), f"PROPFIND {moved} after DELETE")


# --------------------------------------------------------------------------------------------------
# report


def fmt_speed(v: float, unit: str) -> str:
    if v >= 100:
        return f"{v:,.0f} {unit}"
    if v >= 10:
        return f"{v:.1f} {unit}"
    return f"{v:.2f} {unit}"


def fmt_wall(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def report(results: list[Measure], servers: list[str], meta: list[str]) -> str:
    steps: list[str] = []
    for m in results:
        if m.step not in steps:
            steps.append(m.step)
    by = {(m.step, m.server, m.round): m for m in results}
    rounds = sorted({m.round for m in results})
    compared = [s for s in servers if s != "apache"] if "apache" in servers else []

    lines = list(meta)
    lines += ["", "Cells: median over rounds of throughput · wall time · server CPU for the step "
              "(and per operation) · the largest peak RSS of one server process (a worker) during the "
              "step, over the rounds.", ""]
    head = ["step", *servers]
    for s in compared:
        head += [f"{s}/apache (speed)", "min–max", "server CPU ratio"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    all_ratios: list[float] = []
    for step in steps:
        row = [step]
        med: dict[str, float] = {}
        for s in servers:
            ms = [by[(step, s, r)] for r in rounds if (step, s, r) in by]
            if not ms:
                row.append("—")
                continue
            unit = ms[0].unit
            sp = statistics.median(m.speed for m in ms)
            wall = statistics.median(m.wall for m in ms)
            cpu = statistics.median(m.cpu for m in ms)
            med[s] = cpu
            per_op = f" ({cpu / ms[0].amount * 1000:.2f} ms/op)" if unit in ("ops/s", "files/s") else ""
            peak = max(m.peak_mib for m in ms)
            row.append(f"{fmt_speed(sp, unit)} · {fmt_wall(wall)} · cpu {cpu:.2f} s{per_op} · "
                       f"peak {peak:.0f} MiB")
        for s in compared:
            ratios = [by[(step, s, r)].speed / by[(step, "apache", r)].speed
                      for r in rounds if (step, s, r) in by and (step, "apache", r) in by]
            if ratios:
                all_ratios += ratios
                row.append(f"**{statistics.median(ratios):.2f}**")
                row.append(f"{min(ratios):.2f}–{max(ratios):.2f}")
                row.append(f"{med[s] / med['apache']:.2f}" if med.get("apache") else "n/a")
            else:
                row += ["—", "—", "—"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if compared and all_ratios:
        lines.append("Ratio = cartable speed / apache speed in the same round (>1: cartable faster); "
                     "the median over rounds is shown.")
        lines.append(f"Noise: per-round ratios ranged {min(all_ratios):.2f}–{max(all_ratios):.2f} over all "
                     f"steps and {len(rounds)} round(s); a step whose min–max spans 1.0 is not a clear "
                     "result.")
    else:
        lines.append("Apache did not run: no ratios.")
    # noise of each server alone: spread of its per-round speeds
    spread = []
    for s in servers:
        worst = 0.0
        for step in steps:
            sp = [by[(step, s, r)].speed for r in rounds if (step, s, r) in by]
            if len(sp) > 1 and min(sp) > 0:
                worst = max(worst, max(sp) / min(sp))
        if worst:
            spread.append(f"{s} ×{worst:.2f}")
    if spread:
        lines.append("Largest max/min spread of one server's speed across rounds: " + ", ".join(spread) + ".")
    lines.append("")
    lines.append("Per round (speed, server CPU s, client CPU s):")
    lines.append("")
    lines.append("| step | server | " + " | ".join(f"r{r}" for r in rounds) + " |")
    lines.append("|---|---|" + "---|" * len(rounds))
    for step in steps:
        for s in servers:
            cells = []
            for r in rounds:
                m = by.get((step, s, r))
                cells.append(f"{fmt_speed(m.speed, m.unit)}, {m.cpu:.2f}, {m.client_cpu:.2f}" if m else "—")
            lines.append(f"| {step} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--only", choices=["apache", "cartable"], help="run one server only")
    ap.add_argument("--tmp", type=Path, help="parent folder for data (default: /tmp); both servers use it")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (data, logs)")
    ap.add_argument("--out", type=Path, help="results file (default: bench/results/webdav-<date>.md)")
    ap.add_argument("--database", choices=["sqlite", "pg", "both"], default="sqlite",
                    help="cartable's metadata database: SQLite (cartable), PostgreSQL (cartable-pg), or both")
    ap.add_argument("--workers", type=int, help="cartable's worker processes (default: its own, one per core)")
    ap.add_argument("--poll-seconds", type=int, help="wrk duration of the poll step (default 10, quick 3)")
    args = ap.parse_args()

    sizes = QUICK if args.quick else FULL
    cartables = {"sqlite": ["cartable"], "pg": ["cartable-pg"], "both": ["cartable", "cartable-pg"]}[args.database]
    names = ([] if args.only == "apache" else cartables) + ([] if args.only == "cartable" else ["apache"])
    pg_dir = ""
    parent = args.tmp or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cartable-bench.", dir=parent))
    os.chmod(tmp, 0o755)  # Apache's workers run as www-data when we are root
    servers: dict[str, Server] = {}
    started = dt.datetime.now()
    try:
        source = tmp / "source.bin"
        print(f"generating {sizes.big // MiB} MiB of random source data in {source} ...", flush=True)
        make_source(source, sizes.big)
        for name in names:
            data = tmp / f"{name}-data"
            port = free_port()
            print(f"starting {name} on 127.0.0.1:{port}, data in {data} ...", flush=True)
            extra = {"CARTABLE_WORKERS": str(args.workers)} if args.workers else {}
            if name == "cartable-pg":
                # PostgreSQL with fsync on: cartable's 2xx means durable on either database.
                out = subprocess.run(["bash", str(REPO / "scripts/engines/postgres.sh"), "start"], check=True,
                                     capture_output=True, text=True, env=dict(os.environ, PG_FSYNC="on")).stdout
                pg = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
                pg_dir = pg["CARTABLE_PG_DIR"]
                extra["CARTABLE_DATABASE_URL"] = f"postgresql://postgres@{pg['PGHOST']}:{pg['PGPORT']}/postgres"
            srv = (start_apache(data, port) if name == "apache"
                   else start_cartable(data, port, tmp / f"{name}.log", extra, name=name))
            limits = httpx.Limits(max_connections=sizes.threads, max_keepalive_connections=sizes.threads)
            srv.client = httpx.Client(auth=srv.auth, limits=limits, timeout=httpx.Timeout(600.0),
                                      trust_env=False)
            servers[name] = srv
            print(f"  {srv.info}: {srv.base} (pid {srv.pid})", flush=True)

        bench = Bench(sizes, source, poll_seconds=args.poll_seconds or (3 if args.quick else 10))
        groups = ["poll", "big", "small", "tree"]
        with cf.ThreadPoolExecutor(sizes.threads) as pool:
            for rnd in range(1, args.rounds + 1):
                order = names if rnd % 2 else list(reversed(names))
                print(f"round {rnd}/{args.rounds} (order: {' '.join(order)})", flush=True)
                for g in groups:
                    for name in order:
                        srv = servers[name]
                        if g == "poll":
                            bench.group_poll(srv, rnd, tmp)
                        elif g == "big":
                            bench.group_big(srv, rnd)
                        elif g == "small":
                            bench.group_small(srv, rnd, pool)
                        else:
                            bench.group_tree(srv, rnd, pool)

        fs = subprocess.run(["df", "-T", str(tmp)], capture_output=True, text=True).stdout.splitlines()
        meta = [
            f"# WebDAV benchmark {started:%Y-%m-%d %H:%M}",
            "",
            f"- machine: {platform.node()}, {os.cpu_count()} cores, Linux {platform.release()}, "
            f"Python {platform.python_version()}, httpx {httpx.__version__}",
            f"- data: both servers under {tmp} ({fs[-1].split()[1] if len(fs) > 1 else '?'} file system)",
            f"- sizes: {'quick' if args.quick else 'full'}: big file {sizes.big // MiB} MiB, "
            f"{sizes.small_n} × {sizes.small_size} B with {sizes.threads} client threads, "
            f"folder of {sizes.tree_n} for PROPFIND/MOVE/DELETE, {args.rounds} round(s), "
            "order alternating per round, sync(2) before each timed step",
        ]
        for name in names:
            meta.append(f"- {name}: {servers[name].info}")
        text = report(bench.results, names, meta)
        print()
        print(text)
        out = args.out or REPO / "bench" / "results" / f"webdav-{started:%Y-%m-%d-%H%M}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"written to {out}")
        return 0
    finally:
        for srv in servers.values():
            if srv.client:
                srv.client.close()
            srv.stop()
        if pg_dir:
            subprocess.run(["bash", str(REPO / "scripts/engines/postgres.sh"), "stop", pg_dir], check=False,
                           capture_output=True)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
