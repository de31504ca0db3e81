# SPDX-License-Identifier: EUPL-1.2
"""Hostile names, NFC normalisation and URL path decoding."""

from __future__ import annotations

import unicodedata

import pytest

from cartable.common.paths import (
    MAX_NAME_BYTES,
    InvalidPath,
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
