# SPDX-License-Identifier: EUPL-1.2
"""HTTP-style preconditions on a write's target, evaluated inside the write's own transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cartable.core.errors import PreconditionFailed
from cartable.core.model import Node

__all__ = ["Preconditions"]


class Preconditions:
    """HTTP-style preconditions on the target, checked again inside the commit transaction."""

    def __init__(self, if_match: Sequence[str] | None = None, if_none_match: Sequence[str] | None = None,
                 state: Callable[[Node | None], bool] | None = None) -> None:
        """state: an extra condition on the target (e.g. a WebDAV If header's etag lists),
        evaluated with the target as the transaction sees it; False → PreconditionFailed."""
        self.if_match = if_match
        self.if_none_match = if_none_match
        self.state = state

    def check(self, existing: Node | None, path: str) -> None:
        if self.state is not None and not self.state(existing):
            raise PreconditionFailed(f"{path}: no list of the If header matched its current state")
        if self.if_match is not None:
            if existing is None or ("*" not in self.if_match and existing.etag not in self.if_match):
                raise PreconditionFailed(f"{path} has changed or does not exist (If-Match failed)")
        if self.if_none_match is not None and existing is not None:
            if "*" in self.if_none_match or existing.etag in self.if_none_match:
                raise PreconditionFailed(f"{path} already exists (If-None-Match failed)")
