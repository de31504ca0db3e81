# SPDX-License-Identifier: EUPL-1.2
"""Long-poll waiting for changes: one watcher per process wakes every request waiting on a space
when that space's journal moves, whichever node or worker wrote it.

It reads the journal, not a notification channel: every ``TICK`` seconds, while someone waits,
ONE query asks for the last entry of each space that has entries after the last head seen (a
primary-key range, empty when nothing happened), so a node costs one small query per tick however
many clients wait, and a write on another node wakes them within a tick. No LISTEN/NOTIFY on
PostgreSQL (DESIGN.md: it serialises commits and holds a connection per listener); on SQLite the
workers of `cartable serve` share the file the same way.

On PostgreSQL an entry can commit after an entry with a higher number (two spaces written at once),
so each tick looks back ``LATE_WINDOW`` positions below the head it saw; a waiter is woken only
when its own space moved past its cursor, so looking again costs nothing but the range.

The watcher also keeps the journal heads that reads saw, with when (``note_head``), and answers
the **watermark** core/changes.py needs on PostgreSQL: the newest head seen at least
``changes.LAG`` seconds ago, below which no entry can still appear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread

from cartable.core import changes
from cartable.core.context import Core

__all__ = ["ChangeWatcher"]

log = logging.getLogger("cartable.api")
T = TypeVar("T")


class ChangeWatcher:
    TICK = 0.25
    LATE_WINDOW = 1000

    def __init__(self, core: Core, *, tick: float | None = None) -> None:
        self.core = core
        self.tick = self.TICK if tick is None else tick
        self.waiters: dict[int, dict[asyncio.Event, int]] = {}
        self.task: asyncio.Task[None] | None = None
        self.samples: deque[tuple[float, int]] = deque(maxlen=4096)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self.waiters.values())

    def note_head(self, head: int) -> None:
        now = time.monotonic()
        if not self.samples or now - self.samples[-1][0] >= 1.0:
            self.samples.append((now, head))

    def watermark(self) -> int:
        cut = time.monotonic() - changes.LAG
        mark = 0
        while self.samples and self.samples[0][0] <= cut:
            mark = max(mark, self.samples.popleft()[1])
        if mark:  # keep it: it stays the watermark until a newer sample is old enough
            self.samples.appendleft((cut, mark))
        return mark

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self.core.db.inline_reads:
            return fn(*args)
        return await to_thread.run_sync(fn, *args)

    async def wait(self, space_id: int, seq: int, timeout: float) -> bool:
        """Wait until the space has an entry after ``seq`` (True) or ``timeout`` seconds pass (False)."""
        event = asyncio.Event()
        self.waiters.setdefault(space_id, {})[event] = seq
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            mine = self.waiters.get(space_id)
            if mine is not None:
                mine.pop(event, None)
                if not mine:
                    del self.waiters[space_id]

    async def _run(self) -> None:
        try:
            last = await self._call(changes.head, self.core)
            while self.waiters:
                window = 0 if self.core.db.is_sqlite else self.LATE_WINDOW
                try:
                    heads = await self._call(changes.heads_after, self.core, max(0, last - window))
                except Exception:  # a database hiccup: waiters time out and their clients ask again
                    log.warning("change watcher: cannot read the journal; trying again", exc_info=True)
                    heads = {}
                for space_id, top in heads.items():
                    last = max(last, top)
                    for event, seq in list(self.waiters.get(space_id, {}).items()):
                        if top > seq:
                            event.set()
                await asyncio.sleep(self.tick)
        finally:
            self.task = None
