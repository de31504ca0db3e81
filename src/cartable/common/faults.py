# SPDX-License-Identifier: EUPL-1.2
"""Fault points: named places in the write path and the GC where tests inject a crash or run the
other party of a race.

Production code calls ``hit("gc.reap.after_delete_bytes")`` at each step of a multi-step
protocol. Unarmed (always, outside tests), ``hit`` is one dictionary test: nothing happens.
A test arms a point with an action (``arm(name, crash)`` or any callable); the next hits call it.
``crash`` raises ``SimulatedCrash``, a ``BaseException`` so that no ``except Exception`` in the
code under test swallows it: the test then drops the Core and opens a fresh one on the same data
folder, as a restarted process would.

Every point is declared in ``POINTS`` (``arm`` refuses an unknown name, and a test checks that each
declared name is used in the source and reached by the fault tests). Actions run in the thread
that hits the point; they must not take the metadata write lock when the point sits inside a
write transaction (names ending in ``before_commit``, ``after_select``, ``after_delete_bytes``).

Crash tests of a real server process use ``arm_pause`` (the ``fault_pause`` setting): at the
chosen hit of a point the process writes a marker file and stops there, so the test kills it with
SIGKILL exactly at that step instead of after a guessed delay.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cartable.common import fsutil

__all__ = ["POINTS", "SimulatedCrash", "arm", "arm_pause", "armed", "crash", "disarm", "disarm_all", "hit",
           "parse_pause"]

POINTS: tuple[str, ...] = (
    # core/writes.py: ContentWriter and commit_version
    "writes.after_claim",            # a batch's chunks are claimed (committed), bytes not yet written
    "writes.after_put",              # a batch's bytes are durable, nothing references them yet
    "writes.commit.before_commit",   # the version's transaction did everything but commit
    "writes.commit.after_commit",    # the version is committed; the caller has not answered yet
    # core/trash.py and core/versions.py: each step's transaction did everything but commit
    "trash.delete.before_commit",    # the item is detached and its trash row written
    "trash.restore.before_commit",   # the item is back in the tree, its trash row gone
    "trash.purge.before_commit",     # the item's rows are deleted, its chunk references released
    "versions.restore.before_commit",  # the old version is current, the current one kept
    # store/blobs/local.py: put_many, batch mode (one syncfs for data, one for names)
    "blobs.put.batch.after_temps",   # temporary files written, not synced
    "blobs.put.batch.after_data_sync",
    "blobs.put.batch.after_rename",  # after each no-replace rename
    "blobs.put.batch.after_name_sync",
    # store/blobs/local.py: put_many, one file at a time
    "blobs.put.file.after_temp",     # temporary file written and fdatasync'ed
    "blobs.put.file.after_rename",
    "blobs.put.file.after_dir_sync",
    # core/gc.py: mark
    "gc.mark.before_commit",
    "gc.mark.after_commit",
    # core/gc.py: reap of dying rows
    "gc.reap.after_select",
    "gc.reap.after_delete_bytes",
    "gc.reap.before_commit",
    "gc.reap.after_commit",
    # core/gc.py: sweep of orphan bytes (insert dying rows, then reap them)
    "gc.sweep.before_commit",
    "gc.sweep.after_commit",
    "gc.sweep.reap.after_select",
    "gc.sweep.reap.after_delete_bytes",
    "gc.sweep.reap.before_commit",
    "gc.sweep.reap.after_commit",
)

_KNOWN = frozenset(POINTS)
_armed: dict[str, Callable[[], None]] = {}
_lock = threading.Lock()


class SimulatedCrash(BaseException):
    """Raised by ``crash``: the process 'died' at a fault point."""


def hit(name: str) -> None:
    """Run the action armed at ``name``, if any (a no-op unless a test armed it)."""
    if _armed:
        action = _armed.get(name)
        if action is not None:
            action()


def crash() -> None:
    raise SimulatedCrash("simulated crash")


def arm(name: str, action: Callable[[], None] = crash, *, times: int | None = None) -> None:
    """Run ``action`` at the next hits of ``name`` (all of them, or the next ``times``)."""
    if name not in _KNOWN:
        raise ValueError(f"unknown fault point {name!r}; declare it in cartable.common.faults.POINTS")
    if times is None:
        _armed[name] = action
        return
    left = [times]

    def counted() -> None:
        with _lock:
            if left[0] <= 0:
                return
            left[0] -= 1
            if left[0] == 0:
                _armed.pop(name, None)
        action()

    _armed[name] = counted


def disarm(name: str) -> None:
    _armed.pop(name, None)


def disarm_all() -> None:
    _armed.clear()


@contextmanager
def armed(name: str, action: Callable[[], None] = crash, *, times: int | None = None) -> Iterator[None]:
    arm(name, action, times=times)
    try:
        yield
    finally:
        disarm(name)


_PAUSE = re.compile(r"(?P<point>[a-z_.]+)(?:@(?P<nth>[1-9][0-9]*))?:(?P<marker>/.+)")


def parse_pause(spec: str) -> tuple[str, int, Path]:
    """'POINT[@N]:/absolute/marker' -> (point, N (default 1), marker); ValueError if malformed."""
    m = _PAUSE.fullmatch(spec)
    if m is None or m["point"] not in _KNOWN:
        raise ValueError(f"{spec!r} is not POINT[@N]:/absolute/path with POINT one of common/faults.py POINTS")
    return m["point"], int(m["nth"] or 1), Path(m["marker"])


def arm_pause(spec: str) -> None:
    """At the N-th hit of the point (see parse_pause), write the marker file (its text: the point's
    name) and block that thread for ever: the process is frozen at that step until it is killed.
    The hits are counted in the file MARKER.hits, shared by the worker processes of one server
    (whichever worker serves the N-th hit pauses); the test removes it with the marker."""
    point, nth, marker = parse_pause(spec)

    def pause() -> None:
        fsutil.atomic_write(marker, point.encode(), durable=False)
        threading.Event().wait()

    arm(point, pause if nth == 1 else _at_hit(nth, pause, marker.with_name(marker.name + ".hits")))


def _at_hit(nth: int, action: Callable[[], None], counter: Path) -> Callable[[], None]:
    def counted() -> None:
        with _lock:
            due = _count_hit(counter) == nth
        if due:
            action()

    return counted


def _count_hit(counter: Path) -> int:
    """Add one to the number in ``counter`` under an flock (processes share it); the new number."""
    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        seen = int(os.read(fd, 32) or b"0") + 1
        os.pwrite(fd, str(seen).encode(), 0)
        return seen
    finally:
        os.close(fd)
