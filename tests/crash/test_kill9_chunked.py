# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads (/remote.php/dav/uploads/) under the failures DESIGN.md names: a kill -9 while
parts arrive and while the final MOVE assembles them, a connection dropped in the middle of a
part, and two clients assembling onto the same file at once. After each: every acknowledged part
is listed and resumable, the assembled file is whole or absent (never a mix), fsck is clean."""

from __future__ import annotations

import hashlib
import random
import re
import socket
import threading
from base64 import b64encode

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer

pytestmark = [pytest.mark.crash, pytest.mark.slow]

MiB = 1024 * 1024
UP = "/remote.php/dav/uploads/alice"


def client(srv: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, auth=("alice", PASSWORD), timeout=120, trust_env=False)


def parts_listed(c: httpx.Client, upload: str) -> dict[str, int]:
    r = c.request("PROPFIND", f"{UP}/{upload}/", headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    out = {}
    for href, length in re.findall(r"<d:href>([^<]+)</d:href>.*?(?:<d:getcontentlength>(\d+)<|</d:response>)",
                                   r.text, re.S):
        name = href.rstrip("/").rsplit("/", 1)[-1]
        if name != upload and length:
            out[name] = int(length)
    return out


def fsck_clean(srv: LiveServer) -> None:
    r = srv.admin("fsck", "--deep")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_kill9_while_parts_arrive_then_resume(live_server: LiveServer) -> None:
    rng = random.Random(7)
    parts = [rng.randbytes(6 * MiB) for _ in range(6)]
    whole = b"".join(parts)
    acked: list[int] = []
    with client(live_server) as c:
        assert c.request("MKCOL", f"{UP}/4242", headers={"OC-Total-Length": str(len(whole))}).status_code == 201
        for i in range(3):
            r = c.put(f"{UP}/4242/{i:016d}", content=parts[i], headers={"OC-Chunk-Offset": str(i * 6 * MiB)})
            assert r.status_code == 201
            acked.append(i)

    # The fourth part is killed mid-body: it must not be listed afterwards.
    def send_half() -> None:
        with socket.create_connection(("127.0.0.1", live_server.port)) as s:
            auth = b64encode(f"alice:{PASSWORD}".encode()).decode()
            s.sendall((f"PUT {UP}/4242/{3:016d} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                       f"Content-Length: {len(parts[3])}\r\n\r\n").encode())
            s.sendall(parts[3][: 4 * MiB])
            killed.wait(30)

    killed = threading.Event()
    t = threading.Thread(target=send_half)
    t.start()
    # Wait until the server has started writing that part's chunks, then kill it.
    deadline = 50
    while deadline and not any((live_server.data / "chunks").rglob(".tmp-*")) and t.is_alive():
        deadline -= 1
        threading.Event().wait(0.05)
    live_server.kill()
    killed.set()
    t.join()
    live_server.start()

    with client(live_server) as c:
        listed = parts_listed(c, "4242")
        assert listed == {f"{i:016d}": 6 * MiB for i in acked}, listed  # resume from what is listed
        for i in range(3, 6):
            assert c.put(f"{UP}/4242/{i:016d}", content=parts[i]).status_code == 201
        r = c.request("MOVE", f"{UP}/4242/.file",
                      headers={"Destination": f"{DAV}/resumed.bin", "OC-Total-Length": str(len(whole))})
        assert r.status_code == 201, r.text
        got = c.get(f"{DAV}/resumed.bin").content
        assert hashlib.sha256(got).digest() == hashlib.sha256(whole).digest()
        assert c.request("PROPFIND", f"{UP}/4242/", headers={"Depth": "0"}).status_code == 404
    fsck_clean(live_server)


def test_kill9_during_assembly_leaves_old_or_new(live_server: LiveServer) -> None:
    rng = random.Random(8)
    old = rng.randbytes(3 * MiB)
    new_parts = [rng.randbytes(8 * MiB) for _ in range(8)]
    new = b"".join(new_parts)
    with client(live_server) as c:
        assert c.put(f"{DAV}/target.bin", content=old).status_code == 201
        assert c.request("MKCOL", f"{UP}/99").status_code == 201
        for i, p in enumerate(new_parts):
            assert c.put(f"{UP}/99/{i + 1:05d}", content=p).status_code == 201

    def assemble() -> None:
        try:
            with client(live_server) as c2:
                c2.request("MOVE", f"{UP}/99/.file", headers={"Destination": f"{DAV}/target.bin",
                                                              "OC-Checksum": f"SHA1:{hashlib.sha1(new).hexdigest()}"})
        except httpx.TransportError:
            pass

    t = threading.Thread(target=assemble)
    t.start()
    threading.Event().wait(0.15)  # the checksum pass reads 64 MiB back: the kill lands inside it
    live_server.kill()
    t.join()
    live_server.start()
    with client(live_server) as c:
        got = c.get(f"{DAV}/target.bin").content
        assert got in (old, new), "the file is neither the old nor the new content"
        if got == old:  # not committed: the staged parts are still there and the MOVE can be retried
            assert len(parts_listed(c, "99")) == 8
            r = c.request("MOVE", f"{UP}/99/.file", headers={"Destination": f"{DAV}/target.bin"})
            assert r.status_code == 204, r.text
            assert c.get(f"{DAV}/target.bin").content == new
    fsck_clean(live_server)


def test_two_clients_assemble_onto_one_file(live_server: LiveServer) -> None:
    rng = random.Random(9)
    contents = {k: [rng.randbytes(3 * MiB) for _ in range(3)] for k in ("11", "22")}
    with client(live_server) as c:
        for key, parts in contents.items():
            assert c.request("MKCOL", f"{UP}/{key}").status_code == 201
            for i, p in enumerate(parts):
                assert c.put(f"{UP}/{key}/{i:016d}", content=p).status_code == 201
    results: dict[str, int] = {}

    def finish(key: str) -> None:
        with client(live_server) as c2:
            r = c2.request("MOVE", f"{UP}/{key}/.file", headers={"Destination": f"{DAV}/shared.bin"})
            results[key] = r.status_code

    threads = [threading.Thread(target=finish, args=(k,)) for k in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [201, 204], results  # both applied, one after the other
    with client(live_server) as c:
        got = c.get(f"{DAV}/shared.bin").content
        assert got in (b"".join(contents["11"]), b"".join(contents["22"]))
    fsck_clean(live_server)
