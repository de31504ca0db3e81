# SPDX-License-Identifier: EUPL-1.2
"""Checksums on every path that accepts or computes one, for every algorithm the clients send:
PUT with OC-Checksum (a body received whole, and a streamed one), the assembly of a chunked
upload with OC-Checksum (parts stored as chunks, and a tiny part stored inline), and PATCH with
X-Recalculate-Hash (a file of several chunks, and after an overwrite). A right checksum is
stored and reported; a wrong one is 400 and changes nothing: the old content stays, the staged
upload stays and can be assembled again. Bulk upload checks X-File-MD5 and OC-Checksum of each
file: a wrong one refuses that file alone."""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cartable.core.context import Core
from tests.conftest import DAV
from tests.nextcloud.davhelp import bulk, bulk_body, bulk_part

UP = "/remote.php/dav/uploads/alice"
KiB = 1024


def digest(algo: str, data: bytes) -> str:
    if algo == "ADLER32":
        return f"{zlib.adler32(data):08x}"
    return hashlib.new(algo.lower(), data).hexdigest()


def wrong(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


ALGOS = ["SHA1", "MD5", "SHA256", "ADLER32"]


@pytest.fixture
def old(client: TestClient) -> bytes:
    content = random.Random(1).randbytes(20 * KiB)
    assert client.put(f"{DAV}/f.bin", content=content).status_code == 201
    return content


def pieces(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 64 * KiB):
        yield data[i:i + 64 * KiB]


@pytest.mark.parametrize("size", [3000, 200 * KiB, 600 * KiB], ids=["inline", "received-whole", "large"])
@pytest.mark.parametrize("streamed", [False, True], ids=["sized", "unsized"])
def test_put(client: TestClient, old: bytes, size: int, streamed: bool) -> None:
    for algo in ALGOS:
        data = random.Random(size).randbytes(size) + algo.encode()
        value = digest(algo, data)
        body = pieces(data) if streamed else data
        r = client.put(f"{DAV}/f.bin", content=body, headers={"OC-Checksum": f"{algo}:{wrong(value)}"})
        assert r.status_code == 400, (algo, r.text)
        assert algo in r.text and value in r.text  # says what the content's checksum is
        assert client.get(f"{DAV}/f.bin").content == old
        body = pieces(data) if streamed else data
        r = client.put(f"{DAV}/f.bin", content=body, headers={"OC-Checksum": f"{algo}:{value}"})
        assert r.status_code == 204, (algo, r.text)
        got = client.get(f"{DAV}/f.bin")
        assert got.content == data and got.headers["OC-Checksum"] == f"{algo}:{value}"
        assert client.put(f"{DAV}/f.bin", content=old).status_code == 204


def stage(client: TestClient, key: str, parts: list[bytes]) -> None:
    assert client.request("MKCOL", f"{UP}/{key}").status_code == 201
    for i, p in enumerate(parts):
        assert client.put(f"{UP}/{key}/{i + 1:05d}", content=p).status_code == 201


@pytest.mark.parametrize("tiny_part", [False, True], ids=["chunked-parts", "with-an-inline-part"])
def test_assembly(client: TestClient, core: Core, old: bytes, tiny_part: bool) -> None:
    for algo in ALGOS:
        rng = random.Random(algo)
        parts = [rng.randbytes(100 * KiB), rng.randbytes(70 * KiB)] + ([rng.randbytes(500)] if tiny_part else [])
        whole = b"".join(parts)
        value = digest(algo, whole)
        key = f"c-{algo}"
        stage(client, key, parts)
        r = client.request("MOVE", f"{UP}/{key}/.file",
                           headers={"Destination": f"{DAV}/f.bin", "OC-Checksum": f"{algo}:{wrong(value)}"})
        assert r.status_code == 400, (algo, r.text)
        assert client.get(f"{DAV}/f.bin").content == old
        listing = client.request("PROPFIND", f"{UP}/{key}/", headers={"Depth": "1"})
        assert listing.status_code == 207 and listing.text.count("<d:response>") == len(parts) + 1
        r = client.request("MOVE", f"{UP}/{key}/.file",
                           headers={"Destination": f"{DAV}/f.bin", "OC-Checksum": f"{algo}:{value}"})
        assert r.status_code == 204, (algo, r.text)
        got = client.get(f"{DAV}/f.bin")
        assert got.content == whole and got.headers["OC-Checksum"] == f"{algo}:{value}"
        assert client.put(f"{DAV}/f.bin", content=old).status_code == 204


def test_patch_recalculates_over_every_chunk_and_after_an_overwrite(client: TestClient) -> None:
    rng = random.Random(9)
    # Several chunks: FastCDC never cuts before 256 KiB, and cuts by 8 MiB at the latest.
    first = rng.randbytes(12 * 1024 * KiB)
    second = first[:5000] + b"edited" + first[5000:]
    assert client.put(f"{DAV}/p.bin", content=first, headers={"OC-Checksum": f"SHA1:{digest('SHA1', first)}"}
                      ).status_code == 201
    for algo in ALGOS:
        r = client.request("PATCH", f"{DAV}/p.bin", headers={"X-Recalculate-Hash": algo})
        assert r.status_code == 204 and r.headers["OC-Checksum"] == f"{algo}:{digest(algo, first)}"
    assert client.put(f"{DAV}/p.bin", content=second).status_code == 204
    for algo in ALGOS:
        r = client.request("PATCH", f"{DAV}/p.bin", headers={"X-Recalculate-Hash": algo})
        assert r.status_code == 204 and r.headers["OC-Checksum"] == f"{algo}:{digest(algo, second)}"
        assert client.get(f"{DAV}/p.bin").headers["OC-Checksum"] == f"{algo}:{digest(algo, second)}"


@pytest.mark.parametrize("size", [3000, 200 * KiB], ids=["inline", "chunked"])
def test_bulk_upload(client: TestClient, old: bytes, size: int) -> None:
    """Bulk upload checks X-File-MD5 (always sent) and OC-Checksum (when sent) of each file; a
    wrong one refuses that file alone and keeps its old content."""
    for algo in ALGOS:
        data = random.Random(size).randbytes(size) + algo.encode()
        md5, value = hashlib.md5(data).hexdigest(), digest(algo, data)
        for md5_sent, checksum_sent, ok in ((wrong(md5), None, False), (md5, wrong(value), False),
                                            (md5, value, True)):
            extra = f"OC-Checksum: {algo}:{checksum_sent}\r\n" if checksum_sent else ""
            r = bulk(client, bulk_body(bulk_part("/f.bin", data, md5=md5_sent, extra=extra),
                                       bulk_part("/g.txt", b"other file")))
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["/g.txt"]["error"] is False
            got = client.get(f"{DAV}/f.bin")
            if ok:
                assert answer["/f.bin"]["error"] is False
                assert got.content == data and got.headers["OC-Checksum"] == f"{algo}:{value}"
                assert client.put(f"{DAV}/f.bin", content=old).status_code == 204
            else:
                assert answer["/f.bin"]["error"] is True, answer
                assert ("MD5" if md5_sent != md5 else algo) in answer["/f.bin"]["message"]
                assert got.content == old
