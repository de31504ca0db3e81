#!/usr/bin/env python3
# SPDX-License-Identifier: EUPL-1.2
"""Trash benchmark: deleting a folder of 5,000 files into the trash and restoring it, against the
final delete cartable did before the trash (every row, version and chunk reference of the
subtree removed in one transaction; what a purge of the trash does now).

    python bench/trash_bench.py [--files 5000] [--rounds 5] [--tmp DIR]

In-process, on the embedded stores (SQLite + a chunk folder) in a temporary folder. Each round
builds the folder afresh (one bulk batch of small files, half of them in a sub-folder), then
times: delete to the trash, restore, delete again, and the final delete (the purge of the trashed
folder, which walks it as the old DELETE did). Prints medians and the ratios trash/final and
restore/final. Not a test: it asserts no timing, but checks that every step did what it should
(the folder gone, back whole, gone for good, fsck clean).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cartable.core import accounts, files, fsck, reads, trash
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import NotFound
from cartable.core.tree import Op
from cartable.core.writes import PendingVersion, Written, commit_versions
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta.engine import MetaDB, sqlite_url
from cartable.store.meta.migrate import upgrade


def build(core: Core, op: Op, name: str, n: int) -> None:
    files.mkdir(core, op, (name,))
    files.mkdir(core, op, (name, "sub"))
    items = [PendingVersion((name, "sub", f"f{i}.txt") if i % 2 else (name, f"f{i}.txt"),
                            Written(6, inline=b"%06d" % i)) for i in range(n)]
    assert all(not isinstance(r, Exception) for r in commit_versions(core, op, items))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gone(core: Core, op: Op, parts: tuple[str, ...]) -> bool:
    try:
        files.stat(core, op.principal, parts)
    except NotFound:
        return True
    return False


def one_round(core: Core, op: Op, n: int, k: int) -> dict[str, float]:
    name = f"folder{k}"
    build(core, op, name, n)
    out = {"delete to trash": timed(lambda: files.delete(core, op, (name,)))}
    assert gone(core, op, (name,))
    item = next(i.name for i in trash.items(core, op.principal) if i.record.name == name)
    out["restore"] = timed(lambda: trash.restore(core, op, item))
    last = (name, "sub", f"f{n - 1}.txt") if (n - 1) % 2 else (name, f"f{n - 1}.txt")
    assert reads.open_content(core, op.principal, last).read_all() == b"%06d" % (n - 1)
    files.delete(core, op, (name,))
    item = next(i.name for i in trash.items(core, op.principal) if i.record.name == name)
    out["final delete (purge)"] = timed(lambda: trash.purge(core, op, item))
    assert trash.items(core, op.principal) == []
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tmp", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        db = MetaDB(sqlite_url(Path(tmp) / "meta.db"))
        upgrade(db)
        core = Core(db, LocalChunkStore(Path(tmp) / "chunks"))
        accounts.create_user(core, "alice", "alice-secret-pw")
        op = Op(Authenticator(core).authenticate("alice", "alice-secret-pw", "bench"))
        runs = [one_round(core, op, args.files, k) for k in range(args.rounds)]
        report = fsck.check(core)
        assert report.ok, report.problems
        db.dispose()
    med = {step: statistics.median(r[step] for r in runs) for step in runs[0]}
    print(f"# trash bench: a folder of {args.files} files, {args.rounds} rounds, medians\n")
    print("| step | median (ms) |\n| --- | ---: |")
    for step, secs in med.items():
        print(f"| {step} | {secs * 1000:.1f} |")
    final = med["final delete (purge)"]
    print(f"\ndelete to trash / final delete: {med['delete to trash'] / final:.3f}")
    print(f"restore / final delete: {med['restore'] / final:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
