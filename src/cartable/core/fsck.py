# SPDX-License-Identifier: EUPL-1.2
"""Consistency check behind ``cartable admin fsck``: manifests against the chunk store,
reference counts and sizes against the metadata, and the tree's own shape.

Problems: a file whose version is missing or belongs to another file, a manifest referencing a
chunk with no row or a dying one, a referenced chunk missing from the store, a wrong reference
count or size; a node detached from its tree with no trash row (or a trash row whose node is
missing, attached, or of another size), a space whose trash or old-versions byte count disagrees
with its rows. Old versions and the trash hold references like current files: their chunks are
counted in the expected reference counts. Not problems, only counted: unreferenced chunk objects
and dying rows, which the GC reclaims (an unreferenced row without bytes is a claim that was never committed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cartable.core import manifest
from cartable.core.context import Core
from cartable.store.meta import content, history
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import trash as trash_repo
from cartable.store.meta import uploads as uploads_repo
from cartable.store.meta.trash import TrashRecord

__all__ = ["Report", "check"]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    folders: int = 0
    chunks: int = 0
    orphan_blobs: int = 0  # chunk objects with no row: the GC's sweep reclaims them
    dying_chunks: int = 0  # rows the GC marked and has not finished deleting: its next run does

    @property
    def ok(self) -> bool:
        return not self.problems


def check(core: Core, *, deep: bool = False, limit: int = 1000) -> Report:
    """deep=True re-hashes every chunk's bytes (reads the whole store)."""
    rep = Report()

    def problem(msg: str) -> None:
        if len(rep.problems) < limit:
            rep.problems.append(msg)

    with core.db.read() as tx:
        rows = nodes_repo.all_brief(tx)
        vers = {v.id: v for v in content.iter_versions(tx)}
        chunk_rows = {d: (size, rc) for d, size, _stored, rc in content.iter_chunks(tx)}
        dying = dict(content.iter_dying(tx))
        staged = list(uploads_repo.iter_part_manifests(tx))
        trashed = trash_repo.all_rows(tx)
        spaces = trash_repo.space_totals(tx)
        old_bytes = history.old_total(tx)
    by_id = {r[0]: r for r in rows}
    child_sum: dict[int, int] = defaultdict(int)
    expected: Counter[bytes] = Counter()
    for nid, parent, kind, size, vid, name in rows:
        if parent is not None and parent not in by_id:
            problem(f"node {nid} ({name!r}) has a missing parent {parent}")
        if parent is not None:
            child_sum[parent] += size
        if kind == "d":
            rep.folders += 1
            continue
        rep.files += 1
        if vid is None:
            if size != 0:
                problem(f"file {nid} ({name!r}) has size {size} but no content version")
            continue
        ver = vers.get(vid)
        if ver is None or ver.node_id != nid:
            problem(f"file {nid} ({name!r}) points at a missing or foreign version {vid}")
            continue
        if ver.size != size:
            problem(f"file {nid} ({name!r}) has size {size} but its version holds {ver.size} bytes")
    for ver in vers.values():
        try:
            entries = manifest.unpack(ver.manifest)
        except ValueError as exc:
            problem(f"version {ver.id}: {exc}")
            continue
        total = len(ver.inline_data) if ver.inline_data is not None else sum(e.length for e in entries)
        if total != ver.size:
            problem(f"version {ver.id} of node {ver.node_id}: content is {total} bytes, size says {ver.size}")
        for e in entries:
            expected[e.digest] += 1
            row = chunk_rows.get(e.digest)
            if row is None:
                problem(f"version {ver.id} of node {ver.node_id} references chunk {e.digest.hex()} "
                        "which has no row")
            elif row[0] != e.length:
                problem(f"chunk {e.digest.hex()} is {row[0]} bytes but a manifest says {e.length}")
    for blob in staged:  # parts of chunked uploads in progress hold references too
        try:
            entries = manifest.unpack(blob)
        except ValueError as exc:
            problem(f"upload part: {exc}")
            continue
        for e in entries:
            expected[e.digest] += 1
            if e.digest not in chunk_rows:
                problem(f"an upload part references chunk {e.digest.hex()} which has no row")
    _check_trash(rows, by_id, trashed, spaces, old_bytes, problem)
    for nid, parent, kind, size, _vid, name in rows:
        if kind == "d" and child_sum.get(nid, 0) != size:
            problem(f"folder {nid} ({name!r}) says {size} bytes but holds {child_sum.get(nid, 0)}")
    stored = {d for d, _m in core.blobs.iter_digests()}
    rep.dying_chunks = len(dying)
    for digest, (_size, rc) in chunk_rows.items():
        rep.chunks += 1
        if digest in dying and expected.get(digest, 0):
            problem(f"chunk {digest.hex()} is dying (the GC is deleting it) but a manifest references it")
        if rc != expected.get(digest, 0):
            problem(f"chunk {digest.hex()} has reference count {rc}, manifests hold {expected.get(digest, 0)}")
        if rc > 0 and digest not in stored:
            problem(f"chunk {digest.hex()} is referenced but missing from the chunk store")
        elif deep and rc > 0 and not core.blobs.verify(digest):
            problem(f"chunk {digest.hex()} is corrupt (its bytes do not match its hash)")
    rep.orphan_blobs = len(stored - set(chunk_rows))
    return rep


Row = tuple[int, int | None, str, int, int | None, str]


def _check_trash(rows: Sequence[Row], by_id: dict[int, Row], trashed: Sequence[TrashRecord],
                 spaces: dict[int, tuple[int | None, int, int]], old_bytes: dict[int, int],
                 problem: Callable[[str], None]) -> None:
    roots = {root for root, _t, _v in spaces.values()}
    in_trash = {t.node_id: t for t in trashed}
    for nid, parent, _kind, _size, _vid, name in rows:
        if parent is None and nid not in roots and nid not in in_trash:
            problem(f"node {nid} ({name!r}) is detached from its tree but not in the trash")
    held: Counter[int] = Counter()
    for t in trashed:
        held[t.space_id] += t.size
        node = by_id.get(t.node_id)
        if node is None:
            problem(f"trash item {t.id} ({t.name!r}) points at a missing node {t.node_id}")
        elif node[1] is not None:
            problem(f"trash item {t.id} ({t.name!r}): its node {t.node_id} is still in the tree")
        elif node[3] != t.size:
            problem(f"trash item {t.id} ({t.name!r}) says {t.size} bytes but its node holds {node[3]}")
    for sid, (_root, trash_bytes, versions_bytes) in spaces.items():
        if trash_bytes != held.get(sid, 0):
            problem(f"space {sid} counts {trash_bytes} bytes of trash, its items hold {held.get(sid, 0)}")
        if versions_bytes != old_bytes.get(sid, 0):
            problem(f"space {sid} counts {versions_bytes} bytes of old versions, they hold {old_bytes.get(sid, 0)}")
