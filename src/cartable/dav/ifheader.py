# SPDX-License-Identifier: EUPL-1.2
"""The WebDAV If header (RFC 4918 §10.4): parsing, and the predicate core evaluates inside the
write's transaction (core/preconditions.py). Pure: no I/O here."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from cartable.core.errors import InvalidInput
from cartable.core.preconditions import IfPredicate, Resolve

__all__ = ["Condition", "IfList", "IfHeader", "parse_if", "list_holds", "predicate"]

_TOKEN = re.compile(r'\s*(?:(<[^>]*>)|(\()|(\))|(\[[^\]]*\])|(Not)\b)', re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    negate: bool
    token: str | None = None  # lock token (state token), without < >
    etag: str | None = None  # entity tag, without quotes or W/


@dataclass(frozen=True)
class IfList:
    resource: str | None  # tagged resource URL/path, None for the request URI
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class IfHeader:
    lists: tuple[IfList, ...] = ()
    tokens: frozenset[str] = field(default_factory=frozenset)

    @property
    def present(self) -> bool:
        return bool(self.lists)


def _etag(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    return raw.strip('"')


def parse_if(header: str | None) -> IfHeader:
    """Parse; InvalidInput (→ 400) when the header is malformed."""
    if not header or not header.strip():
        return IfHeader()
    pos, lists, tokens = 0, [], set()
    resource: str | None = None
    text = header.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise InvalidInput(f"malformed If header near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group(1):  # a tagged resource
            resource = m.group(1)[1:-1]
            continue
        if not m.group(2):
            raise InvalidInput("malformed If header: expected '(' to open a list")
        conds: list[Condition] = []
        negate = False
        while True:
            m = _TOKEN.match(text, pos)
            if not m:
                raise InvalidInput("malformed If header: unterminated list")
            pos = m.end()
            if m.group(3):
                break
            if m.group(5):
                negate = True
                continue
            if m.group(1):
                tok = m.group(1)[1:-1]
                conds.append(Condition(negate, token=tok))
                if not negate:
                    tokens.add(tok)
            elif m.group(4):
                conds.append(Condition(negate, etag=_etag(m.group(4)[1:-1])))
            else:
                raise InvalidInput("malformed If header inside a list")
            negate = False
        if not conds:
            raise InvalidInput("malformed If header: empty list")
        lists.append(IfList(resource, tuple(conds)))
    return IfHeader(tuple(lists), frozenset(tokens))


def list_holds(lst: IfList, etag: str | None, tokens: Collection[str]) -> bool:
    """Whether every condition of one list holds for a resource with this etag (None: the
    resource does not exist) and these valid lock tokens."""
    for c in lst.conditions:
        ok = c.token in tokens if c.token is not None else (etag is not None and c.etag == etag)
        if ok == c.negate:
            return False
    return True


def predicate(header: IfHeader, target: Sequence[str] | None,
              parts_of: Callable[[str], tuple[str, ...] | None]) -> IfPredicate | None:
    """The header as a condition core evaluates in its transaction; None when there is no header.

    Untagged lists are about ``target`` (the request's resource; None for a resource no path of
    the tree names, such as an upload's ``.file``, which has neither etag nor lock). Tagged lists
    are about ``parts_of(url)``: None means outside the caller's tree, again no etag and no lock.
    The header holds when any one list holds (RFC 4918 §10.4.3)."""
    if not header.present:
        return None
    lists: list[tuple[IfList, tuple[str, ...] | None]] = []
    for lst in header.lists:
        if lst.resource is None:
            lists.append((lst, tuple(target) if target is not None else None))
        else:
            lists.append((lst, parts_of(lst.resource)))

    def holds(resolve: Resolve) -> bool:
        for lst, parts in lists:
            node, tokens = resolve(parts) if parts is not None else (None, frozenset[str]())
            if list_holds(lst, node.etag if node is not None else None, tokens):
                return True
        return False

    return holds
