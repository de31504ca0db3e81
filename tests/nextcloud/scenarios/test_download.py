# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/files_features/download.feature, with the steps
of its Download.php: ``GET .../FOLDER?accept=zip&files=[ENTRIES]``, then the archive checked the
way the step does, by its bytes: a central directory, and for each file a local header with its
name followed (after the extra field) by the file's exact bytes, i.e. stored, not compressed.

The four @large scenarios (65,524 files) are covered by test_zip.py's zip64 test (65,536 entries
through the same writer) rather than by creating 65,000 files here."""

from __future__ import annotations

import re
import struct

import pytest

from tests.nextcloud.scenarios.conftest import WELCOME, Nc


def download_zip(nc: Nc, entries: str, folder: str) -> bytes:
    folder = folder.strip("/")
    r = nc.client.get(f"/remote.php/dav/files/user0/{folder}?accept=zip&files=[{entries}]")
    assert r.status_code == 200
    assert b"PK\x01\x02" in r.content  # the downloaded file is a zip file
    return r.content


def contains_file(data: bytes, name: str, content: bytes) -> None:
    raw = name.encode()
    head = re.compile(b"PK\x03\x04.{22}" + re.escape(struct.pack("<H", len(raw))) + b"(.{2})" + re.escape(raw),
                      re.DOTALL)
    found = head.findall(data)
    assert len(found) == 1, f"local header for {name} appears {len(found)} times"
    extra = struct.unpack("<H", found[0])[0]
    full = re.compile(b"PK\x03\x04.{22}" + re.escape(struct.pack("<H", len(raw))) + b".{2}" + re.escape(raw)
                      + b".{" + str(extra).encode() + b"}" + re.escape(content), re.DOTALL)
    assert len(full.findall(data)) == 1, f"header and contents for {name}"


def contains_folder(data: bytes, name: str) -> None:
    raw = name.encode()
    head = re.compile(b"PK\x03\x04.{22}" + re.escape(struct.pack("<H", len(raw))) + b".{2}" + re.escape(raw),
                      re.DOTALL)
    assert len(head.findall(data)) == 1, f"local header for folder {name}"


@pytest.mark.parametrize("base", ["/", "/baseFolder/"], ids=["root", "from folder"])
def test_downloading_2_small_files(nc: Nc, base: str) -> None:
    """downloading 2 small files / downloading (from folder) 2 small files"""
    if base != "/":
        assert nc.mkcol(base) == 201
    for name in ("welcome.txt", "welcome2.txt"):
        if base != "/" or name != "welcome.txt":
            assert nc.copies("/welcome.txt", f"{base}{name}").status_code == 201
    data = download_zip(nc, '"welcome.txt","welcome2.txt"', base)
    contains_file(data, "welcome.txt", WELCOME)
    contains_file(data, "welcome2.txt", WELCOME)


@pytest.mark.parametrize("base", ["/", "/baseFolder/"], ids=["root", "from folder"])
def test_downloading_a_small_file_and_a_directory(nc: Nc, base: str) -> None:
    """downloading a small file and a directory / (from folder)"""
    if base != "/":
        assert nc.mkcol(base) == 201
        assert nc.copies("/welcome.txt", f"{base}welcome.txt").status_code == 201
    assert nc.mkcol(f"{base}emptySubFolder") == 201
    data = download_zip(nc, '"welcome.txt","emptySubFolder"', base)
    contains_file(data, "welcome.txt", WELCOME)
    contains_folder(data, "emptySubFolder/")


@pytest.mark.parametrize("base", ["/", "/baseFolder/"], ids=["root", "from folder"])
def test_downloading_a_small_file_and_2_nested_directories(nc: Nc, base: str) -> None:
    """downloading a small file and 2 nested directories / (from folder)"""
    if base != "/":
        assert nc.mkcol(base) == 201
        assert nc.copies("/welcome.txt", f"{base}welcome.txt").status_code == 201
    assert nc.mkcol(f"{base}subFolder") == 201 and nc.mkcol(f"{base}subFolder/emptySubSubFolder") == 201
    data = download_zip(nc, '"welcome.txt","subFolder"', base)
    contains_file(data, "welcome.txt", WELCOME)
    contains_folder(data, "subFolder/")
    contains_folder(data, "subFolder/emptySubSubFolder/")


@pytest.mark.parametrize("base", ["/", "/baseFolder/"], ids=["root", "from folder"])
@pytest.mark.parametrize("shape", ["2 small files", "a small file and a directory",
                                   "a small file and 2 nested directories"])
def test_downloading_dir(nc: Nc, base: str, shape: str) -> None:
    """downloading dir with 2 small files / with a small file and a directory / with a small file
    and 2 nested directories (and the same "(from folder)")"""
    if base != "/":
        assert nc.mkcol(base) == 201
    sparse = f"{base}sparseFolder"
    assert nc.mkcol(sparse) == 201
    assert nc.copies("/welcome.txt", f"{sparse}/welcome.txt").status_code == 201
    if shape == "2 small files":
        assert nc.copies("/welcome.txt", f"{sparse}/welcome2.txt").status_code == 201
    elif shape == "a small file and a directory":
        assert nc.mkcol(f"{sparse}/emptySubFolder") == 201
    else:
        assert nc.mkcol(f"{sparse}/subFolder") == 201 and nc.mkcol(f"{sparse}/subFolder/emptySubSubFolder") == 201
    data = download_zip(nc, '"sparseFolder"', base)
    contains_folder(data, "sparseFolder/")
    contains_file(data, "sparseFolder/welcome.txt", WELCOME)
    if shape == "2 small files":
        contains_file(data, "sparseFolder/welcome2.txt", WELCOME)
    elif shape == "a small file and a directory":
        contains_folder(data, "sparseFolder/emptySubFolder/")
    else:
        contains_folder(data, "sparseFolder/subFolder/")
        contains_folder(data, "sparseFolder/subFolder/emptySubSubFolder/")
    assert b"PK\x06\x06" not in data  # a small archive is a zip32 one
