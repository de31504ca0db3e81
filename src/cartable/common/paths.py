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
- ``check_new_name`` is the stricter rule for a name about to be CREATED (PUT of a new file, MKCOL,
  MOVE and COPY destinations, chunked-upload targets, LOCK on an unmapped URL): on top of
  ``normalize_name`` it applies a ``NamePolicy``, by default Nextcloud's filename validator
  defaults (never a backslash, no ``.htaccess``, no ``.part``/``.filepart`` ending, not blank, not "."
  or ".." once trimmed). ``NamePolicy.windows_compatible()`` adds what Windows cannot store.
  Names that already exist are never re-checked: they stay readable, writable and deletable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

__all__ = [
    "MAX_NAME_BYTES",
    "ALWAYS_FORBIDDEN_CHARACTERS",
    "DEFAULT_POLICY",
    "InvalidPath",
    "NamePolicy",
    "WINDOWS_BASENAMES",
    "WINDOWS_CHARACTERS",
    "WINDOWS_EXTENSIONS",
    "check_new_name",
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
    "encoding"; for a new name refused by a ``NamePolicy`` also "blank", "forbidden_name",
    "forbidden_basename", "forbidden_character" or "forbidden_extension". ``str(exc)`` is a
    message for a person, naming the offending name.
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


# Always refused in a new name: "/" separates names, and a backslash separates them on Windows
# (a name "..\\..\\win.ini" escapes its folder there, and no Windows client can store it).
ALWAYS_FORBIDDEN_CHARACTERS = "\\/"

# What Windows cannot store (Nextcloud's "Windows compatible filenames" switch adds the same).
WINDOWS_BASENAMES: frozenset[str] = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{dev}{n}" for dev in ("com", "lpt") for n in "0123456789¹²³"])
WINDOWS_CHARACTERS = '<>:"|?*'
WINDOWS_EXTENSIONS: tuple[str, ...] = (" ", ".")


@dataclass(frozen=True)
class NamePolicy:
    """Which names may be given to something new. The defaults are Nextcloud's (its
    FilenameValidator with an empty configuration); every list is compared without regard to case.

    - forbidden_names: whole names refused (".htaccess").
    - forbidden_basenames: refused as the part before the first dot, a leading dot excepted
      ("con" refuses "CON" and "con.txt"; empty by default).
    - forbidden_characters: refused anywhere in a name, on top of ALWAYS_FORBIDDEN_CHARACTERS
      (the backslash and "/"; control characters are refused by ``normalize_name``).
    - forbidden_extensions: refused endings (".part", ".filepart"; " " and "." refuse trailing
      spaces and dots).
    """

    forbidden_names: frozenset[str] = frozenset({".htaccess"})
    forbidden_basenames: frozenset[str] = frozenset()
    forbidden_characters: str = ""
    forbidden_extensions: tuple[str, ...] = (".part", ".filepart")
    _lowered: tuple[frozenset[str], frozenset[str], tuple[str, ...]] = field(init=False, repr=False,
                                                                                compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lowered", (
            frozenset(n.lower() for n in self.forbidden_names),
            frozenset(n.lower() for n in self.forbidden_basenames),
            tuple(e.lower() for e in self.forbidden_extensions)))

    @property
    def characters(self) -> str:
        """Every character refused in a new name (besides control characters), each once."""
        return "".join(dict.fromkeys(ALWAYS_FORBIDDEN_CHARACTERS + self.forbidden_characters))

    def windows_compatible(self) -> NamePolicy:
        """This policy plus what Windows cannot store: reserved device names (CON, PRN, AUX, NUL,
        COM0-9, LPT0-9), the characters <>:"|?* and trailing spaces or dots."""
        return NamePolicy(
            forbidden_names=self.forbidden_names,
            forbidden_basenames=self.forbidden_basenames | WINDOWS_BASENAMES,
            forbidden_characters="".join(dict.fromkeys(self.forbidden_characters + WINDOWS_CHARACTERS)),
            forbidden_extensions=tuple(dict.fromkeys(self.forbidden_extensions + WINDOWS_EXTENSIONS)))


DEFAULT_POLICY = NamePolicy()


def check_new_name(name: str, policy: NamePolicy = DEFAULT_POLICY) -> str:
    """The NFC form of a name about to be created; InvalidPath when ``normalize_name`` or the
    policy refuses it. The message names the rule, so that a person can rename the file."""
    nfc = normalize_name(name)
    trimmed = nfc.strip(" ")
    if not trimmed:
        raise InvalidPath(f"name {_show(nfc)} is only spaces", reason="blank", name=name)
    if trimmed in (".", ".."):
        raise InvalidPath(f"name {_show(nfc)} is not allowed", reason="dot", name=name)
    names, basenames, extensions = policy._lowered
    lower = nfc.lower()
    if lower in names:
        raise InvalidPath(f"{_show(nfc)} is a reserved name", reason="forbidden_name", name=name)
    dot = lower.find(".", 1)
    base = lower[:dot] if dot > 0 else lower
    if base in basenames:
        raise InvalidPath(f"{_show(nfc)} starts with the reserved name {base!r}", reason="forbidden_basename",
                          name=name)
    for ch in policy.characters:
        if ch in nfc:
            raise InvalidPath(f"name {_show(nfc)} contains {ch!r}, which is not allowed in a name",
                              reason="forbidden_character", name=name)
    for ext in extensions:
        if lower.endswith(ext):
            what = {" ": "a space", ".": "a dot"}.get(ext, repr(ext))
            raise InvalidPath(f"name {_show(nfc)} ends with {what}, which is not allowed",
                              reason="forbidden_extension", name=name)
    return nfc
