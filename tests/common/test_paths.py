# SPDX-License-Identifier: EUPL-1.2
"""Hostile names, NFC normalisation and URL path decoding."""

from __future__ import annotations

import unicodedata

import pytest

from cartable.common.paths import (
    MAX_NAME_BYTES,
    InvalidPath,
    NamePolicy,
    check_new_name,
    decode_url_path,
    join_path,
    normalize_name,
    split_path,
)

HOSTILE_NAMES: list[tuple[str, str]] = [
    ("", "empty"),
    (".", "dot"),
    ("..", "dot"),
    ("a/b", "slash"),
    ("/", "slash"),
    ("a\x00b", "nul"),
    ("\x00", "nul"),
    ("tab\there", "control"),
    ("line\nbreak", "control"),
    ("cr\r", "control"),
    ("esc\x1b[31m", "control"),
    ("del\x7f", "control"),
    ("\x1f", "control"),
    ("lone\udc80surrogate", "encoding"),
    ("\ud800", "encoding"),
    ("x" * (MAX_NAME_BYTES + 1), "too_long"),
    ("é" * 128, "too_long"),  # 128 chars, 256 bytes
    ("€" * 86, "too_long"),  # 86 chars, 258 bytes
    ("😀" * 64, "too_long"),  # 64 chars, 256 bytes
    ("e\u0301" * 128, "too_long"),  # NFD is 384 bytes, NFC still 256 bytes
]

ACCEPTED_NAMES: list[str] = [
    "a",
    "...",
    ".hidden",
    "..x",
    "trailing space ",
    "trailing dot.",
    " leading space",
    "CON",
    "nul",
    "aux.txt",
    "Readme.MD",
    "back\\slash",
    "colon:star*question?",
    "<>|\"'",
    "x" * MAX_NAME_BYTES,
    "é" * 127,  # 254 bytes
    "😀" * 63 + "abc",  # 255 bytes
    "\u200b",  # zero-width space: odd but not refused
    "\u0085next-line",  # C1 controls are not refused; only C0 and DEL
]


@pytest.mark.parametrize(("name", "reason"), HOSTILE_NAMES)
def test_hostile_names_are_refused(name: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as info:
        normalize_name(name)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)
    assert str(info.value)  # a message for a person


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_accepted_names_round_trip(name: str) -> None:
    assert normalize_name(name) == unicodedata.normalize("NFC", name)


def test_nfd_is_normalised_to_nfc() -> None:
    nfd = "Re\u0301sume\u0301.txt"
    out = normalize_name(nfd)
    assert out == "Résumé.txt"
    assert out == unicodedata.normalize("NFC", nfd)
    assert len(out.encode()) < len(nfd.encode())


def test_case_variants_are_distinct_and_allowed() -> None:
    assert normalize_name("File.txt") != normalize_name("file.txt")


def test_limit_counts_bytes_after_nfc() -> None:
    # 255 bytes in NFC, 383 bytes in NFD: accepted because the limit applies after NFC.
    name = "e\u0301" * 127 + "x"
    assert len(unicodedata.normalize("NFC", name).encode()) == 255
    assert normalize_name(name) == "é" * 127 + "x"


def test_too_long_message_names_the_name_and_limit() -> None:
    with pytest.raises(InvalidPath) as info:
        normalize_name("x" * 300)
    message = str(info.value)
    assert "300 bytes" in message and "255 bytes" in message
    assert "xxxx" in message and "…" in message
    assert len(message) < 200


def test_split_path_ignores_empty_segments_and_normalises() -> None:
    assert split_path("") == ()
    assert split_path("/") == ()
    assert split_path("//a///b/") == ("a", "b")
    assert split_path("dir/Cafe\u0301") == ("dir", "Café")
    assert split_path("a/.../b") == ("a", "...", "b")


@pytest.mark.parametrize("path", ["a/./b", "a/../b", "..", "/.", "a/b/..", "a/\x00/b"])
def test_split_path_never_resolves_dots(path: str) -> None:
    with pytest.raises(InvalidPath):
        split_path(path)


def test_join_path() -> None:
    assert join_path(["a", "b c", "é"]) == "a/b c/é"
    assert join_path([]) == ""
    assert join_path(split_path("/x//y/")) == "x/y"


def test_decode_url_path() -> None:
    assert decode_url_path(b"/a%20b/c+d") == "/a b/c+d"
    assert decode_url_path(b"/caf%C3%A9") == "/café"
    assert decode_url_path(b"/%2Fslash") == "//slash"  # decoding does not split
    assert decode_url_path(b"/plain") == "/plain"


@pytest.mark.parametrize("raw", [b"/%FF", b"/%C3", b"/%ED%A0%80", b"/%C0%AF", b"/\xff"])
def test_decode_url_path_refuses_invalid_utf8(raw: bytes) -> None:
    with pytest.raises(InvalidPath) as info:
        decode_url_path(raw)
    assert info.value.reason == "encoding"


# ---------------------------------------------------------------------------------------------
# New names: Nextcloud's filename validator defaults, and its Windows-compatible switch

WINDOWS = NamePolicy().windows_compatible()

# (name, reason under the default policy)
REFUSED_NEW_NAMES: list[tuple[str, str]] = [
    ("..\\..\\win.ini", "forbidden_character"),
    ("back\\slash", "forbidden_character"),
    ("\\", "forbidden_character"),
    ("a\\", "forbidden_character"),
    (".htaccess", "forbidden_name"),
    (".HTAccess", "forbidden_name"),
    ("movie.part", "forbidden_extension"),
    ("MOVIE.PART", "forbidden_extension"),
    ("x.filepart", "forbidden_extension"),
    (".part", "forbidden_extension"),
    (" ", "blank"),
    ("   ", "blank"),
    (" .", "dot"),
    (".. ", "dot"),
    (" .. ", "dot"),
    # normalize_name's own refusals come first
    ("", "empty"),
    ("..", "dot"),
    ("a/b", "slash"),
    ("nul\x00", "nul"),
    ("x" * (MAX_NAME_BYTES + 1), "too_long"),
]

# Accepted by default (Linux and macOS store them), refused once Windows compatibility is on.
WINDOWS_ONLY: list[tuple[str, str]] = [
    ("CON", "forbidden_basename"),
    ("con", "forbidden_basename"),
    ("nul.txt", "forbidden_basename"),
    ("Aux.tar.gz", "forbidden_basename"),
    ("COM1", "forbidden_basename"),
    ("lpt9.doc", "forbidden_basename"),
    ("com¹", "forbidden_basename"),
    ("colon:name", "forbidden_character"),
    ("star*", "forbidden_character"),
    ("what?", "forbidden_character"),
    ("<angle>", "forbidden_character"),
    ('dq"', "forbidden_character"),
    ("pi|pe", "forbidden_character"),
    ("trailing dot.", "forbidden_extension"),
    ("trailing space ", "forbidden_extension"),
    ("...", "forbidden_extension"),
]

ACCEPTED_NEW_NAMES: list[str] = [
    "report.pdf",
    ".hidden",
    "..x",
    " leading space",
    "htaccess",
    ".htaccess.txt",  # a forbidden NAME, not a forbidden prefix
    "part",
    "movie.part.mkv",
    "console.log",  # "console" is not "con"
    "com10",
    "COM",
    ".con",  # a leading dot belongs to the basename
    "x" * MAX_NAME_BYTES,
]


@pytest.mark.parametrize(("name", "reason"), REFUSED_NEW_NAMES)
def test_new_names_refused_by_default(name: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as info:
        check_new_name(name)
    assert info.value.reason == reason
    assert str(info.value)
    with pytest.raises(InvalidPath):
        check_new_name(name, WINDOWS)


@pytest.mark.parametrize(("name", "reason"), WINDOWS_ONLY)
def test_windows_compatible_names(name: str, reason: str) -> None:
    assert check_new_name(name) == name
    with pytest.raises(InvalidPath) as info:
        check_new_name(name, WINDOWS)
    assert info.value.reason == reason


@pytest.mark.parametrize("name", ACCEPTED_NEW_NAMES)
def test_new_names_accepted(name: str) -> None:
    assert check_new_name(name) == name
    assert check_new_name(name, WINDOWS) == name


def test_new_names_are_nfc() -> None:
    assert check_new_name("Cafe\u0301.txt") == "Café.txt"


def test_existing_names_still_parse() -> None:
    # Reading, deleting or overwriting a name stored before a stricter policy goes through
    # normalize_name only, which keeps accepting it.
    for name in ("..\\..\\win.ini", ".htaccess", "x.part", "CON", "trailing dot."):
        assert split_path("a/" + name) == ("a", name)


def test_backslash_cannot_be_allowed() -> None:
    policy = NamePolicy(forbidden_names=frozenset(), forbidden_characters="", forbidden_extensions=())
    assert "\\" in policy.characters and "/" in policy.characters
    with pytest.raises(InvalidPath):
        check_new_name("a\\b", policy)
    assert check_new_name(".htaccess", policy) == ".htaccess"
    assert check_new_name("x.part", policy) == "x.part"


def test_policy_lists_ignore_case_and_extend() -> None:
    policy = NamePolicy(forbidden_names=frozenset({"Desktop.INI"}), forbidden_basenames=frozenset({"Thumbs"}),
                        forbidden_characters="#", forbidden_extensions=(".TMP",))
    for name in ("desktop.ini", "thumbs.db", "a#b", "x.tmp"):
        with pytest.raises(InvalidPath):
            check_new_name(name, policy)
    assert policy.characters == "\\/#"
    win = policy.windows_compatible()
    assert "con" in win.forbidden_basenames and "Thumbs" in win.forbidden_basenames
    assert win.characters == "\\/#" + '<>:"|?*'
    assert win.forbidden_extensions == (".TMP", " ", ".")
    assert win.windows_compatible() == win
