# SPDX-License-Identifier: EUPL-1.2
"""The power-loss rig: a data folder, the Core open on it, the simulator, and a model of what was
acknowledged; the enumeration of every cut point of a workload; the checks after a restart.

A *workload* is a function ``(rig, tag)`` that performs one write path through the core, wrapping
each call in ``rig.op({key: new value})``: when the call returns (the point where an adapter
sends its 2xx) and the power was still on, the model takes the new values; while it runs, a
restarted server may show either the old or the new value of each key, never anything else.
Keys: ``("f", *parts)`` a file (its bytes), ``("d", *parts)`` a folder, ``("u", key)`` a chunked
upload, ``("p", key, name)`` one of its parts (its bytes). The tag prefixes the names a run
creates, so that the same workload can run again after a restart (a client retrying, with the
same contents: whatever the crash left of their chunks is reused).

``enumerate_cuts`` runs the workload once to count its steps (file operations and metadata
commits), then, for every step index k (and once after the last step), on a fresh copy of the
prepared folder: cut the power before step k, restart (a fresh Core on what the disk kept: the
base variant, then a few seeded random variants), check, run the workload again, check, run the
GC past its grace period, and check that everything was reclaimed.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from cartable.common import fsutil
from cartable.common.fsutil import TEMP_PREFIX
from cartable.core import accounts, fsck, gc, manifest, reads
from cartable.core.context import Core, Limits
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import content
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import uploads as uploads_repo
from cartable.store.meta.engine import MetaDB, sqlite_url
from cartable.store.meta.migrate import upgrade
from tests.powerloss.simfs import PowerCut, SimFS

DB_NAME = "meta.db"
DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal")
GRACE = 3600.0
START = 4_000_000_000.0  # the fake clock: later than any real file time
USER, PASSWORD = "alice", "alice-secret-pw"

Key = tuple[str, ...]
Workload = Callable[["Rig", str], None]


class _Absent:
    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()
FOLDER = "<folder>"
UPLOAD = "<upload>"


@dataclass(frozen=True)
class Unreadable:
    error: str


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InlineExecutor:
    """Stands for the write path's background writer pool: runs each job at once, so that step k
    is the same step in every run (each thread's own protocol is unchanged)."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # PowerCut included: the caller meets it in result()
            fut.set_exception(exc)
        return fut


@dataclass
class Setup:
    """How a rig's Core is built: limits, and the chunk store's modes."""

    write_batch_bytes: int = 1
    inline_max: int = 8 * 1024
    batch_sync: bool | None = None  # None: what the kernel allows (fsutil.syncfs_usable())
    renameat2: bool = True

    def limits(self) -> Limits:
        return Limits(write_batch_bytes=self.write_batch_bytes, inline_max=self.inline_max,
                      gc_grace_seconds=GRACE)


@dataclass
class Rig:
    data: Path
    setup: Setup
    clock: Clock = field(default_factory=Clock)
    model: dict[Key, Any] = field(default_factory=dict)
    inflight: dict[Key, Any] = field(default_factory=dict)
    sim: SimFS | None = None
    core: Core = field(init=False)
    op_: Op = field(init=False)
    _db_image: bytes | None = None
    _db_baseline: bytes | None = None
    _stack: ExitStack | None = None

    def __post_init__(self) -> None:
        self.open()

    # -- life cycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """A process starts on the data folder (the schema is migrated already)."""
        db = _metadb(self.data / DB_NAME)
        blobs = LocalChunkStore(self.data / "chunks")
        if self.setup.batch_sync is not None:
            blobs.batch_sync = self.setup.batch_sync
        self.core = Core(db, blobs, self.setup.limits(), clock=self.clock)
        with db.read() as tx:
            rec = accounts_repo.user_by_name(tx, USER)
        assert rec is not None
        self.op_ = Op(accounts.principal_for(self.core, rec))

    @property
    def principal(self) -> Principal:
        return self.op_.principal

    def power_on(self, cut_at: int | None = None) -> SimFS:
        """From now on every file operation and commit is a step of a simulator cutting the power
        before step ``cut_at`` (never, when None)."""
        self.power_off()
        self._db_baseline = _db_image(self.data / DB_NAME)
        self._db_image = None
        with self.core.db.engine.connect() as conn:
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        # SQLite survives a power cut with every committed transaction only in FULL (2) or EXTRA
        # (3); otherwise assume the worst: everything since the simulator started is lost.
        trusted = level is not None and int(level) >= 2
        sim = SimFS(self.data, cut_at=cut_at, renameat2=self.setup.renameat2, untracked=DB_FILES,
                    on_cut=lambda: self._keep_db(trusted))
        stack = ExitStack()
        stack.enter_context(fsutil.use_file_ops(sim))
        engine = self.core.db.engine

        def before_commit(_conn: Any) -> None:
            sim.db_commit()

        event.listen(engine, "commit", before_commit)
        stack.callback(event.remove, engine, "commit", before_commit)
        self.sim, self._stack = sim, stack
        return sim

    def power_off(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = None

    def _keep_db(self, trusted: bool) -> None:
        self._db_image = _db_image(self.data / DB_NAME) if trusted else self._db_baseline

    def restart(self, seed: int | None) -> None:
        """After the cut: the process is gone; the disk holds what the simulator says; a new
        process opens it."""
        sim = self.sim
        assert sim is not None and sim.dead, "restart() needs a power cut first"
        self.power_off()
        self.core.db.dispose()
        for name in DB_FILES:
            (self.data / name).unlink(missing_ok=True)
        assert self._db_image is not None
        (self.data / DB_NAME).write_bytes(self._db_image)
        sim.recover(seed)
        self.open()

    def close(self) -> None:
        self.power_off()
        self.core.db.dispose()

    # -- acknowledgements -------------------------------------------------------------------------

    @contextmanager
    def op(self, changes: dict[Key, Any]) -> Iterator[None]:
        """One call whose success is an acknowledgement of ``changes`` (see the module doc)."""
        self.inflight = dict(changes)
        yield
        if self.sim is None or not self.sim.dead:  # a reply after the cut reaches nobody
            for key, value in changes.items():
                if value is ABSENT:
                    self.model.pop(key, None)
                else:
                    self.model[key] = value
            self.inflight = {}

    # -- observation ------------------------------------------------------------------------------

    def observe(self) -> dict[Key, Any]:
        """Everything a client can see: the user's tree with each file's bytes, the chunked
        uploads with each part's bytes."""
        out: dict[Key, Any] = {}
        core, principal = self.core, self.principal

        def walk(node_id: int, parts: tuple[str, ...]) -> None:
            with core.db.read() as tx:
                kids = nodes_repo.children(tx, node_id)
            for kid in kids:
                p = (*parts, kid.name)
                if kid.is_dir:
                    out[("d", *p)] = FOLDER
                    walk(kid.id, p)
                else:
                    try:
                        out[("f", *p)] = reads.open_content(core, principal, p).read_all()
                    except Exception as exc:  # reported as a difference, with its reason
                        out[("f", *p)] = Unreadable(repr(exc))

        walk(principal.root_id, ())
        with core.db.read() as tx:
            ups = uploads_repo.list_for_user(tx, principal.user_id)
            parts = {up.upload_key: uploads_repo.list_parts(tx, up.id) for up in ups}
        for key, recs in parts.items():
            out[("u", key)] = UPLOAD
            for rec in recs:
                try:
                    if rec.inline_data is not None:
                        data = bytes(rec.inline_data)
                    else:
                        data = b"".join(core.blobs.get(e.digest) for e in manifest.unpack(rec.manifest))
                    out[("p", key, rec.name)] = data
                except Exception as exc:
                    out[("p", key, rec.name)] = Unreadable(repr(exc))
        return out

    def check(self, when: str) -> None:
        """Every acknowledged value is there, byte for byte; the one in flight is old or new;
        nothing else is visible; fsck (deep) finds no problem (unreferenced bytes and dying rows
        are not problems: the GC reclaims them)."""
        seen = self.observe()
        problems = []
        for key in sorted(set(seen) | set(self.model) | set(self.inflight)):
            allowed = [self.model.get(key, ABSENT)]
            if key in self.inflight:
                allowed.append(self.inflight[key])
            got = seen.get(key, ABSENT)
            if not any(_same(got, a) for a in allowed):
                problems.append(f"{'/'.join(key)}: {_show(got)}; allowed: {', '.join(_show(a) for a in allowed)}")
        report = fsck.check(self.core, deep=True)
        problems += [f"fsck: {p}" for p in report.problems]
        assert not problems, f"{when}:\n" + "\n".join(problems[:20])

    def settle(self) -> None:
        """After the checks of a restart: the call in flight at the cut is resolved, one way or
        the other; the model takes what the server shows for it."""
        if self.inflight:
            seen = self.observe()
            for key in self.inflight:
                if key in seen:
                    self.model[key] = seen[key]
                else:
                    self.model.pop(key, None)
        self.inflight = {}

    def collect_all(self) -> None:
        """The GC after its grace period: then nothing unreferenced is left, no dying row, no
        file in the chunk store without a row, no temporary file. A collection that purged trash
        or dropped old versions for their age (core/retention.py: the versions of a workload age
        by the grace period too) released their chunks just now: a second one, a grace period
        later, reclaims them."""
        self.clock.advance(GRACE + 60)
        stats = gc.collect(self.core)
        if stats.trash_expired or stats.versions_expired:
            self.clock.advance(GRACE + 60)
            gc.collect(self.core)
        with self.core.db.read() as tx:
            rows = {d: rc for d, _size, _stored, rc in content.iter_chunks(tx)}
            dying = list(content.iter_dying(tx))
        problems = []
        if dying:
            problems.append(f"{len(dying)} dying rows survived a full GC")
        unreferenced = [d.hex()[:12] for d, rc in rows.items() if rc <= 0]
        if unreferenced:
            problems.append(f"unreferenced rows survived a full GC: {unreferenced}")
        files = {d for d, _ in self.core.blobs.iter_digests()}
        if files != set(rows):
            problems.append(f"chunk files without a row: {sorted(d.hex()[:12] for d in files - set(rows))}; "
                            f"rows without a file: {sorted(d.hex()[:12] for d in set(rows) - files)}")
        temps = [p.name for p in (self.data / "chunks").rglob(f"{TEMP_PREFIX}*")]
        if temps:
            problems.append(f"temporary files survived a full GC: {temps}")
        assert not problems, "after a full GC:\n" + "\n".join(problems)


_DBS: dict[str, MetaDB] = {}


def _metadb(path: Path) -> MetaDB:
    """A MetaDB for the database file at ``path``. Runs reuse one data folder path, and a MetaDB
    whose connections were all closed (``dispose``) keeps nothing of a process but SQLAlchemy's
    cache of compiled statements: reusing it saves compiling every statement again each run."""
    url = sqlite_url(path)
    db = _DBS.get(url)
    if db is None:
        if len(_DBS) > 16:
            for old in _DBS.values():
                old.dispose()
            _DBS.clear()
        db = _DBS[url] = MetaDB(url)
    return db


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, Unreadable) or isinstance(want, Unreadable):
        return False
    return bool(got is want or (type(got) is type(want) and got == want))


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes {value[:8].hex()}..{value[-4:].hex()}"
    return repr(value)


def _db_image(path: Path) -> bytes:
    """The committed state of the database (what a reader sees now), as a file image."""
    src = sqlite3.connect(path)
    dst = sqlite3.connect(":memory:")
    try:
        src.backup(dst)
        return dst.serialize()
    finally:
        src.close()
        dst.close()


# ---------------------------------------------------------------------------------------------
# Prepared folders and the enumeration of cut points


def prepare(folder: Path, setup: Setup, before: Callable[[Rig], None] | None = None) -> Rig:
    """A migrated data folder with the user, and whatever ``before`` adds (durable: it is the
    state every run starts from). Returns the rig, closed; copy ``folder`` for each run."""
    folder.mkdir(parents=True)
    db = MetaDB(sqlite_url(folder / DB_NAME))
    upgrade(db)
    core = Core(db, LocalChunkStore(folder / "chunks"), setup.limits())
    accounts.create_user(core, USER, PASSWORD)
    db.dispose()
    rig = Rig(folder, setup)
    rig.power_on()  # no cut: only to skip the real syncs
    if before is not None:
        before(rig)
    rig.close()
    return rig


def fork(base: Rig, folder: Path) -> Rig:
    """A new rig on a copy of a prepared folder, with the same model and clock."""
    shutil.copytree(base.data, folder)
    rig = Rig(folder, base.setup, clock=Clock(base.clock.now), model=dict(base.model))
    return rig


_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]+")


def normal(step: str) -> str:
    return _TEMP_NAME.sub(TEMP_PREFIX + "*", step)


@dataclass
class CutReport:
    steps: list[str]
    runs: int = 0


def count_steps(base: Rig, folder: Path, workload: Workload) -> list[str]:
    rig = fork(base, folder)
    try:
        sim = rig.power_on()
        workload(rig, "")
        return [normal(s) for s in sim.steps]
    finally:
        rig.close()


def run_cut(base: Rig, folder: Path, workload: Workload, cut_at: int, seed: int | None,
            expected: list[str], resume: Workload | None = None) -> bool:
    """One run: cut before step ``cut_at`` (after the last step when it is len(expected)),
    restart with variant ``seed``, check, retry, check, full GC, check. Returns whether anything
    was left undurable at the cut (when not, random variants equal the base one)."""
    rig = fork(base, folder)
    where = f"cut before step {cut_at} ({expected[cut_at] if cut_at < len(expected) else 'after the last'})" \
            f", variant {seed}"
    try:
        sim = rig.power_on(cut_at)
        try:
            workload(rig, "")
        except BaseException as exc:
            if not sim.dead:
                raise AssertionError(f"{where}: the workload failed before the cut: {exc!r}") from exc
            if not isinstance(exc, (PowerCut, Exception)):
                raise
        else:
            assert cut_at == len(expected), f"{where}: the workload ended before the cut"
            sim.cut_now()
        ran = [normal(s) for s in sim.steps]
        assert ran == expected[:cut_at], f"{where}: the steps differ from the counting run:\n{ran}\n{expected}"
        volatile = sim.volatile()
        rig.restart(seed)
        rig.power_on()  # no cut: record only (and skip real syncs)
        rig.check(f"{where}: after the restart")
        rig.settle()
        if resume is not None:
            resume(rig, "")
            rig.check(f"{where}: after resuming")
        workload(rig, "again-")
        rig.check(f"{where}: after running the workload again")
        rig.collect_all()
        rig.check(f"{where}: after a full GC")
        return volatile
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    finally:
        rig.close()
        shutil.rmtree(folder, ignore_errors=True)


def enumerate_cuts(base: Rig, tmp: Path, workload: Workload, *, variants: int = 2,
                   resume: Workload | None = None, seed_base: int = 0) -> CutReport:
    """Cut the power before every step of ``workload`` and after its last one; for each cut,
    the base variant and ``variants`` seeded random ones (when anything was left undurable)."""
    expected = count_steps(base, tmp / "count", workload)
    report = CutReport(expected)
    for k in range(len(expected) + 1):
        volatile = run_cut(base, tmp / "run", workload, k, None, expected, resume)
        report.runs += 1
        if not volatile:
            continue
        for v in range(variants):
            run_cut(base, tmp / "run", workload, k, seed_base * 100_000 + k * 100 + v, expected, resume)
            report.runs += 1
    return report


@dataclass
class Case:
    """One write path to cut: the workload, what the prepared folder holds before it, the
    settings, the kinds of steps its run must take (proof that it took the path it names) and,
    for a chunked upload, how a client resumes after the restart."""

    workload: Workload
    before: Callable[[Rig], None] | None = None
    setup: Setup = field(default_factory=Setup)
    must_include: tuple[str, ...] = ()
    resume: Workload | None = None


def run_case(work: Path, name: str, case: Case, *, variants: int = 2) -> CutReport:
    base = prepare(work / "base", case.setup, case.before)
    report = enumerate_cuts(base, work, case.workload, variants=variants, resume=case.resume,
                            seed_base=sum(map(ord, name)))
    missing = [k for k in case.must_include if not any(s.startswith(k + " ") for s in report.steps)]
    assert not missing, f"{name}: the run took no step {missing}: {report.steps}"
    print(f"{name}: {len(report.steps)} steps, {report.runs} runs")
    return report
