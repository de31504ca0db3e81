#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""Scale benchmark: does a request cost the same with 10,000 files as with 10 million?

    python bench/scale_bench.py [--database pg|sqlite] [--sizes 10000,10000000] [--rounds 3] [--pg-url URL]
                                [--reuse] [--keep]

With ``--database sqlite`` the same tree is generated into the embedded default database (one data
folder per size, bench/scale_sqlite.py; --keep leaves them under bench/results/scale-sqlite/ and
--reuse takes them back) and steps 1 and 5 below do not apply. The rest is the same.

1. Starts a throwaway PostgreSQL 15 (scripts/engines/postgres.sh) unless --pg-url names a server
   (a superuser URL on its maintenance database, e.g. postgresql://postgres@127.0.0.1:5432/postgres).
2. For each size N makes a database ``scale_N``: cartable's own migrations and account code create
   the schema and the user ``bench``; then the metadata of N files is GENERATED in SQL
   (INSERT ... SELECT generate_series), consistent with what the server writes itself (see
   generate()). The user's tree:
       /hot/                   5,000 files (the PROPFIND Depth 1 target)
       /tNNNN/lNNNNNN/         the rest, 1,000 files per leaf folder, 100 leaves per top folder
   Every file has one version (a one-chunk manifest, 10-60 KB, not inline) and its chunk row with
   refcount 1; every folder's size is the sum below it (root = the space's usage); every node has
   its "create" journal row. Chunk BYTES are not written: generated files cannot be downloaded
   (no GET is measured on them; fsck would report them missing).
   Then VACUUM ANALYZE (an operator's autovacuum would do the same). --reuse keeps a database
   made by an earlier run with --keep.
3. Starts one ``cartable serve`` per database (both idle but one at a time under load), and in
   each round, alternating the order, measures on each:
   - PROPFIND Depth 1 of /hot/ (5,001 entries), median of 5;
   - stat: PROPFIND Depth 0 of a random file anywhere in the tree (sequential, one client);
   - small PUT: 4 KiB, new random content, into a random leaf folder (sequential);
   - small GET: one of the files those PUTs made, at random (sequential);
   - poll: PROPFIND Depth 0 ``getetag`` on the root (sequential latency, and wrk throughput);
   - journal read: ``store.meta.journal.since`` (the change feed; no HTTP route reads it yet),
     the last 100 entries of the space, in this process.
   Latencies are medians over the requests; each size is compared with the smallest (target: <= 1.3).
4. Metadata bytes per file: pg_total_relation_size of every table / file count, per database.
5. Plans: the biggest database is served once more with auto_explain (log_min_duration 0) while
   each operation runs once; every plan that reads a whole table (a Seq Scan on nodes, versions,
   chunks or changes) is printed with its query.

PostgreSQL is started with fsync OFF while generating (fast), and fsync is turned back ON
(ALTER SYSTEM + reload) before anything is measured. Not a test: nothing asserts a timing; every
answer is checked (status, entry counts).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "src")]

import scale_sqlite  # noqa: E402
from webdav_bench import free_port, start_cartable, tree_cpu_seconds  # noqa: E402

HOT = 5000  # files in /hot/
LEAF = 1000  # files per leaf folder
FANOUT = 100  # leaf folders per top folder
USER, PASSWORD = "bench", "bench-password-" + "x" * 12
QUOTA = 10**18
PG_SCRIPT = REPO / "scripts" / "engines" / "postgres.sh"

POLL_BODY = b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop>'
                 b"<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
                 b"</d:prop></d:propfind>")
RESPONSE_RE = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?response[\s>]")
BIG_TABLES = ("nodes", "versions", "chunks", "changes")


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------------
# layout


@dataclass(frozen=True)
class Layout:
    """Where file i (0 <= i < n) lives; shared by the generator and the requests."""

    n: int

    @property
    def hot(self) -> int:
        return min(HOT, self.n)

    @property
    def leaves(self) -> int:
        return -(-(self.n - self.hot) // LEAF)

    @property
    def tops(self) -> int:
        return -(-self.leaves // FANOUT)

    def leaf_path(self, j: int) -> str:
        return f"t{j // FANOUT:04d}/l{j:06d}/"

    def file_path(self, i: int) -> str:
        if i < self.hot:
            return f"hot/f{i:08d}"
        return self.leaf_path((i - self.hot) // LEAF) + f"f{i:08d}"


# --------------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class Pg:
    admin_url: str  # libpq URL of the maintenance database
    log_path: Path | None
    engine_dir: str | None = None

    def conninfo(self, db: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + db

    def sa_url(self, db: str) -> str:
        return self.conninfo(db).replace("postgresql://", "postgresql+psycopg://", 1)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def set_fsync(self, on: bool) -> None:
        with self.admin() as c:
            c.execute(f"ALTER SYSTEM SET fsync = {'on' if on else 'off'}")
            c.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            if on:
                c.execute("CHECKPOINT")  # what was written with fsync off is now on disk
            log(f"PostgreSQL fsync = {c.execute('SHOW fsync').fetchone()[0]}")

    def stop(self) -> None:
        if self.engine_dir:
            subprocess.run(["bash", str(PG_SCRIPT), "stop", self.engine_dir], capture_output=True, check=False)


def start_pg() -> Pg:
    extra = ("-c shared_buffers=1GB -c maintenance_work_mem=512MB -c max_wal_size=8GB "
             "-c checkpoint_timeout=30min -c work_mem=16MB")
    out = subprocess.run(["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PG_EXTRA=extra, PG_FSYNC="off")).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    log(f"PostgreSQL started in {env['CARTABLE_PG_DIR']} ({extra})")
    return Pg(env["DATABASE_URL"], Path(env["CARTABLE_PG_DIR"]) / "server.log", env["CARTABLE_PG_DIR"])


def db_files(pg: Pg, db: str) -> int | None:
    """The file count a finished generation recorded in the database, or None."""
    with pg.admin() as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
            return None
    with psycopg.connect(pg.conninfo(db)) as c:
        try:
            row = c.execute("SELECT value FROM meta_kv WHERE key = 'scale_bench_files'").fetchone()
        except psycopg.Error:
            return None
    return None if row is None else int(row[0])


# --------------------------------------------------------------------------------------------------
# generation


def create_schema_and_user(pg: Pg, db: str, data: Path) -> None:
    """The schema by cartable's migrations, the user and its space by cartable's own code."""
    from cartable.config import load_settings
    from cartable.core.accounts import create_user
    from cartable.server import open_core

    with pg.admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{db}"')
    settings = load_settings(overrides={"data": data, "database_url": pg.sa_url(db)}, environ={})
    core = open_core(settings)
    try:
        create_user(core, USER, PASSWORD, quota=QUOTA)
    finally:
        core.db.dispose()


def generate(pg: Pg, db: str, n: int) -> dict[str, float]:
    """INSERT ... SELECT the metadata of n files into db for user ``bench``; returns the seconds
    each step took. Mirrors what core/writes.py commits for a PUT of a new file: a node (kind f,
    etag, version_id, content type, checksums), a version (manifest = digest || size as 8-byte
    big-endian), a chunk row (refcount 1, stored size known), a "create" journal row; folder
    sizes are sums of everything below, and the root's size is the space's usage."""
    lay = Layout(n)
    steps: dict[str, float] = {}
    now = time.time()
    with psycopg.connect(pg.conninfo(db)) as c:
        c.execute("SET synchronous_commit = off")
        c.execute("SET maintenance_work_mem = '512MB'")
        space_id, root_id = c.execute(
            "SELECT s.id, s.root_id FROM spaces s JOIN users u ON u.id = s.owner_id WHERE u.name = %s",
            (USER,)).fetchone()
        node_seq = c.execute("SELECT pg_get_serial_sequence('nodes', 'id')").fetchone()[0]
        ver_seq = c.execute("SELECT pg_get_serial_sequence('versions', 'id')").fetchone()[0]
        n_folders = 1 + lay.tops + lay.leaves
        base = c.execute("SELECT max(id) + 1 FROM nodes").fetchone()[0]
        vbase = c.execute("SELECT coalesce(max(id), 0) + 1 FROM versions").fetchone()[0]
        hot_id, top0, leaf0 = base, base + 1, base + 1 + lay.tops
        file0 = base + n_folders
        p = {"space": space_id, "root": root_id, "hot": hot_id, "top0": top0, "leaf0": leaf0,
             "file0": file0, "vbase": vbase, "n": n, "hotn": lay.hot, "tops": lay.tops,
             "leaves": lay.leaves, "leaf": LEAF, "fanout": FANOUT, "now": now}
        # the size of file i, a pure function (10,000 to 59,999 bytes: never inline)
        size_of = "(10000 + ((i * 7919) %% 50000))::bigint"

        def step(name: str, sql: str) -> None:
            t0 = time.perf_counter()
            c.execute(sql, p)
            c.commit()
            steps[name] = time.perf_counter() - t0
            log(f"  {db}: {name}: {steps[name]:.1f} s")

        step("folders", """
            INSERT INTO nodes (id, space_id, parent_id, name, kind, size, mtime, ctime, etag)
            SELECT %(hot)s, %(space)s, %(root)s, 'hot', 'd', 0, %(now)s, %(now)s, substr(md5(random()::text), 1, 20)
            UNION ALL
            SELECT %(top0)s + k, %(space)s, %(root)s, 't' || lpad(k::text, 4, '0'), 'd', 0, %(now)s, %(now)s,
                   substr(md5(random()::text), 1, 20)
              FROM generate_series(0, %(tops)s - 1) k
            UNION ALL
            SELECT %(leaf0)s + j, %(space)s, %(top0)s + j / %(fanout)s, 'l' || lpad(j::text, 6, '0'), 'd', 0,
                   %(now)s, %(now)s, substr(md5(random()::text), 1, 20)
              FROM generate_series(0, %(leaves)s - 1) j""")
        step("files (nodes)", f"""
            INSERT INTO nodes (id, space_id, parent_id, name, kind, size, mtime, ctime, etag, version_id,
                               content_type, checksums)
            SELECT %(file0)s + i, %(space)s,
                   CASE WHEN i < %(hotn)s THEN %(hot)s ELSE %(leaf0)s + (i - %(hotn)s) / %(leaf)s END,
                   'f' || lpad(i::text, 8, '0'), 'f', {size_of}, %(now)s - (%(n)s - i), %(now)s - (%(n)s - i),
                   substr(md5(i::text), 1, 20), %(vbase)s + i, 'application/octet-stream',
                   'SHA1:' || md5('s' || i::text) || substr(md5('t' || i::text), 1, 8)
              FROM generate_series(0::bigint, %(n)s::bigint - 1) i""")
        step("versions", f"""
            INSERT INTO versions (id, node_id, size, created_at, manifest, inline_data)
            SELECT %(vbase)s + i, %(file0)s + i, {size_of}, %(now)s - (%(n)s - i),
                   sha256(int8send(%(file0)s + i)) || int8send({size_of}), NULL
              FROM generate_series(0::bigint, %(n)s::bigint - 1) i""")
        step("chunks", f"""
            INSERT INTO chunks (digest, size, stored_size, refcount, touched_at, dying, incarnation)
            SELECT sha256(int8send(%(file0)s + i)), {size_of}, {size_of}, 1, %(now)s, false, 1
              FROM generate_series(0::bigint, %(n)s::bigint - 1) i""")
        step("journal", """
            INSERT INTO changes (space_id, node_id, parent_id, name, kind, op, version_id, size, mtime, at)
            SELECT space_id, id, parent_id, name, kind, 'create', version_id, size, mtime, mtime
              FROM nodes WHERE id >= %(hot)s ORDER BY id""")
        step("leaf sums", """
            UPDATE nodes SET size = s.total
              FROM (SELECT parent_id, sum(size) AS total FROM nodes WHERE id >= %(file0)s GROUP BY parent_id) s
             WHERE nodes.id = s.parent_id""")
        step("top sums", """
            UPDATE nodes SET size = s.total
              FROM (SELECT parent_id, sum(size) AS total FROM nodes
                     WHERE id >= %(leaf0)s AND id < %(file0)s GROUP BY parent_id) s
             WHERE nodes.id = s.parent_id""")
        step("root sum", """
            UPDATE nodes SET size = size + (SELECT coalesce(sum(size), 0) FROM nodes
                                             WHERE parent_id = %(root)s AND kind = 'd' AND id >= %(hot)s),
                             etag = substr(md5(random()::text), 1, 20)
             WHERE id = %(root)s""")
        c.execute(f"SELECT setval('{node_seq}', (SELECT max(id) FROM nodes))")
        c.execute(f"SELECT setval('{ver_seq}', (SELECT max(id) FROM versions))")
        c.execute("INSERT INTO meta_kv (key, value) VALUES ('scale_bench_files', %s)", (str(n),))
        c.commit()
        root_size, sum_files = c.execute(
            "SELECT (SELECT size FROM nodes WHERE id = %s), (SELECT sum(size) FROM nodes WHERE kind = 'f')",
            (root_id,)).fetchone()
        if root_size != sum_files:
            raise RuntimeError(f"{db}: root size {root_size} != sum of file sizes {sum_files}")
    t0 = time.perf_counter()
    with psycopg.connect(pg.conninfo(db), autocommit=True) as c:
        c.execute("VACUUM (ANALYZE)")
    steps["vacuum analyze"] = time.perf_counter() - t0
    log(f"  {db}: vacuum analyze: {steps['vacuum analyze']:.1f} s")
    return steps


def add_users(pg: Pg, db: str, count: int) -> float:
    """``count`` more users, each with a home space and an empty root folder (the reference
    deployment's 600,000 accounts), so that account and space lookups run against tables of a
    realistic size; once per database (meta_kv 'scale_bench_users'). Returns the seconds taken."""
    t0 = time.perf_counter()
    with psycopg.connect(pg.conninfo(db)) as c:
        done = c.execute("SELECT value FROM meta_kv WHERE key = 'scale_bench_users'").fetchone()
        if done is not None or count <= 0:
            return 0.0
        now = time.time()
        ub, sb, nb = (c.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0]
                      for t in ("users", "spaces", "nodes"))
        p = {"ub": ub, "sb": sb, "nb": nb, "count": count, "now": now, "user": USER}
        c.execute("""INSERT INTO users (id, name, name_key, display_name, email, password_hash, is_admin,
                                        disabled, auth_version, created_at)
                     SELECT %(ub)s + k, 'u' || lpad(k::text, 7, '0'), 'u' || lpad(k::text, 7, '0'),
                            'u' || lpad(k::text, 7, '0'), '',
                            (SELECT password_hash FROM users WHERE name = %(user)s), false, false, 1, %(now)s
                       FROM generate_series(0, %(count)s - 1) k""", p)
        c.execute("""INSERT INTO spaces (id, kind, owner_id, root_id, quota)
                     SELECT %(sb)s + k, 'home', %(ub)s + k, %(nb)s + k, NULL
                       FROM generate_series(0, %(count)s - 1) k""", p)
        c.execute("""INSERT INTO nodes (id, space_id, parent_id, name, kind, size, mtime, ctime, etag)
                     SELECT %(nb)s + k, %(sb)s + k, NULL, '', 'd', 0, %(now)s, %(now)s,
                            substr(md5(random()::text), 1, 20)
                       FROM generate_series(0, %(count)s - 1) k""", p)
        for table in ("users", "spaces", "nodes"):
            seq = c.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
            c.execute(f"SELECT setval('{seq}', (SELECT max(id) FROM {table}))")
        c.execute("INSERT INTO meta_kv (key, value) VALUES ('scale_bench_users', %s)", (str(count),))
        c.commit()
    with psycopg.connect(pg.conninfo(db), autocommit=True) as c:
        c.execute("VACUUM (ANALYZE) users, spaces, nodes")
    took = time.perf_counter() - t0
    log(f"  {db}: {count:,} more users with a space and a root folder: {took:.1f} s")
    return took


def meta_bytes(pg: Pg, db: str) -> tuple[int, int, dict[str, int]]:
    """(bytes of every table with its indexes and TOAST, file count, bytes per table)."""
    with psycopg.connect(pg.conninfo(db)) as c:
        rows = c.execute("""SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
                             JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC""").fetchall()
        files = c.execute("SELECT count(*) FROM nodes WHERE kind = 'f'").fetchone()[0]
        accounts = c.execute("SELECT count(*) FROM users").fetchone()[0]
    per = {r[0]: int(r[1]) for r in rows}
    per["(accounts)"] = int(accounts)
    return sum(per.values()), int(files), per


# --------------------------------------------------------------------------------------------------
# measuring


@dataclass
class Target:
    n: int
    db: str
    url: str  # WebDAV root of the user, ends with /
    pid: int
    client: httpx.Client
    stop: object
    space_id: int = 0
    sa_url: str = ""
    put_no: int = 0
    put_paths: list[str] = field(default_factory=list)
    results: dict[str, list[float]] = field(default_factory=dict)  # step -> per-round medians (s)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # step -> per-round server CPU per op (s)


def serve(pg: Pg, db: str, n: int, work: Path, extra_env: dict[str, str] | None = None) -> Target:
    data = work / f"data-{db}"
    data.mkdir(exist_ok=True)
    port = free_port()
    t0 = time.perf_counter()
    srv = start_cartable(data, port, work / f"{db}.log",
                         {"CARTABLE_DATABASE_URL": pg.sa_url(db), **(extra_env or {})}, ready_seconds=300)
    log(f"{db}: cartable serve ready in {time.perf_counter() - t0:.1f} s")
    with psycopg.connect(pg.conninfo(db)) as c:
        space_id = c.execute("SELECT s.id FROM spaces s JOIN users u ON u.id = s.owner_id WHERE u.name = %s",
                             (USER,)).fetchone()[0]
    return _target(n, db, port, srv, pg.sa_url(db), space_id)


def serve_sqlite(data: Path, n: int, work: Path) -> Target:
    port = free_port()
    t0 = time.perf_counter()
    srv = start_cartable(data, port, work / f"sqlite_{n}.log", {}, ready_seconds=300)
    log(f"sqlite_{n}: cartable serve ready in {time.perf_counter() - t0:.1f} s")
    with sqlite3.connect(scale_sqlite.db_path(data)) as c:
        space_id = c.execute("SELECT s.id FROM spaces s JOIN users u ON u.id = s.owner_id WHERE u.name = ?",
                             (USER,)).fetchone()[0]
    return _target(n, f"sqlite_{n}", port, srv, scale_sqlite.sa_url(data), space_id)


def _target(n: int, db: str, port: int, srv, sa_url: str, space_id: int) -> Target:  # noqa: ANN001
    client = httpx.Client(auth=httpx.BasicAuth(USER, PASSWORD), timeout=120, trust_env=False,
                          limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
    return Target(n, db, f"http://127.0.0.1:{port}/remote.php/dav/files/{USER}/", srv.pid, client, srv.stop,
                  space_id=space_id, sa_url=sa_url)


def check(r: httpx.Response, ok: tuple[int, ...], what: str) -> None:
    if r.status_code not in ok:
        raise RuntimeError(f"{what}: HTTP {r.status_code} (wanted {ok}): {r.text[:300]!r}")


def timed_loop(t: Target, reps: int, fn) -> tuple[float, float]:
    """(median seconds per call, server CPU seconds per call)."""
    walls = []
    cpu0 = tree_cpu_seconds(t.pid)
    for k in range(reps):
        t0 = time.perf_counter()
        fn(k)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), (tree_cpu_seconds(t.pid) - cpu0) / reps


def op_propfind1(t: Target) -> None:
    r = t.client.request("PROPFIND", t.url + "hot/", content=PROPFIND_BODY,
                         headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    check(r, (207,), "PROPFIND Depth 1 /hot/")
    got = len(RESPONSE_RE.findall(r.content))
    if got != Layout(t.n).hot + 1:
        raise RuntimeError(f"PROPFIND /hot/: {got} entries, wanted {Layout(t.n).hot + 1}")


def op_stat(t: Target, rng: random.Random) -> None:
    path = Layout(t.n).file_path(rng.randrange(t.n))
    r = t.client.request("PROPFIND", t.url + path, content=PROPFIND_BODY, headers={"Depth": "0"})
    check(r, (207,), f"PROPFIND Depth 0 {path}")
    if len(RESPONSE_RE.findall(r.content)) != 1:
        raise RuntimeError(f"stat {path}: not one entry")


def op_put(t: Target, rng: random.Random) -> None:
    lay = Layout(t.n)
    if lay.leaves:
        folder = lay.leaf_path(rng.randrange(lay.leaves))
    else:  # a size with no leaf folder: a folder of its own, so that /hot/ keeps its entry count
        folder = "puts/"
        if t.put_no == 0:
            check(t.client.request("MKCOL", t.url + folder), (201, 405), f"MKCOL {folder}")
    t.put_no += 1
    path = f"{folder}put-{os.getpid()}-{t.put_no:06d}-{secrets.token_hex(4)}.bin"
    r = t.client.put(t.url + path, content=os.urandom(4096))
    check(r, (201,), f"PUT {path}")
    t.put_paths.append(path)


def op_get(t: Target, rng: random.Random) -> None:
    path = rng.choice(t.put_paths)
    r = t.client.get(t.url + path)
    check(r, (200,), f"GET {path}")
    if len(r.content) != 4096:
        raise RuntimeError(f"GET {path}: {len(r.content)} bytes, wanted 4096")


def op_poll(t: Target) -> None:
    r = t.client.request("PROPFIND", t.url, content=POLL_BODY, headers={"Depth": "0"})
    check(r, (207,), "poll")
    if b"getetag" not in r.content:
        raise RuntimeError("poll: no getetag")


class Journal:
    """The change feed as the store reads it (store/meta/journal.since), on its own MetaDB."""

    def __init__(self, t: Target) -> None:
        from cartable.store.meta.engine import MetaDB

        self.db = MetaDB(t.sa_url)
        self.space = t.space_id

    def read(self) -> None:
        from cartable.store.meta import journal

        with self.db.read() as tx:
            head = journal.head(tx)
            rows = journal.since(tx, self.space, max(0, head - 100), 100)
        if not rows:
            raise RuntimeError("journal: no entries")

    def close(self) -> None:
        self.db.dispose()


def wrk_poll(t: Target, duration: int, connections: int, work: Path) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed; run scripts/install-deps.sh")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    script = work / "poll.lua"
    script.write_text('wrk.method = "PROPFIND"\n'
                      f"wrk.body = '{POLL_BODY.decode()}'\n"
                      'wrk.headers["Depth"] = "0"\n'
                      'wrk.headers["Content-Type"] = "application/xml; charset=utf-8"\n'
                      f'wrk.headers["Authorization"] = "Basic {token}"\n')
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
                          t.url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(m.group(1))


STEPS = ("PROPFIND Depth 1 (5,000 entries)", "stat (PROPFIND Depth 0, random file)", "small PUT 4 KiB",
         "small GET 4 KiB", "poll (PROPFIND Depth 0 getetag, root)", "journal read (last 100 changes)",
         "poll throughput (wrk, 16 conn)")


def measure_round(t: Target, rnd: int, reps: int, wrk_seconds: int, work: Path) -> None:
    rng = random.Random(rnd * 1000 + t.n)

    def keep(step: str, wall: float, cpu: float) -> None:
        t.results.setdefault(step, []).append(wall)
        t.cpu.setdefault(step, []).append(cpu)
        log(f"  {t.db} r{rnd} {step:42} {wall * 1000:9.2f} ms   server cpu {cpu * 1000:8.2f} ms/op")

    os.sync()
    keep(STEPS[0], *timed_loop(t, 5, lambda k: op_propfind1(t)))
    keep(STEPS[1], *timed_loop(t, reps, lambda k: op_stat(t, rng)))
    os.sync()
    keep(STEPS[2], *timed_loop(t, reps, lambda k: op_put(t, rng)))
    keep(STEPS[3], *timed_loop(t, reps, lambda k: op_get(t, rng)))
    keep(STEPS[4], *timed_loop(t, reps, lambda k: op_poll(t)))
    j = Journal(t)
    try:
        j.read()  # connect outside the timing
        keep(STEPS[5], *timed_loop(t, reps, lambda k: j.read()))
    finally:
        j.close()
    if wrk_seconds:
        cpu0 = tree_cpu_seconds(t.pid)
        rps = wrk_poll(t, wrk_seconds, 16, work)
        cpu = (tree_cpu_seconds(t.pid) - cpu0) / max(1.0, rps * wrk_seconds)
        t.results.setdefault(STEPS[6], []).append(rps)
        t.cpu.setdefault(STEPS[6], []).append(cpu)
        log(f"  {t.db} r{rnd} {STEPS[6]:42} {rps:9.0f} req/s server cpu {cpu * 1000:8.2f} ms/op")


# --------------------------------------------------------------------------------------------------
# plans


SEQ_RE = re.compile(r"Seq Scan on (\w+)")


def check_plans(pg: Pg, t_args: tuple[Pg, str, int], work: Path) -> list[str]:
    """Serve the database once with auto_explain logging every plan, run each operation once, and
    return the plans that scan a whole big table (with their query text)."""
    _, db, n = t_args
    if pg.log_path is None or not pg.log_path.exists():
        return ["(plans not checked: the PostgreSQL log file is unknown; run without --pg-url)"]
    with pg.admin() as c:
        c.execute(f"ALTER DATABASE \"{db}\" SET session_preload_libraries = 'auto_explain'")
        c.execute(f"ALTER DATABASE \"{db}\" SET auto_explain.log_min_duration = 0")
        c.execute(f"ALTER DATABASE \"{db}\" SET auto_explain.log_format = 'json'")
    start = pg.log_path.stat().st_size
    t = serve(pg, db, n, work)
    try:
        rng = random.Random(7)
        for _ in range(3):
            op_propfind1(t)
            op_stat(t, rng)
            op_put(t, rng)
            op_poll(t)
        j = Journal(t)
        for _ in range(3):
            j.read()
        j.close()
    finally:
        t.client.close()
        t.stop()  # type: ignore[operator]
        with pg.admin() as c:
            c.execute(f'ALTER DATABASE "{db}" RESET ALL')
    text = pg.log_path.read_bytes()[start:].decode(errors="replace")
    plans = _plans_from_log(text)
    bad: list[str] = []
    seen: set[str] = set()
    for query, plan in plans:
        tables = {m for m in SEQ_RE.findall(_plan_text(plan)) if m in BIG_TABLES}
        if tables and query not in seen:
            seen.add(query)
            bad.append(f"Seq Scan on {', '.join(sorted(tables))}:\n    {query}\n    plan: {_plan_text(plan)}")
    log(f"plans: {len(plans)} statements explained, {len(bad)} distinct ones scan a big table")
    return bad


def _plans_from_log(text: str) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for m in re.finditer(r"LOG:\s+duration: [\d.]+ ms\s+plan:\n(\t\{.*?\n\t\})\n", text, re.S):
        try:
            doc = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
        out.append((" ".join(doc.get("Query Text", "").split()), doc.get("Plan", {})))
    return out


def _plan_text(plan: dict) -> str:
    parts = [f"{plan.get('Node Type')}" + (f" on {plan['Relation Name']}" if "Relation Name" in plan else "")
             + (f" using {plan['Index Name']}" if "Index Name" in plan else "")]
    for sub in plan.get("Plans", []):
        parts.append(_plan_text(sub))
    return "(" + " > ".join(parts) + ")" if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------------------------------
# report


def report(targets: list[Target], gen: dict[int, dict[str, float]], sizes: dict[int, tuple[int, int, dict]],
           meta: list[str], plans: list[str], rounds: int, engine: str = "PostgreSQL") -> str:
    small, big = targets[0], targets[-1]
    lines = list(meta) + ["", f"Medians over requests, then median over {rounds} round(s) (min–max of the "
                          "per-round values in brackets). Each size's ratio = its cost / the cost at the "
                          "smallest size (target <= 1.3; for throughput, smallest / this size). PROPFIND "
                          "Depth 1 lists /hot/, which holds min(files, 5,000) entries.", ""]
    head = ["operation", *(f"{t.n:,} files" for t in targets), "server CPU/op, smallest → biggest"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in STEPS:
        if any(step not in t.results for t in targets):
            continue
        # PROPFIND Depth 1 is compared with the smallest size whose /hot/ is full (5,000 entries)
        ref = next((t for t in targets if t.n >= HOT), small) if step == STEPS[0] else small
        base = statistics.median(ref.results[step])
        cells = []
        for t in targets:
            a = t.results[step]
            m = statistics.median(a)
            if step.startswith("poll throughput"):
                cell = f"{m:,.0f} req/s [{min(a):,.0f}–{max(a):,.0f}]"
                ratio = base / m
            else:
                cell = f"{m * 1000:.2f} ms [{min(a) * 1000:.2f}–{max(a) * 1000:.2f}]"
                ratio = m / base
            cells.append(cell if t.n <= ref.n else f"{cell} **{ratio:.2f}**")
        ca, cb = statistics.median(small.cpu[step]), statistics.median(big.cpu[step])
        lines.append("| " + " | ".join([step, *cells, f"{ca * 1000:.2f} → {cb * 1000:.2f} ms"]) + " |")
    how = ("pg_total_relation_size of every table, with indexes and TOAST" if engine == "PostgreSQL" else
           "the database file after a checkpoint; per table with its indexes from dbstat")
    lines += ["", f"Metadata on {engine} ({how}):", "",
              "| files | total | bytes per file | nodes | versions | chunks | changes | generation |",
              "|---|---|---|---|---|---|---|---|"]
    for n, (total, files, per) in sorted(sizes.items()):
        g = gen.get(n)
        gtxt = f"{sum(g.values()):.0f} s" if g else "reused"
        lines.append(f"| {files:,} | {total / 2**20:,.0f} MiB | **{total / max(files, 1):,.0f}** | "
                     + " | ".join(f"{per.get(k, 0) / 2**20:,.0f} MiB" for k in BIG_TABLES) + f" | {gtxt} |")
    (ta, fa, pa), (tb, fb, pb) = sizes[min(sizes)], sizes[max(sizes)]
    if len(sizes) > 1 and pa.get("(accounts)") == pb.get("(accounts)"):
        lines += ["", f"Marginal metadata per file (both databases hold the same accounts): "
                  f"({tb / 2**20:,.0f} MiB - {ta / 2**20:,.0f} MiB) / ({fb:,} - {fa:,} files) = "
                  f"**{(tb - ta) / max(fb - fa, 1):,.0f} bytes per file**"]
    if gen:
        lines += ["", "Generation steps (s): " + "; ".join(
            f"{n:,}: " + ", ".join(f"{k} {v:.0f}" for k, v in g.items()) for n, g in sorted(gen.items()))]
    lines += ["", f"Plans at {big.n:,} files (auto_explain, every statement of every operation above):"]
    lines += ["- none reads a whole big table (nodes, versions, chunks, changes)"] if not plans else [
        f"- {p}" for p in plans]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,10000000", help="file counts, comma-separated (smallest first)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=200, help="requests per latency step per round")
    ap.add_argument("--wrk-seconds", type=int, default=5, help="poll throughput run (0: skip)")
    ap.add_argument("--other-users", type=int, default=600_000,
                    help="empty accounts added beside the user `bench` (default: the reference deployment's)")
    ap.add_argument("--pg-url", help="superuser URL of a running PostgreSQL (default: start one)")
    ap.add_argument("--reuse", action="store_true", help="keep databases an earlier --keep run generated")
    ap.add_argument("--keep", action="store_true", help="leave PostgreSQL and the databases running")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--plans-only", action="store_true", help="only the auto_explain check of the biggest size")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--database", choices=("pg", "sqlite"), default="pg")
    args = ap.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    started = dt.datetime.now()
    if args.database == "sqlite":
        return main_sqlite(args, sizes, started)
    pg = Pg(args.pg_url, None) if args.pg_url else start_pg()
    if args.pg_url and os.environ.get("CARTABLE_PG_DIR"):
        pg.log_path = Path(os.environ["CARTABLE_PG_DIR"]) / "server.log"
    work = Path(tempfile.mkdtemp(prefix="cartable-scale."))
    targets: list[Target] = []
    try:
        pg.set_fsync(False)
        gen: dict[int, dict[str, float]] = {}
        for n in sizes:
            db = f"scale_{n}"
            if args.reuse and db_files(pg, db) == n:
                log(f"{db}: reusing the generated database")
                continue
            log(f"{db}: generating the metadata of {n:,} files ...")
            t0 = time.perf_counter()
            create_schema_and_user(pg, db, work / f"init-{db}")
            gen[n] = generate(pg, db, n)
            log(f"{db}: generated in {time.perf_counter() - t0:.0f} s")
        for n in sizes:
            took = add_users(pg, f"scale_{n}", args.other_users)
            if took and n in gen:
                gen[n]["other users"] = took
        pg.set_fsync(True)
        msizes = {n: meta_bytes(pg, f"scale_{n}") for n in sizes}
        for n, (total, files, _) in msizes.items():
            log(f"scale_{n}: {total / 2**20:,.0f} MiB for {files:,} files = {total / files:,.0f} bytes/file")
        if args.generate_only:
            return 0
        if args.plans_only:
            plans = check_plans(pg, (pg, f"scale_{sizes[-1]}", sizes[-1]), work)
            print("\n".join(plans) or "no statement reads a whole big table")
            return 0
        targets = [serve(pg, f"scale_{n}", n, work) for n in sizes]
        run_rounds(targets, args, work)
        for t in targets:
            t.client.close()
            t.stop()  # type: ignore[operator]
        targets_done, targets = targets, []
        try:
            plans = check_plans(pg, (pg, f"scale_{sizes[-1]}", sizes[-1]), work)
        except Exception as exc:  # the measurements above are worth a report anyway
            plans = [f"(plans not checked: {str(exc)[:200]})"]
        with pg.admin() as c:
            pgver = c.execute("SHOW server_version").fetchone()[0]
            settings = {k: c.execute(f"SHOW {k}").fetchone()[0]
                        for k in ("shared_buffers", "fsync", "synchronous_commit", "work_mem")}
        meta = [f"# Scale benchmark on PostgreSQL {started:%Y-%m-%d %H:%M}", "",
                f"- machine: {platform.node()}, {os.cpu_count()} cores, load average at start "
                f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}",
                f"- PostgreSQL {pgver} on loopback, " + ", ".join(f"{k}={v}" for k, v in settings.items()),
                f"- one user `{USER}` holding every file, beside {args.other_users:,} other accounts (empty home "
                f"folders); /hot/ has {HOT:,} files; leaves of {LEAF:,} files; "
                f"{args.reps} sequential requests per latency step, PROPFIND Depth 1 median of 5; one "
                "`cartable serve` per database, local chunk folder"]
        write_report(report(targets_done, gen, msizes, meta, plans, args.rounds), args.out or
                     REPO / "bench" / "results" / f"scale-{started:%Y-%m-%d-%H%M}.md")
        return 0
    finally:
        for t in targets:
            t.client.close()
            t.stop()  # type: ignore[operator]
        shutil.rmtree(work, ignore_errors=True)
        if args.keep:
            print(f"kept PostgreSQL: --pg-url {pg.admin_url} (CARTABLE_PG_DIR={pg.engine_dir})")
        else:
            pg.stop()


def run_rounds(targets: list[Target], args: argparse.Namespace, work: Path) -> None:
    for t in targets:  # warm up: connections, auth cache, the first pages
        for _ in range(20):
            op_poll(t)
        op_propfind1(t)
    for rnd in range(1, args.rounds + 1):
        order = targets if rnd % 2 else list(reversed(targets))
        log(f"round {rnd}/{args.rounds}")
        for t in order:
            measure_round(t, rnd, args.reps, args.wrk_seconds, work)


def write_report(text: str, out: Path) -> None:
    print()
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")


def main_sqlite(args: argparse.Namespace, sizes: list[int], started: dt.datetime) -> int:
    """The same measurements on the embedded default: SQLite in each size's data folder."""
    work = Path(tempfile.mkdtemp(prefix="cartable-scale."))
    keep_root = REPO / "bench" / "results" / "scale-sqlite"
    root = keep_root if (args.keep or args.reuse) else work / "dbs"
    targets: list[Target] = []
    try:
        gen: dict[int, dict[str, float]] = {}
        for n in sizes:
            data = root / f"n{n}"
            if args.reuse and scale_sqlite.db_files(data) == n:
                log(f"sqlite_{n}: reusing the generated database in {data}")
                continue
            log(f"sqlite_{n}: generating the metadata of {n:,} files in {data} ...")
            t0 = time.perf_counter()
            scale_sqlite.create_schema_and_user(data, USER, PASSWORD, QUOTA)
            gen[n] = scale_sqlite.generate(data, n, Layout(n), USER, log)
            log(f"sqlite_{n}: generated in {time.perf_counter() - t0:.0f} s")
        for n in sizes:
            took = scale_sqlite.add_users(root / f"n{n}", args.other_users, USER, log)
            if took and n in gen:
                gen[n]["other users"] = took
        msizes = {n: scale_sqlite.meta_bytes(root / f"n{n}") for n in sizes}
        for n, (total, files, _) in msizes.items():
            log(f"sqlite_{n}: {total / 2**20:,.0f} MiB for {files:,} files = {total / files:,.0f} bytes/file")
        if args.generate_only:
            return 0
        targets = [serve_sqlite(root / f"n{n}", n, work) for n in sizes]
        run_rounds(targets, args, work)
        for t in targets:
            t.client.close()
            t.stop()  # type: ignore[operator]
        targets_done, targets = targets, []
        meta = [f"# Scale benchmark on SQLite {started:%Y-%m-%d %H:%M}", "",
                f"- machine: {platform.node()}, {os.cpu_count()} cores, load average at start "
                f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
                f"- one user `{USER}` holding every file, beside {args.other_users:,} other accounts (empty home "
                f"folders); /hot/ has {HOT:,} files; leaves of {LEAF:,} files; "
                f"{args.reps} sequential requests per latency step, PROPFIND Depth 1 median of 5; one "
                "`cartable serve` per database (the embedded default: SQLite and a local chunk folder)"]
        plans = ["(not checked on SQLite: auto_explain is PostgreSQL's; the costs above are the check)"]
        write_report(report(targets_done, gen, msizes, meta, plans, args.rounds, "SQLite"), args.out or
                     REPO / "bench" / "results" / f"scale-sqlite-{started:%Y-%m-%d-%H%M}.md")
        return 0
    finally:
        for t in targets:
            t.client.close()
            t.stop()  # type: ignore[operator]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
