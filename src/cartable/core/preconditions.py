# SPDX-License-Identifier: EUPL-1.2
"""HTTP-style preconditions on a write, evaluated inside the write's own transaction.

Every mutation resolves its nodes under the space lock, then calls ``Preconditions.check`` before
it changes anything: If-Match / If-None-Match on its target, and the WebDAV If header as a
predicate the adapter built from the parsed header (dav/ifheader.py). The predicate asks a
``Resolve`` bound to the same open transaction about every resource the header names (the target
or, for tagged lists, any path of the caller's tree), so the whole header is judged on one
snapshot and no concurrent write can slip between the check and the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cartable.core import tree
from cartable.core.errors import NotFound, PreconditionFailed
from cartable.core.model import Node
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.engine import Tx

__all__ = ["Preconditions", "Resolve", "IfPredicate"]

# parts of the caller's tree → (the node there or None, tokens of the locks that apply to it)
Resolve = Callable[[Sequence[str]], tuple[Node | None, frozenset[str]]]
# True when at least one list of an If header holds
IfPredicate = Callable[[Resolve], bool]


class _Resolver:
    """Resolves paths of one space inside one open transaction, each path once."""

    def __init__(self, tx: Tx, root_id: int, now: float) -> None:
        self.tx, self.root_id, self.now = tx, root_id, now
        self._seen: dict[tuple[str, ...], tuple[Node | None, frozenset[str]]] = {}

    def __call__(self, parts: Sequence[str]) -> tuple[Node | None, frozenset[str]]:
        key = tuple(parts)
        if key not in self._seen:
            self._seen[key] = self._resolve(key)
        return self._seen[key]

    def _resolve(self, parts: tuple[str, ...]) -> tuple[Node | None, frozenset[str]]:
        try:
            node = tree.resolve(self.tx, self.root_id, parts)
        except NotFound:
            node = None
        # A missing resource is governed by the locks of its folder (creating it needs them).
        holder = node
        if holder is None and parts:
            try:
                holder = tree.resolve(self.tx, self.root_id, parts[:-1])
            except NotFound:
                holder = None
        if holder is None:
            return node, frozenset()
        found = tree.covering_locks(self.tx, holder.id, nodes_repo.ancestor_ids(self.tx, holder.id), self.now)
        return node, frozenset(lk.token for lk in found)


class Preconditions:
    """What must hold of the target for a write to go ahead; checked inside its transaction."""

    def __init__(self, if_match: Sequence[str] | None = None, if_none_match: Sequence[str] | None = None,
                 if_header: IfPredicate | None = None) -> None:
        """if_match / if_none_match: etags (unquoted) or ["*"], None when the header is absent.
        if_header: the WebDAV If header as a predicate (None when absent)."""
        self.if_match = if_match
        self.if_none_match = if_none_match
        self.if_header = if_header

    def check(self, tx: Tx, root_id: int, existing: Node | None, path: str, now: float) -> None:
        """PreconditionFailed unless every precondition holds; ``existing`` is the target as this
        transaction sees it (None: it does not exist), ``path`` names it in messages; paths in the
        If header resolve from ``root_id`` (the principal's root)."""
        if self.if_header is not None and not self.if_header(_Resolver(tx, root_id, now)):
            raise PreconditionFailed(f"{path}: no list of the If header matched the current state")
        if self.if_match is not None:
            if existing is None or ("*" not in self.if_match and existing.etag not in self.if_match):
                raise PreconditionFailed(f"{path} has changed or does not exist (If-Match failed)")
        if self.if_none_match is not None and existing is not None:
            if "*" in self.if_none_match or existing.etag in self.if_none_match:
                raise PreconditionFailed(f"{path} already exists (If-None-Match failed)")

