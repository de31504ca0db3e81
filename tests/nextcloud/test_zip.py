# SPDX-License-Identifier: EUPL-1.2
"""Folders and chosen members as a zip through DAV (Nextcloud's ZipFolderPlugin): Accept header
or ?accept=zip, ?files=[...] or X-NC-Files, names in UTF-8, stored entries, zip64 when needed,
streamed, and security headers on the download."""

from __future__ import annotations

import io
import zipfile

import pytest
from starlette.testclient import TestClient

from cartable.core.archive import ArchiveEntry
from cartable.core.context import Core
from cartable.core.model import Principal
from cartable.nextcloud.archive import zip_stream
from tests.conftest import DAV


@pytest.fixture
def tree(client: TestClient) -> TestClient:
    for d in ("F", "F/sub", "F/sub/empty", "F/Été"):
        assert client.request("MKCOL", f"{DAV}/{d}").status_code == 201
    for path, data, mtime in (("F/a.txt", b"a" * 10, "1600000000"), ("F/sub/b.bin", bytes(range(256)) * 400, "1"),
                              ("F/Été/ü 1.txt", "ü".encode(), "1700000000"), ("top.txt", b"top", "1700000000")):
        assert client.put(f"{DAV}/{path}", content=data, headers={"X-OC-Mtime": mtime}).status_code == 201
    return client


def unzip(data: bytes) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None
    return {i.filename: z.read(i) for i in z.infolist()}


def test_folder_with_accept_header(tree: TestClient) -> None:
    r = tree.get(f"{DAV}/F", headers={"Accept": "application/zip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''F.zip; filename=\"F.zip\""
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "content-length" not in r.headers  # streamed as it is made
    got = unzip(r.content)
    assert got == {"F/": b"", "F/a.txt": b"a" * 10, "F/sub/": b"", "F/sub/b.bin": bytes(range(256)) * 400,
                   "F/sub/empty/": b"", "F/Été/": b"", "F/Été/ü 1.txt": "ü".encode()}
    infos = {i.filename: i for i in zipfile.ZipFile(io.BytesIO(r.content)).infolist()}
    assert infos["F/Été/ü 1.txt"].flag_bits & 0x800  # UTF-8 names
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
    assert infos["F/a.txt"].date_time == (2020, 9, 13, 12, 26, 40)
    assert infos["F/sub/b.bin"].date_time == (1980, 1, 1, 0, 0, 0)  # before 1980: clamped
    # Without the Accept header a folder GET is the HTML listing, as before.
    assert tree.get(f"{DAV}/F").headers["content-type"].startswith("text/html")


def test_members_by_query_and_by_header(tree: TestClient) -> None:
    r = tree.get(f'{DAV}/F?accept=zip&files=["a.txt","sub"]')
    assert r.status_code == 200
    assert unzip(r.content) == {"a.txt": b"a" * 10, "sub/": b"", "sub/b.bin": bytes(range(256)) * 400,
                                "sub/empty/": b""}
    r = tree.get(f"{DAV}/F?accept=zip", headers={"X-NC-Files": "a.txt"})
    assert unzip(r.content) == {"a.txt": b"a" * 10}
    r = tree.get(f'{DAV}/F?accept=zip&files="Été"')  # one JSON string
    assert set(unzip(r.content)) == {"Été/", "Été/ü 1.txt"}
    r = tree.get(f"{DAV}/?accept=zip")  # the whole tree: Nextcloud names it download.zip
    assert "download.zip" in r.headers["content-disposition"]
    assert unzip(r.content)["download/top.txt"] == b"top"


@pytest.mark.parametrize("query, status", [
    ('files=["nothere.txt"]', 404),
    ('files=["../top.txt"]', 400),
    ("files=[1,2]", 400),
    ("files=[not json", 400),
])
def test_bad_member_lists(tree: TestClient, query: str, status: int) -> None:
    assert tree.get(f"{DAV}/F?accept=zip&{query}").status_code == status


def test_zip64_when_over_65535_entries() -> None:
    """Nextcloud's scenario: more than 65,535 entries give a zip64 end record (PK\\x06\\x06)."""
    entries = [ArchiveEntry(f"d/{i}/", i, True, 0.0) for i in range(65_536)]
    principal = Principal(1, "alice", "Alice", False, 1, 1)
    data = b"".join(zip_stream(None, principal, entries))  # type: ignore[arg-type]  # folders read no content
    assert b"PK\x06\x06" in data
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 65_536
    small = b"".join(zip_stream(None, principal, entries[:10]))  # type: ignore[arg-type]
    assert b"PK\x06\x06" not in small


def test_a_file_deleted_while_zipping_is_left_out(tree: TestClient, core: Core) -> None:
    from cartable.core import archive, files
    from tests.core.conftest import op_for, principal

    p = principal(core)
    name, entries = archive.plan(core, p, ("F",))
    files.delete(core, op_for(core), ("F", "a.txt"))
    got = unzip(b"".join(zip_stream(core, p, entries)))
    assert "F/a.txt" not in got and got["F/sub/b.bin"] == bytes(range(256)) * 400
