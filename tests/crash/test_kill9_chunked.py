# SPDX-License-Identifier: EUPL-1.2
"""Chunked uploads (/remote.php/dav/uploads/) under the failures DESIGN.md names: a kill -9 while
a part arrives and while the final MOVE assembles them (each kill lands at a named step: the
server is started with a fault pause and killed once it froze there), and two clients assembling
onto the same file at once. After each: every acknowledged part
is listed and resumable, the assembled file is whole or absent (never a mix), fsck is clean."""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections.abc import Iterator

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


def test_kill9_while_a_part_arrives_then_resume(live_server: LiveServer) -> None:
    """The server is killed while a part streams in, right after the first chunks of that part
    were made durable (fault point writes.after_put): the part is not listed afterwards, the parts
    acknowledged before are, and the upload resumes from that listing."""
    rng = random.Random(7)
    sizes = [6 * MiB] * 3 + [40 * MiB] + [6 * MiB] * 2  # the fourth part flushes chunks mid-body
    parts = [rng.randbytes(n) for n in sizes]
    whole = b"".join(parts)
    names = [f"{i:016d}" for i in range(len(parts))]
    with client(live_server) as c:
        assert c.request("MKCOL", f"{UP}/4242", headers={"OC-Total-Length": str(len(whole))}).status_code == 201
        for i in range(3):
            assert c.put(f"{UP}/4242/{names[i]}", content=parts[i]).status_code == 201
    marker = live_server.start_paused_at("writes.after_put")
    killed = threading.Event()
    outcome: list[object] = []

    def body() -> Iterator[bytes]:
        data = parts[3]
        for off in range(0, len(data) - MiB, MiB):
            yield data[off:off + MiB]
        killed.wait(120)  # the last MiB is never sent before the kill: the body never ends
        yield data[len(data) - MiB:]

    def send() -> None:
        try:
            with client(live_server) as c2:
                outcome.append(c2.put(f"{UP}/4242/{names[3]}", content=body()))
        except Exception as exc:  # examined below
            outcome.append(exc)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    live_server.kill_when_paused(marker)
    killed.set()
    t.join(60)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    live_server.start()

    with client(live_server) as c:
        listed = parts_listed(c, "4242")
        assert listed == {names[i]: sizes[i] for i in range(3)}, listed  # resume from what is listed
        for i in range(3, len(parts)):
            assert c.put(f"{UP}/4242/{names[i]}", content=parts[i]).status_code == 201
        r = c.request("MOVE", f"{UP}/4242/.file",
                      headers={"Destination": f"{DAV}/resumed.bin", "OC-Total-Length": str(len(whole))})
        assert r.status_code == 201, r.text
        got = c.get(f"{DAV}/resumed.bin").content
        assert hashlib.sha256(got).digest() == hashlib.sha256(whole).digest()
        assert c.request("PROPFIND", f"{UP}/4242/", headers={"Depth": "0"}).status_code == 404
    fsck_clean(live_server)


@pytest.mark.parametrize(("point", "survives"), [("writes.commit.before_commit", "old"),
                                                 ("writes.commit.after_commit", "new")])
def test_kill9_during_assembly_leaves_old_or_new(live_server: LiveServer, point: str, survives: str) -> None:
    """The server is killed inside the assembly's commit transaction (before it commits: the old
    content and the staged upload survive, and the MOVE can be retried) or just after it committed
    and before it answered (the new content survives, the staging is gone). The MOVE is never
    answered either way."""
    rng = random.Random(8)
    old = rng.randbytes(3 * MiB)
    new_parts = [rng.randbytes(8 * MiB) for _ in range(8)]
    new = b"".join(new_parts)
    with client(live_server) as c:
        assert c.put(f"{DAV}/target.bin", content=old).status_code == 201
        assert c.request("MKCOL", f"{UP}/99").status_code == 201
        for i, p in enumerate(new_parts):
            assert c.put(f"{UP}/99/{i + 1:05d}", content=p).status_code == 201
    marker = live_server.start_paused_at(point)
    outcome: list[object] = []

    def assemble() -> None:
        try:
            with client(live_server) as c2:
                outcome.append(c2.request("MOVE", f"{UP}/99/.file", headers={
                    "Destination": f"{DAV}/target.bin", "OC-Checksum": f"SHA1:{hashlib.sha1(new).hexdigest()}"}))
        except Exception as exc:  # examined below
            outcome.append(exc)

    t = threading.Thread(target=assemble, daemon=True)
    t.start()
    live_server.kill_when_paused(marker)
    t.join(60)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    live_server.start()
    with client(live_server) as c:
        got = c.get(f"{DAV}/target.bin").content
        if survives == "old":
            assert got == old, "the assembly was visible although it never committed"
            assert len(parts_listed(c, "99")) == 8  # still staged: the MOVE can be retried
            r = c.request("MOVE", f"{UP}/99/.file", headers={"Destination": f"{DAV}/target.bin"})
            assert r.status_code == 204, r.text
            assert c.get(f"{DAV}/target.bin").content == new
        else:
            assert got == new, "a committed assembly was lost"
            assert c.request("PROPFIND", f"{UP}/99/", headers={"Depth": "0"}).status_code == 404
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
