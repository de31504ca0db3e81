# SPDX-License-Identifier: EUPL-1.2
"""Validation and normalisation of path names: the one place hostile names are handled.

Contract:
- ``normalize_name`` returns the NFC form of one name component, or raises ``InvalidPath``.
  Accepted: any Unicode text that encodes to UTF-8 in at most ``MAX_NAME_BYTES`` bytes (after NFC),
  with no "/", no C0 control character (U+0000..U+001F) and no DEL (U+007F), other than "." and "..".
  Linux semantics: names differing only by case, and trailing spaces or dots, are allowed.
- ``split_path`` splits a "/"-separated path into validated components; empty segments (leading,
  trailing or doubled slashes) are ignored; "." and ".." are refused, never resolved.
- ``join_path`` is the inverse of ``split_path`` for validated components (no leading slash).
- ``decode_url_path`` percent-decodes a raw URL path and decodes it as strict UTF-8; it does not split.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

__all__ = [
    "MAX_NAME_BYTES",
    "InvalidPath",
    "decode_url_path",
    "join_path",
    "normalize_name",
    "split_path",
]

MAX_NAME_BYTES = 255

# Shown names are cut so that an error message about a 100 KiB name stays readable.
_SHOWN_CHARS = 40


class InvalidPath(ValueError):
    """A path or name component that cartable refuses.

    ``reason`` is a short stable code: "empty", "dot", "nul", "slash", "too_long", "control" or
    "encoding". ``str(exc)`` is a message for a person, naming the offending name.
    """

    def __init__(self, message: str, *, reason: str, name: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.name = name


def _show(name: str) -> str:
    """Quote a name for a message: escaped (repr), and shortened with an ellipsis when long."""
    if len(name) > _SHOWN_CHARS:
        return repr(name[:_SHOWN_CHARS] + "…")
    return repr(name)


def normalize_name(name: str) -> str:
    """Return the NFC form of one name component; raise InvalidPath if it is not acceptable."""
    if not name:
        raise InvalidPath("name is empty", reason="empty", name=name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath(
            f"name {_show(name)} is not valid Unicode text (lone surrogate)", reason="encoding", name=name
        ) from None
    nfc = unicodedata.normalize("NFC", name)
    if nfc in (".", ".."):
        raise InvalidPath(f"name {_show(nfc)} is not allowed", reason="dot", name=name)
    if "/" in nfc:
        raise InvalidPath(f"name {_show(nfc)} contains '/'", reason="slash", name=name)
    if "\x00" in nfc:
        raise InvalidPath(f"name {_show(nfc)} contains a NUL character", reason="nul", name=name)
    for ch in nfc:
        # U+FFFE and U+FFFF are not characters XML 1.0 can carry: every PROPFIND listing the
        # name would be malformed, so they are refused like control characters.
        if ch < "\x20" or ch == "\x7f" or ch in "\ufffe\uffff":
            raise InvalidPath(
                f"name {_show(nfc)} contains the control character U+{ord(ch):04X}",
                reason="control",
                name=name,
            )
    size = len(nfc.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidPath(
            f"name {_show(nfc)} is {size} bytes long; the limit is {MAX_NAME_BYTES} bytes",
            reason="too_long",
            name=name,
        )
    return nfc


def split_path(path: str) -> tuple[str, ...]:
    """Split ``path`` on "/" into NFC components, ignoring empty segments; "." and ".." raise."""
    return tuple(normalize_name(part) for part in path.split("/") if part)


def join_path(parts: Iterable[str]) -> str:
    """Join validated components with "/" (no leading or trailing slash)."""
    return "/".join(parts)


def decode_url_path(raw: bytes) -> str:
    """Percent-decode a raw URL path ("+" stays "+") and decode it as strict UTF-8."""
    data = unquote_to_bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = repr(raw[:_SHOWN_CHARS]) + ("…" if len(raw) > _SHOWN_CHARS else "")
        raise InvalidPath(
            f"path {shown} is not valid UTF-8 after percent-decoding (byte {exc.start})",
            reason="encoding",
        ) from None
