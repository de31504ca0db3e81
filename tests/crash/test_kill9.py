# SPDX-License-Identifier: EUPL-1.2
"""Crash safety (DESIGN.md, Principle 1 and Testing): SIGKILL a real ``cartable serve`` while it
is taking writes, restart it on the same data folder, and check that

- every write that was answered 2xx is there, byte for byte (the latest acknowledged content of
  each path, or the content of a request to that path that was in flight when the server died:
  it may have committed just before the kill without its answer reaching us);
- nothing else is visible: no file that was never sent, no prefix or mix of contents, no temporary
  or partial name;
- ``cartable admin fsck`` finds no problem.

The model is exact because each path is written by one client thread only, so the requests to a
path are ordered. Contents are rebuilt from small recipes (segments of seeded random bytes and of
shared "base" buffers), so large files share chunks with each other and with their own previous
versions, and identical files are uploaded concurrently (chunk deduplication under a crash).

Reproduce a run with ``CRASH_SEED=<n>``; the seed is printed in every failure message.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest

from cartable.server import open_blobs
from cartable.store.blobs.base import ChunkStore
from tests.conftest import DAV, PASSWORD, LiveServer, make_settings

pytestmark = [pytest.mark.crash, pytest.mark.slow]

SEED = int(os.environ.get("CRASH_SEED", "20240611"))
KiB, MiB = 1024, 1024 * 1024
THREADS = 16
MIN_ACKED = 20
TEMP_MARKERS = (".tmp-", ".part", ".upload", ".partial", "~")
D = "{DAV:}"

# Recipes: ("rand", seed, length) | ("base", index, offset, length).
Segment = tuple
Recipe = tuple[Segment, ...]
BASES = 2
BASE_SIZE = 48 * MiB


@lru_cache(maxsize=None)
def base(index: int) -> bytes:
    """Shared buffers that large files take slices of: their chunks are deduplicated."""
    return random.Random(f"{SEED}-base-{index}").randbytes(BASE_SIZE)


def build(recipe: Recipe) -> bytes:
    parts = []
    for seg in recipe:
        if seg[0] == "rand":
            parts.append(random.Random(seg[1]).randbytes(seg[2]))
        else:
            _, idx, off, n = seg
            parts.append(base(idx)[off:off + n])
    return b"".join(parts)


def tiny(rnd: random.Random) -> Recipe:
    return (("rand", rnd.getrandbits(64), rnd.randint(100, 8 * KiB)),)


def medium(rnd: random.Random) -> Recipe:
    if rnd.random() < 0.15:
        # The same "popular" file, uploaded by many threads at once: whole-file deduplication.
        return (("base", 1, 0, 1536 * KiB),)
    return (("rand", rnd.getrandbits(64), rnd.randint(20 * KiB, 3 * MiB)),)


def large(rnd: random.Random) -> Recipe:
    total = rnd.randint(8 * MiB, 40 * MiB)
    if rnd.random() < 0.3:
        return (("rand", rnd.getrandbits(64), total),)
    head = rnd.randint(0, 2 * MiB)
    shared = min(total - head, rnd.randint(6 * MiB, 32 * MiB))
    tail = total - head - shared
    idx = rnd.randrange(BASES)
    off = rnd.randrange(0, BASE_SIZE - shared, 4096)
    segs: list[Segment] = [("rand", rnd.getrandbits(64), head), ("base", idx, off, shared)]
    if tail:
        segs.append(("rand", rnd.getrandbits(64), tail))
    return tuple(s for s in segs if s[-1] > 0)


def edited(rnd: random.Random, old: Recipe) -> Recipe:
    """A small edit of a large file: most of its chunks are those of the version it replaces."""
    i = max(range(len(old)), key=lambda k: old[k][-1])
    seg = old[i]
    cut = rnd.randint(1, seg[-1] - 1)
    if seg[0] == "rand":
        left: Segment = ("rand", seg[1], cut)  # a prefix of the same random stream
        right: Segment = ("rand", rnd.getrandbits(64), seg[2] - cut)
    else:
        left = ("base", seg[1], seg[2], cut)
        right = ("base", seg[1], seg[2] + cut, seg[3] - cut)
    insert: Segment = ("rand", rnd.getrandbits(64), rnd.randint(1, 256 * KiB))
    return (*old[:i], left, insert, right, *old[i + 1:])


def is_large(recipe: Recipe) -> bool:
    return sum(s[-1] for s in recipe) > 8 * MiB - 1


@dataclass
class Attempt:
    path: str       # relative to the user's DAV root, e.g. "docs/w1-t03-0007.bin"
    sha: str
    size: int
    tid: int
    seq: int
    t_start: float
    state: str = "sending"   # "acked", "transport" (no answer), "http-<status>"
    t_end: float = 0.0
    error: str = ""
    overwrite: bool = False


@dataclass
class Wave:
    """One upload wave: 16 threads until the server is killed under them."""

    name: str
    folders: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: int = 0
    crashes: list[str] = field(default_factory=list)   # unexpected exceptions in the threads

    def add(self, a: Attempt) -> None:
        with self.lock:
            self.attempts.append(a)


def dav_url(server: LiveServer, rel: str = "") -> str:
    return f"{server.url}{DAV}/{quote(rel)}" if rel else f"{server.url}{DAV}/"


def client(server: LiveServer, timeout: float = 120) -> httpx.Client:
    return httpx.Client(auth=("alice", PASSWORD), timeout=httpx.Timeout(timeout, connect=5))


def worker(server: LiveServer, wave: Wave, tid: int, stop: threading.Event,
           owned: dict[str, Recipe]) -> None:
    """Upload new files and overwrite this thread's own acknowledged files until stopped.
    ``owned``: path → recipe of its current (acknowledged) content, shared across waves."""
    rnd = random.Random(f"{SEED}-{wave.name}-{tid}")
    seq = 0
    try:
        with client(server) as c:
            while not stop.is_set():
                seq += 1
                if owned and rnd.random() < 0.25:
                    path = rnd.choice(sorted(owned))
                    old = owned[path]
                    recipe = edited(rnd, old) if is_large(old) and rnd.random() < 0.6 else None
                    overwrite = True
                else:
                    path = f"{rnd.choice(wave.folders)}/{wave.name}-t{tid:02d}-{seq:04d}.bin"
                    recipe, overwrite = None, False
                if recipe is None:
                    kind = rnd.random()
                    recipe = tiny(rnd) if kind < 0.5 else medium(rnd) if kind < 0.85 else large(rnd)
                data = build(recipe)
                a = Attempt(path, hashlib.sha256(data).hexdigest(), len(data), tid, seq, time.monotonic(),
                            overwrite=overwrite)
                wave.add(a)
                try:
                    r = c.put(dav_url(server, path), content=data)
                except httpx.TransportError as exc:
                    a.state, a.t_end, a.error = "transport", time.monotonic(), repr(exc)
                    return  # the server is gone
                a.t_end = time.monotonic()
                if r.is_success:
                    a.state = "acked"
                    owned[path] = recipe
                    with wave.lock:
                        wave.acked += 1
                else:
                    a.state = f"http-{r.status_code}"
                    a.error = r.text[:300]
    except Exception as exc:  # reported by the test, never lost in a thread
        wave.crashes.append(f"thread {tid}: {exc!r}")


def mkcol(server: LiveServer, folders: list[str]) -> None:
    with client(server) as c:
        for folder in folders:
            for depth in range(1, folder.count("/") + 2):
                prefix = "/".join(folder.split("/")[:depth])
                r = c.request("MKCOL", dav_url(server, prefix))
                assert r.status_code in (201, 405), (prefix, r.status_code, r.text)


def run_wave(server: LiveServer, wave: Wave, owned: dict[int, dict[str, Recipe]],
             rnd: random.Random) -> tuple[float, float]:
    """Upload until ~1.5-3 s have passed and MIN_ACKED writes were acknowledged, then SIGKILL.
    Returns (when the kill was sent, when the server was seen dead)."""
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(server, wave, t, stop, owned[t]), daemon=True)
               for t in range(THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    kill_after = rnd.uniform(1.5, 3.0)
    deadline = started + 30
    while time.monotonic() < deadline:
        if time.monotonic() - started >= kill_after and wave.acked >= MIN_ACKED:
            break
        if wave.crashes:
            break
        time.sleep(0.02)
    t_kill = time.monotonic()
    server.kill()
    t_dead = time.monotonic()
    stop.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "an upload thread did not finish after the kill"
    assert not wave.crashes, wave.crashes
    return t_kill, t_dead


def describe(atts: list[Attempt]) -> str:
    return "; ".join(f"seq {a.seq} {a.state} size {a.size} sha {a.sha[:12]}" for a in atts)


def allowed_contents(before: str | None, atts: list[Attempt], t_dead: float) -> set[str | None]:
    """What a path may hold after the crash. ``before``: its content before the wave (None: absent).
    ``atts``: this wave's requests to the path, in order (one thread writes a path)."""
    allowed: str | None = before
    last = -1
    for i, a in enumerate(atts):
        if a.state == "acked":
            allowed, last = a.sha, i
    out: set[str | None] = {allowed}
    for a in atts[last + 1:]:
        # A request that got no answer may have committed, if it started while the server lived.
        if a.state == "transport" and a.t_start < t_dead:
            out.add(a.sha)
    return out


def propfind_children(c: httpx.Client, server: LiveServer, folder: str) -> dict[str, tuple[bool, int | None]]:
    """Depth 1 listing of ``folder`` (relative, "" = the user's root): name → (is folder, length)."""
    r = c.request("PROPFIND", dav_url(server, folder + "/" if folder else ""), headers={"Depth": "1"})
    assert r.status_code == 207, (folder, r.status_code, r.text[:500])
    own = unquote(urlsplit(dav_url(server, folder)).path).rstrip("/")
    out: dict[str, tuple[bool, int | None]] = {}
    for resp in ET.fromstring(r.content).iter(f"{D}response"):
        href = unquote(urlsplit(resp.findtext(f"{D}href") or "").path).rstrip("/")
        if href == own:
            continue
        assert href.startswith(own + "/"), (href, own)
        name = href[len(own) + 1:]
        is_dir = resp.find(f".//{D}resourcetype/{D}collection") is not None
        length = resp.findtext(f".//{D}getcontentlength")
        out[name] = (is_dir, None if length is None else int(length))
    return out


def get_sha(c: httpx.Client, server: LiveServer, rel: str) -> tuple[str, int] | None:
    with c.stream("GET", dav_url(server, rel)) as r:
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (rel, r.status_code)
        h, n = hashlib.sha256(), 0
        for piece in r.iter_bytes(1 * MiB):
            h.update(piece)
            n += len(piece)
        declared = r.headers.get("content-length")
        assert declared is None or int(declared) == n, (rel, declared, n)
        return h.hexdigest(), n


def check_state(server: LiveServer, wave: Wave, t_dead: float, before: dict[str, str],
                sent_to: dict[str, dict[str, str]], folders: list[str], top: set[str]) -> dict[str, str]:
    """Check the restarted server after ``wave``; return path → sha256 of what it holds.
    ``before``: what the previous check observed (the state the wave started from);
    ``sent_to``: path → sha → description, for every request ever sent (all waves)."""
    per_path: dict[str, list[Attempt]] = defaultdict(list)
    for a in sorted(wave.attempts, key=lambda a: (a.tid, a.seq)):
        per_path[a.path].append(a)
    state: dict[str, str] = {}
    problems: list[str] = []
    with client(server) as c:
        extra = set(propfind_children(c, server, "")) - top
        if extra:
            problems.append(f"the root lists entries never created: {sorted(extra)}")
        listed: dict[str, int | None] = {}
        for folder in folders:
            for name, (is_dir, length) in propfind_children(c, server, folder).items():
                rel = f"{folder}/{name}"
                if any(m in name for m in TEMP_MARKERS):
                    problems.append(f"a temporary or partial name is visible: {rel}")
                if is_dir:
                    if rel not in folders:
                        problems.append(f"a folder never created is listed: {rel}")
                    continue
                if rel not in sent_to:
                    problems.append(f"{rel} is listed but nothing was ever sent to it")
                listed[rel] = length
        for rel in sorted(set(sent_to) | set(listed) | set(before)):
            got = get_sha(c, server, rel)
            if got is not None:
                state[rel] = got[0]
            if (got is not None) != (rel in listed):
                problems.append(f"{rel}: GET says {'present' if got else 'absent'} but the folder listing "
                                f"{'lists' if rel in listed else 'does not list'} it")
            elif got is not None and listed[rel] is not None and listed[rel] != got[1]:
                problems.append(f"{rel}: listed with getcontentlength {listed[rel]} but GET returns {got[1]} bytes")
            atts = per_path.get(rel, [])
            allowed = allowed_contents(before.get(rel), atts, t_dead)
            if (got[0] if got else None) not in allowed:
                what = ("absent" if got is None else
                        f"{got[1]} bytes sha {got[0][:12]} ({sent_to[rel].get(got[0], 'never sent to this path')})")
                problems.append(f"{rel}: holds {what}; allowed {sorted(str(s)[:12] for s in allowed)}; "
                                f"before this wave {str(before.get(rel))[:12]}; this wave: {describe(atts)}")
    assert not problems, f"seed {SEED}, after {wave.name}:\n" + "\n".join(problems[:40])
    return state


def fsck_ok(server: LiveServer, *extra: str) -> str:
    r = server.admin("fsck", *extra)
    assert r.returncode == 0 and "OK" in r.stdout, f"fsck {extra}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def wave_summary(wave: Wave, t_kill: float) -> dict[str, int]:
    states: dict[str, int] = defaultdict(int)
    for a in wave.attempts:
        states[a.state] += 1
    states["in_flight_at_kill"] = sum(1 for a in wave.attempts if a.state == "transport" and a.t_start < t_kill)
    cut = [a for a in wave.attempts if a.state == "transport" and a.t_start < t_kill]
    states["large_in_flight"] = sum(1 for a in cut if a.size >= 8 * MiB)
    states["overwrites_in_flight"] = sum(1 for a in cut if a.overwrite)
    states["overwrites_acked"] = sum(1 for a in wave.attempts if a.state == "acked" and a.overwrite)
    return dict(states)


def test_kill9_during_concurrent_uploads(live_server: LiveServer) -> None:
    rnd = random.Random(f"{SEED}-main")
    owned: dict[int, dict[str, Recipe]] = {t: {} for t in range(THREADS)}
    folders = ["docs", "photos", "projects", "projects/2024"]
    top = {"docs", "photos", "projects"}
    state: dict[str, str] = {}
    sent_to: dict[str, dict[str, str]] = defaultdict(dict)
    for name, new_folders in (("w1", []), ("w2", ["w2-inbox"])):
        mkcol(live_server, new_folders or folders)
        folders = folders + new_folders
        top |= {f.split("/")[0] for f in new_folders}
        wave = Wave(name, folders)
        t_kill, t_dead = run_wave(live_server, wave, owned, rnd)
        for a in wave.attempts:
            sent_to[a.path].setdefault(a.sha, f"{name} seq {a.seq} {a.state}")
        summary = wave_summary(wave, t_kill)
        print(f"{name}: {summary}")
        http_errors = [f"{a.path}: {a.state} {a.error}" for a in wave.attempts if a.state.startswith("http-")]
        assert not http_errors, f"seed {SEED}: writes refused before the kill: {http_errors[:10]}"
        assert summary.get("acked", 0) >= MIN_ACKED, f"seed {SEED}: too few writes acknowledged: {summary}"
        assert summary["in_flight_at_kill"] >= 1, f"seed {SEED}: the kill did not interrupt a write: {summary}"

        live_server.start()
        state = check_state(live_server, wave, t_dead, state, sent_to, folders, top)
        committed = sum(1 for a in wave.attempts if a.state == "transport" and state.get(a.path) == a.sha)
        print(f"{name}: {len(state)} files after restart, {committed} unanswered writes had committed")
        fsck_ok(live_server, *(["--deep"] if name == "w2" else []))
        # The next wave overwrites only files whose content it knows: the surviving acknowledged ones.
        for t in owned:
            owned[t] = {p: r for p, r in owned[t].items() if p in state}
        for a in wave.attempts:
            if a.state == "transport" and state.get(a.path) == a.sha:
                owned[a.tid].pop(a.path, None)   # an unanswered request that did commit


def streaming_body(seed: int, total: int, piece: int = 1 * MiB, *, reached: threading.Event | None = None,
                   reach_at: int = 0, hold: threading.Event | None = None) -> Iterator[bytes]:
    """``total`` seeded random bytes, ``piece`` at a time. With ``hold``, the last piece is not sent
    before ``hold`` is set (it is set once the server is dead: the body can never complete)."""
    rnd = random.Random(seed)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        data = rnd.randbytes(n)
        if hold is not None and sent + n >= total:
            hold.wait(120)
        yield data
        sent += n
        if reached is not None and sent >= reach_at:
            reached.set()


def body_sha(seed: int, total: int) -> str:
    h = hashlib.sha256()
    for piece in streaming_body(seed, total):
        h.update(piece)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _store(data: Path) -> ChunkStore:
    return open_blobs(make_settings(data))


def chunk_files(data: Path) -> int:
    """Complete chunks in the server's chunk store (a folder or a bucket: the test backend's)."""
    return sum(1 for _ in _store(data).iter_digests())


def test_kill9_during_large_streaming_upload(live_server: LiveServer) -> None:
    total = 200 * MiB
    seed = SEED * 7 + 1
    rel = "big/stream.bin"
    mkcol(live_server, ["big"])
    before_chunks = chunk_files(live_server.data)
    reached, dead = threading.Event(), threading.Event()
    outcome: list[object] = []

    def upload() -> None:
        try:
            with client(live_server) as c:
                outcome.append(c.put(dav_url(live_server, rel),
                                     content=streaming_body(seed, total, reached=reached, reach_at=96 * MiB,
                                                            hold=dead)))
        except Exception as exc:  # examined below
            outcome.append(exc)

    th = threading.Thread(target=upload, daemon=True)
    th.start()
    assert reached.wait(60), "the upload did not get half way within 60 s"
    # Kill while the server is writing chunks: wait until some are on disk (polled, not slept).
    deadline = time.monotonic() + 30
    while chunk_files(live_server.data) <= before_chunks and time.monotonic() < deadline:
        time.sleep(0.01)
    written = chunk_files(live_server.data) - before_chunks
    live_server.kill()
    dead.set()
    th.join(60)
    assert not th.is_alive()
    assert written >= 1, "no chunk was written before the kill: the kill did not happen mid-write"
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), \
        f"the upload was answered although its body never ended: {outcome}"

    live_server.start()
    with client(live_server) as c:
        r = c.get(dav_url(live_server, rel))
        assert r.status_code == 404, f"a half-received upload is visible after the crash: {r.status_code}"
        assert "stream.bin" not in propfind_children(c, live_server, "big")
    fsck_ok(live_server)

    # The retry succeeds and reads back byte for byte.
    with client(live_server) as c:
        r = c.put(dav_url(live_server, rel), content=streaming_body(seed, total))
        assert r.status_code == 201, (r.status_code, r.text[:500])
        assert get_sha(c, live_server, rel) == (body_sha(seed, total), total)
        assert propfind_children(c, live_server, "big") == {"stream.bin": (False, total)}
    fsck_ok(live_server)
