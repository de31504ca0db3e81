# SPDX-License-Identifier: EUPL-1.2
"""Pure parsing of conditional and range headers (RFC 7232, 7233)."""

from __future__ import annotations

import re

__all__ = ["etag_list", "parse_range", "quote_etag"]


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def etag_list(header: str | None) -> list[str] | None:
    """'"a", W/"b"' → ['a', 'b']; '*' → ['*']; None when the header is absent."""
    if header is None:
        return None
    header = header.strip()
    if header == "*":
        return ["*"]
    tags = re.findall(r'(?:W/)?"([^"]*)"', header)
    if not tags and header:
        tags = [t.strip() for t in header.split(",") if t.strip()]
    return tags


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """One byte range → (start, end exclusive). None: serve everything (absent, multi-range or
    unparsable, which RFC 7233 allows to ignore). 'unsatisfiable' → 416."""
    if not header or not header.startswith("bytes="):
        return None
    spec = header[6:].strip()
    if "," in spec:
        return None
    m = re.fullmatch(r"(\d*)-(\d*)", spec)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) + 1 if m.group(2) else size
        if m.group(2) and int(m.group(2)) < start:
            return None
        if start >= size:
            return "unsatisfiable"
        return start, min(end, size)
    suffix = int(m.group(2))
    if suffix == 0:
        return "unsatisfiable"
    return max(size - suffix, 0), size
