# SPDX-License-Identifier: EUPL-1.2
"""The sync API's changes feed (core/changes.py):

- ``GET /api/v1/changes`` (no cursor): ``{"cursor": ..., "changes": [], "more": false}``, a cursor
  at the journal's present; a new client takes it, lists its tree, then reads from it.
- ``GET /api/v1/changes?cursor=C[&limit=N]``: the entries of the caller's tree after C, oldest
  first, parents before children, at most N (1 to 1000), and the cursor to ask with next;
  ``more`` says that more wait (ask again at once).
- ``GET /api/v1/changes/wait?cursor=C[&timeout=S]``: the same, but when nothing is new it waits
  until the caller's tree changes on any node, or S seconds pass (default 30, at most 120), then
  answers (``changes`` empty on a timeout).
- A cursor that cannot be continued: ``410`` with code ``gone``: list the tree again and compare;
  never read it as "everything was deleted".

Each entry: ``{"id", "parent", "name", "kind": "file"|"folder", "op": "create"|"modify"|"move"|
"delete"|"props", "version", "size", "mtime", "device", "operation", "at"}``: ``device`` and
``operation`` are the X-Cartable-Device and X-Cartable-Operation the client sent with the write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from cartable.api.watch import ChangeWatcher
from cartable.core import changes
from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.core.model import Principal

__all__ = ["ChangesApi"]

T = TypeVar("T")
DEFAULT_WAIT = 30.0
MAX_WAIT = 120.0
_KINDS = {"f": "file", "d": "folder"}


def _entry(c: changes.Change) -> dict[str, Any]:
    return {"id": c.node_id, "parent": c.parent_id, "name": c.name, "kind": _KINDS.get(c.kind, c.kind),
            "op": c.op, "version": c.version_id, "size": c.size, "mtime": c.mtime, "device": c.device_id,
            "operation": c.op_id, "at": c.at}


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low:g} and {high:g}")
    return value


class ChangesApi:
    def __init__(self, core: Core, watcher: ChangeWatcher) -> None:
        self.core, self.watcher = core, watcher

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.core.db.inline_reads:
            return fn(*args)
        return await to_thread.run_sync(fn, *args)

    def _answer(self, feed: changes.Feed) -> JSONResponse:
        self.watcher.note_head(feed.head)
        return JSONResponse({"cursor": feed.cursor, "more": feed.more, "changes": [_entry(c) for c in feed.changes]},
                            headers={"Cache-Control": "no-store"})

    async def _read(self, principal: Principal, request: Request) -> changes.Feed | str:
        """The feed after the request's cursor, or a fresh cursor when it has none."""
        limit = int(_number(request, "limit", changes.MAX_LIMIT, 1, changes.MAX_LIMIT))
        cursor = request.query_params.get("cursor")
        if not cursor:
            return await self._call(changes.start, self.core, principal, self.watcher.watermark())
        return await self._call(changes.read, self.core, principal, cursor, limit, self.watcher.watermark())

    async def feed(self, principal: Principal, request: Request) -> JSONResponse:
        got = await self._read(principal, request)
        if isinstance(got, str):
            return JSONResponse({"cursor": got, "more": False, "changes": []}, headers={"Cache-Control": "no-store"})
        return self._answer(got)

    async def wait(self, principal: Principal, request: Request) -> JSONResponse:
        timeout = _number(request, "timeout", DEFAULT_WAIT, 0, MAX_WAIT)
        if not request.query_params.get("cursor"):
            raise InvalidInput("waiting needs a cursor: GET /api/v1/changes first")
        got = await self._read(principal, request)
        assert not isinstance(got, str)
        if got.changes or got.more or timeout == 0:
            return self._answer(got)
        if await self.watcher.wait(principal.space_id, changes.position(got.cursor), timeout):
            got = await self._call(changes.read, self.core, principal, got.cursor, changes.MAX_LIMIT,
                                   self.watcher.watermark())
        return self._answer(got)
