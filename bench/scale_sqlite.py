# SPDX-License-Identifier: EUPL-1.2
"""The SQLite side of bench/scale_bench.py: generate the same tree as its PostgreSQL generator
into the embedded default database (``DATA/cartable.db``), add the other accounts, and measure
the metadata bytes per file.

SQLite has no generate_series, md5 or sha256 in SQL, so rows are made in Python and inserted
with ``executemany`` in batches, in one transaction per table with ``synchronous = OFF`` (the
server, started afterwards, runs with its own durable settings). The rows mirror what
core/writes.py commits for a PUT of a new file, as scale_bench.generate documents.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

__all__ = ["db_path", "sa_url", "create_schema_and_user", "generate", "add_users", "meta_bytes", "db_files"]

BATCH = 50_000


def db_path(data: Path) -> Path:
    return data / "cartable.db"


def sa_url(data: Path) -> str:
    return f"sqlite:///{db_path(data).resolve()}"


def _connect(data: Path) -> sqlite3.Connection:
    c = sqlite3.connect(db_path(data), isolation_level=None)
    c.execute("PRAGMA synchronous = OFF")
    c.execute("PRAGMA cache_size = -262144")  # 256 MiB
    return c


def db_files(data: Path) -> int | None:
    """The file count a finished generation recorded, or None."""
    if not db_path(data).exists():
        return None
    with sqlite3.connect(db_path(data)) as c:
        try:
            row = c.execute("SELECT value FROM meta_kv WHERE key = 'scale_bench_files'").fetchone()
        except sqlite3.Error:
            return None
    return None if row is None else int(row[0])


def create_schema_and_user(data: Path, user: str, password: str, quota: int) -> None:
    """The schema by cartable's migrations, the user and its space by cartable's own code."""
    from cartable.config import load_settings
    from cartable.core.accounts import create_user
    from cartable.server import open_core

    data.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-writer"):
        Path(str(db_path(data)) + suffix).unlink(missing_ok=True)
    core = open_core(load_settings(overrides={"data": data}, environ={}))
    try:
        create_user(core, user, password, quota=quota)
    finally:
        core.db.dispose()


def _batches(rows: Iterable[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _etag(seed: str) -> str:
    return hashlib.md5(seed.encode()).hexdigest()[:20]


def generate(data: Path, n: int, layout, user: str, log: Callable[[str], None]) -> dict[str, float]:  # noqa: ANN001
    """Insert the metadata of n files for ``user`` (layout: scale_bench.Layout(n)); returns the
    seconds each step took."""
    lay = layout
    steps: dict[str, float] = {}
    now = time.time()
    c = _connect(data)
    try:
        space_id, root_id = c.execute(
            "SELECT s.id, s.root_id FROM spaces s JOIN users u ON u.id = s.owner_id WHERE u.name = ?",
            (user,)).fetchone()
        base = c.execute("SELECT max(id) + 1 FROM nodes").fetchone()[0]
        vbase = c.execute("SELECT coalesce(max(id), 0) + 1 FROM versions").fetchone()[0]
        hot_id, top0 = base, base + 1
        leaf0 = top0 + lay.tops
        file0 = leaf0 + lay.leaves

        def size_of(i: int) -> int:  # 10,000 to 59,999 bytes: never inline
            return 10000 + (i * 7919) % 50000

        def parent_of(i: int) -> int:
            return hot_id if i < lay.hot else leaf0 + (i - lay.hot) // 1000

        def digest(i: int) -> bytes:
            return hashlib.sha256(struct.pack(">q", file0 + i)).digest()

        def step(name: str, sql: str, rows: Iterable[tuple]) -> None:
            t0 = time.perf_counter()
            c.execute("BEGIN")
            for batch in _batches(rows):
                c.executemany(sql, batch)
            c.execute("COMMIT")
            steps[name] = time.perf_counter() - t0
            log(f"  sqlite {n:,}: {name}: {steps[name]:.1f} s")

        node_sql = ("INSERT INTO nodes (id, space_id, parent_id, name, kind, size, mtime, ctime, etag, version_id, "
                    "content_type, checksums) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        folders = [(hot_id, space_id, root_id, "hot", "d", 0, now, now, _etag("hot"), None, None, None)]
        folders += [(top0 + k, space_id, root_id, f"t{k:04d}", "d", 0, now, now, _etag(f"t{k}"), None, None, None)
                    for k in range(lay.tops)]
        folders += [(leaf0 + j, space_id, top0 + j // 100, f"l{j:06d}", "d", 0, now, now, _etag(f"l{j}"),
                     None, None, None) for j in range(lay.leaves)]
        step("folders", node_sql, folders)
        step("files (nodes)", node_sql, (
            (file0 + i, space_id, parent_of(i), f"f{i:08d}", "f", size_of(i), now - (n - i), now - (n - i),
             _etag(str(i)), vbase + i, "application/octet-stream",
             "SHA1:" + hashlib.md5(f"s{i}".encode()).hexdigest() + hashlib.md5(f"t{i}".encode()).hexdigest()[:8])
            for i in range(n)))
        step("versions", "INSERT INTO versions (id, node_id, size, created_at, manifest, inline_data) "
             "VALUES (?, ?, ?, ?, ?, NULL)",
             ((vbase + i, file0 + i, size_of(i), now - (n - i), digest(i) + struct.pack(">q", size_of(i)))
              for i in range(n)))
        step("chunks", "INSERT INTO chunks (digest, size, stored_size, refcount, touched_at, dying, incarnation) "
             "VALUES (?, ?, ?, 1, ?, 0, 1)",
             ((digest(i), size_of(i), size_of(i), now) for i in range(n)))
        t0 = time.perf_counter()
        c.execute("BEGIN")
        c.execute("""INSERT INTO changes (space_id, node_id, parent_id, name, kind, op, version_id, size, mtime, at)
                     SELECT space_id, id, parent_id, name, kind, 'create', version_id, size, mtime, mtime
                       FROM nodes WHERE id >= ? ORDER BY id""", (hot_id,))
        for lo, hi in ((file0, None), (leaf0, file0)):  # leaf sums, then top sums
            cond = "id >= ?" + ("" if hi is None else " AND id < ?")
            args = (lo,) if hi is None else (lo, hi)
            c.execute(f"""UPDATE nodes SET size = (SELECT sum(k.size) FROM nodes k WHERE k.parent_id = nodes.id)
                          WHERE id IN (SELECT DISTINCT parent_id FROM nodes WHERE {cond})""", args)
        c.execute("""UPDATE nodes SET size = size + (SELECT coalesce(sum(size), 0) FROM nodes
                                                     WHERE parent_id = ? AND kind = 'd' AND id >= ?),
                                      etag = ? WHERE id = ?""", (root_id, hot_id, _etag(f"root{now}"), root_id))
        c.execute("INSERT INTO meta_kv (key, value) VALUES ('scale_bench_files', ?)", (str(n),))
        c.execute("COMMIT")
        steps["journal and sums"] = time.perf_counter() - t0
        log(f"  sqlite {n:,}: journal and sums: {steps['journal and sums']:.1f} s")
        root_size, sum_files = c.execute("SELECT (SELECT size FROM nodes WHERE id = ?), "
                                         "(SELECT sum(size) FROM nodes WHERE kind = 'f')", (root_id,)).fetchone()
        if root_size != sum_files:
            raise RuntimeError(f"sqlite {n}: root size {root_size} != sum of file sizes {sum_files}")
        t0 = time.perf_counter()
        c.execute("ANALYZE")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        steps["analyze"] = time.perf_counter() - t0
    finally:
        c.close()
    return steps


def add_users(data: Path, count: int, user: str, log: Callable[[str], None]) -> float:
    """``count`` more users, each with a home space and an empty root folder, once per database."""
    t0 = time.perf_counter()
    c = _connect(data)
    try:
        if c.execute("SELECT 1 FROM meta_kv WHERE key = 'scale_bench_users'").fetchone() or count <= 0:
            return 0.0
        now = time.time()
        ub, sb, nb = (c.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0]
                      for t in ("users", "spaces", "nodes"))
        pw = c.execute("SELECT password_hash FROM users WHERE name = ?", (user,)).fetchone()[0]
        c.execute("BEGIN")
        for batch in _batches((ub + k, f"u{k:07d}", f"u{k:07d}", f"u{k:07d}", "", pw, now) for k in range(count)):
            c.executemany("INSERT INTO users (id, name, name_key, display_name, email, password_hash, is_admin, "
                          "disabled, auth_version, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 1, ?)", batch)
        for batch in _batches((sb + k, ub + k, nb + k) for k in range(count)):
            c.executemany("INSERT INTO spaces (id, kind, owner_id, root_id, quota) VALUES (?, 'home', ?, ?, NULL)",
                          batch)
        for batch in _batches((nb + k, sb + k, now, now, _etag(f"u{k}")) for k in range(count)):
            c.executemany("INSERT INTO nodes (id, space_id, parent_id, name, kind, size, mtime, ctime, etag) "
                          "VALUES (?, ?, NULL, '', 'd', 0, ?, ?, ?)", batch)
        c.execute("INSERT INTO meta_kv (key, value) VALUES ('scale_bench_users', ?)", (str(count),))
        c.execute("COMMIT")
        c.execute("ANALYZE")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        c.close()
    took = time.perf_counter() - t0
    log(f"  sqlite: {count:,} more users with a space and a root folder: {took:.1f} s")
    return took


def meta_bytes(data: Path) -> tuple[int, int, dict[str, int]]:
    """(bytes of the database file after a checkpoint, file count, bytes per table with its
    indexes where the dbstat table is compiled in)."""
    c = sqlite3.connect(db_path(data))
    try:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        files = c.execute("SELECT count(*) FROM nodes WHERE kind = 'f'").fetchone()[0]
        accounts = c.execute("SELECT count(*) FROM users").fetchone()[0]
        per: dict[str, int] = {}
        try:
            rows = c.execute("SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                             "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1").fetchall()
            per = {str(r[0]): int(r[1]) for r in rows}
        except sqlite3.Error:
            pass
    finally:
        c.close()
    total = db_path(data).stat().st_size
    per["(accounts)"] = int(accounts)
    return total, int(files), per
