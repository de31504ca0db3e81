# SPDX-License-Identifier: EUPL-1.2
"""Worker processes of `cartable serve`: the listening socket is opened once, then ``count``
forked workers accept connections on it, each with its own core (database connections, chunk
store) and its own event loop, so that every core of the machine serves requests (one Python
process uses one core). They share all state through the database and the chunk store, exactly
as the nodes of a fleet do (docs/deployment.md).

The parent only supervises:
- SIGTERM or SIGINT: it passes SIGTERM on, each worker finishes its requests in flight and
  exits; a second signal kills them.
- A worker that dies is started again (its requests in flight are lost, as on a crash: nothing
  acknowledged is). A worker that keeps dying within seconds of its start stops the server with
  an error instead of looping.
- Workers die with the parent (PR_SET_PDEATHSIG): `kill -9` of the server's pid stops them all,
  as it stops a one-process server, and never leaves orphans answering on the port.

A forked child inherits the parent's memory but only the thread that called fork: a library
whose threads were running in the parent is broken in the child. obstore's runtime (the S3
client: Rust, tokio) is the case here: a worker forked from a parent that had made one S3 request
hung on its first own. So the parent never makes one. It opens the S3 store without its start-up
check, runs that check in a short-lived child (``check_apart``), and each worker opens its own
store and database engine after the fork; obstore starts its threads on the first request, not on
import or when a store is built. A worker costs the same on every backend: one fork of a parent
that has imported everything (measured against a fresh interpreter per worker in
docs/performance.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["check_apart", "default_count", "supervise"]

log = logging.getLogger("cartable")

_PR_SET_PDEATHSIG = 1
QUICK_DEATH = 5.0  # seconds: a worker that dies sooner than this after its start "died at start"
MAX_QUICK_DEATHS = 5  # in a row: then the server stops instead of restarting it forever
RESTART_PAUSE = 1.0  # seconds before restarting a worker that died at start, times the deaths in a row


def default_count() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


@dataclass
class _Fleet:
    serve_one: Callable[[int], None]
    by_pid: dict[int, tuple[int, float]] = field(default_factory=dict)  # pid → (index, started at)
    stopping: int = 0  # signals received
    quick_deaths: int = 0

    def start(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _die_with(parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                self.serve_one(index)
                code = 0
            except BaseException:  # noqa: BLE001 (a worker never returns into the parent's code)
                log.exception("worker %d stopped on an error", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.by_pid[pid] = (index, time.monotonic())

    def signal_all(self, signum: int) -> None:
        for pid in list(self.by_pid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def supervise(count: int, serve_one: Callable[[int], None]) -> int:
    """Fork ``count`` workers running ``serve_one(index)`` (index 0..count-1) and keep them
    running until SIGTERM or SIGINT. Returns the exit status for the command: 0 after an orderly
    stop, 1 when workers kept dying at start."""
    fleet = _Fleet(serve_one)

    def on_signal(signum: int, _frame: object) -> None:
        fleet.stopping += 1
        fleet.signal_all(signal.SIGTERM if fleet.stopping == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for index in range(count):
            fleet.start(index)
        while fleet.by_pid:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            index, started = fleet.by_pid.pop(pid, (None, 0.0))
            if index is None or fleet.stopping:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            quick = time.monotonic() - started < QUICK_DEATH
            fleet.quick_deaths = fleet.quick_deaths + 1 if quick else 0
            if fleet.quick_deaths >= MAX_QUICK_DEATHS:
                log.error("worker %d %s %d times in a row right after starting: stopping the server (see the "
                          "errors above)", index, how, fleet.quick_deaths)
                status = 1
                fleet.stopping += 1
                fleet.signal_all(signal.SIGTERM)
                continue
            log.warning("worker %d (pid %d) %s; starting it again", index, pid, how)
            if quick:
                time.sleep(min(RESTART_PAUSE * fleet.quick_deaths, 5.0))
            fleet.start(index)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return status


def check_apart(check: Callable[[], object]) -> str | None:
    """Run ``check`` in a short-lived forked child, so that whatever it starts (threads, a
    runtime) never exists in this process. Returns the text of the exception it raised, or None
    when it passed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the checker: reports through the pipe, never returns into the caller's code
        code = 0
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                try:
                    check()
                except BaseException as exc:  # noqa: BLE001 (reported to the parent, which decides)
                    pipe.write((str(exc) or repr(exc)).encode("utf-8", "replace")[:4000])
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if report:
        return report
    if status != 0:
        return f"the check's process ended with status {os.waitstatus_to_exitcode(status)}"
    return None


def _die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when the parent dies; exit at once if it already has."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover (not glibc)
        pass
    if os.getppid() != parent:
        os._exit(1)
