# SPDX-License-Identifier: EUPL-1.2
"""Checksums as the Nextcloud clients send them (``OC-Checksum: TYPE:hex``): parsing and hashers."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

from cartable.core.errors import InvalidInput

__all__ = ["new_hasher", "parse_checksum", "ALGORITHMS"]

ALGORITHMS = {"SHA1": "sha1", "MD5": "md5", "SHA256": "sha256", "SHA-256": "sha256", "ADLER32": "adler32"}
_HEX_DIGITS = {"sha1": 40, "md5": 32, "sha256": 64, "adler32": 8}


class _Adler32:
    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def new_hasher(algo: str) -> Any:
    """A hashlib-like object for a Nextcloud checksum type; InvalidInput for unknown types."""
    name = ALGORITHMS.get(algo.upper())
    if name is None:
        raise InvalidInput(f"checksum type {algo!r} is not one of SHA1, MD5, SHA256, ADLER32")
    return _Adler32() if name == "adler32" else hashlib.new(name)


def parse_checksum(header: str | None) -> tuple[str, str] | None:
    """'SHA1:abc…' → ('SHA1', 'abc…'); None when absent; InvalidInput when malformed, including
    a digest of the wrong length for its type (so a stored checksum is always a short one)."""
    if not header:
        return None
    algo, sep, value = header.strip().partition(":")
    algo = algo.upper()
    shown = header if len(header) <= 80 else header[:80] + "…"
    if not sep or algo not in ALGORITHMS or not value or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InvalidInput(f"checksum {shown!r} is not TYPE:hex with TYPE one of SHA1, MD5, SHA256, ADLER32")
    digits = _HEX_DIGITS[ALGORITHMS[algo]]
    if algo == "ADLER32" and len(value) < digits:
        value = value.zfill(digits)  # a 32-bit number; some clients drop its leading zeros
    if len(value) != digits:
        raise InvalidInput(f"checksum {shown!r}: a {algo} checksum has {digits} hex digits, not {len(value)}")
    return algo, value.lower()
