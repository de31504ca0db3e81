# SPDX-License-Identifier: EUPL-1.2
"""Two app nodes on one database and one chunk store behave as one server (issue 11, "stateless
app nodes"): clients spread over both nodes race each other, and the outcome is what one server
gives — every acknowledged write there byte for byte, both nodes showing the same tree and
etags, the quota never exceeded, a revoked credential refused everywhere at once, a lock and a
chunked upload honoured across nodes — with fsck clean and no 5xx nor error in either log.

One pair of nodes serves the whole module; each test works in its own folders or account."""

from __future__ import annotations

import hashlib
import random
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pytest

from cartable.store.meta import leases
from tests.conftest import PASSWORD, cartable_exe
from tests.nodes.conftest import Fleet, Node, start_fleet

pytestmark = pytest.mark.slow

KiB = 1024
D = "{DAV:}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    # The jobs run when the nodes start, then not again for a day: each runs exactly once here.
    f = start_fleet(tmp_path_factory.mktemp("fleet"), gc_interval_seconds="86400",
                    maintenance_interval_seconds="86400")
    try:
        yield f
    finally:
        f.stop()
    assert not f.problems(), "\n".join(f.problems())


@pytest.fixture(autouse=True)
def clean_after(fleet: Fleet) -> Iterator[None]:
    yield
    out = fleet.admin("fsck", "--deep")
    assert out.rstrip().endswith(": OK"), out
    assert not fleet.problems(), "\n".join(fleet.problems())


def dav(user: str, path: str = "") -> str:
    return f"/remote.php/dav/files/{user}/{path}"


def rand(seed: object, size: int) -> bytes:
    return random.Random(str(seed)).randbytes(size)


def listing(node: Node, user: str, folder: str, password: str = PASSWORD) -> dict[str, tuple[str, str]]:
    """name -> (etag, size) of a folder's children, as ``node`` lists them."""
    with node.client(user, password) as c:
        r = c.request("PROPFIND", dav(user, folder), headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    out = {}
    for resp in ET.fromstring(r.content).iter(f"{D}response"):
        href = unquote(resp.findtext(f"{D}href") or "")
        name = href.rstrip("/").rsplit("/", 1)[-1]
        if href.rstrip("/") == dav(user, folder).rstrip("/"):
            continue  # the folder itself
        out[name] = (resp.findtext(f".//{D}getetag") or "", resp.findtext(f".//{D}getcontentlength") or "")
    return out


def same_view(fleet: Fleet, user: str, folder: str) -> dict[str, tuple[str, str]]:
    """The folder's listing, asserted identical on every node."""
    views = [listing(n, user, folder) for n in fleet.nodes]
    assert all(v == views[0] for v in views), views
    return views[0]


def together(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released at the same instant; their results (or exceptions)."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # reported by the caller's assertions
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def mkcol(fleet: Fleet, user: str, folder: str) -> None:
    with fleet.nodes[0].client(user) as c:
        assert c.request("MKCOL", dav(user, folder)).status_code == 201


def test_the_same_new_content_from_two_users_on_two_nodes(fleet: Fleet) -> None:
    a, b = fleet.nodes
    contents = [rand(("same", i), random.Random(i).randint(9 * KiB, 700 * KiB)) for i in range(12)]
    with a.client("alice") as ca, b.client("bob") as cb:
        for i, data in enumerate(contents):
            r1, r2 = together(lambda: ca.put(dav("alice", f"same-{i}.bin"), content=data),
                              lambda: cb.put(dav("bob", f"same-{i}.bin"), content=data))
            assert (r1.status_code, r2.status_code) == (201, 201), (r1, r2)  # type: ignore[union-attr]
    # Each reads back through the other node.
    with b.client("alice") as ca, a.client("bob") as cb:
        for i, data in enumerate(contents):
            assert ca.get(dav("alice", f"same-{i}.bin")).content == data
            assert cb.get(dav("bob", f"same-{i}.bin")).content == data
    core = fleet.core()
    try:  # one copy of each chunk in the store
        digests = [d for d, _ in core.blobs.iter_digests()]
        assert len(digests) == len(set(digests))
    finally:
        core.db.dispose()


def test_the_same_file_written_from_both_nodes(fleet: Fleet) -> None:
    a, b = fleet.nodes
    with a.client() as ca, b.client() as cb:
        for i in range(10):
            one, two = rand(("one", i), 40 * KiB + i), rand(("two", i), 3 * KiB + i)  # a chunk, inline
            r1, r2 = together(lambda: ca.put(dav("alice", "contended.bin"), content=one),
                              lambda: cb.put(dav("alice", "contended.bin"), content=two))
            assert {r1.status_code, r2.status_code} <= {201, 204}, (r1, r2)  # type: ignore[union-attr]
            got_a, got_b = ca.get(dav("alice", "contended.bin")), cb.get(dav("alice", "contended.bin"))
            assert got_a.content == got_b.content and got_a.content in (one, two)
            assert got_a.headers["etag"] == got_b.headers["etag"]
    same_view(fleet, "alice", "")


def test_many_new_files_into_one_folder_from_both_nodes(fleet: Fleet) -> None:
    mkcol(fleet, "alice", "inbox")
    expected: dict[str, bytes] = {}
    calls = []
    for n, node in enumerate(fleet.nodes):
        for t in range(6):
            files = {f"n{n}-t{t}-{k}.bin": rand((n, t, k), (k + 1) * 5 * KiB) for k in range(6)}
            expected.update(files)

            def send(node: Node = node, files: dict[str, bytes] = files) -> list[int]:
                with node.client() as c:
                    return [c.put(dav("alice", f"inbox/{name}"), content=data).status_code
                            for name, data in files.items()]

            calls.append(send)
    for codes in together(*calls):
        assert codes == [201] * 6, codes
    view = same_view(fleet, "alice", "inbox/")
    assert {name: int(size) for name, (_, size) in view.items()} == {k: len(v) for k, v in expected.items()}
    with fleet.nodes[1].client() as c:
        for name, data in expected.items():
            assert c.get(dav("alice", f"inbox/{name}")).content == data


def test_moves_racing_deletes_on_two_nodes(fleet: Fleet) -> None:
    a, b = fleet.nodes
    mkcol(fleet, "bob", "m")
    mkcol(fleet, "bob", "moved")
    names = [f"f{i}.txt" for i in range(16)]
    with a.client("bob") as c:
        for name in names:
            assert c.put(dav("bob", f"m/{name}"), content=rand(name, 12 * KiB)).status_code == 201
    outcomes = {}
    with a.client("bob") as ca, b.client("bob") as cb:
        for name in names:
            move, delete = together(
                lambda: ca.request("MOVE", dav("bob", f"m/{name}"),
                                   headers={"Destination": f"{a.url}{dav('bob', f'moved/{name}')}"}),
                lambda: cb.delete(dav("bob", f"m/{name}")))
            codes = (move.status_code, delete.status_code)  # type: ignore[union-attr]
            # Exactly one of them acted on the file; the other found it gone.
            assert codes in ((201, 404), (404, 204)), codes
            outcomes[name] = codes[0] == 201
    assert same_view(fleet, "bob", "m/") == {}
    assert set(same_view(fleet, "bob", "moved/")) == {n for n, moved in outcomes.items() if moved}
    with b.client("bob") as c:
        for name, moved in outcomes.items():
            if moved:
                assert c.get(dav("bob", f"moved/{name}")).content == rand(name, 12 * KiB)


QUOTA_PROPS = b'<d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/></d:prop></d:propfind>'


def test_a_quota_filled_from_both_nodes_at_once_is_never_exceeded(fleet: Fleet) -> None:
    fleet.admin("user", "add", "carol", "--password-stdin", input=PASSWORD + "\n")
    quota = 1_000_000
    fleet.admin("user", "quota", "carol", str(quota))
    size = 100 * KiB  # 9 fit, the 10th does not
    acked: dict[str, int] = {}
    lock = threading.Lock()
    calls = []
    for n, node in enumerate(fleet.nodes):
        for t in range(4):
            def fill(node: Node = node, n: int = n, t: int = t) -> list[int]:
                codes = []
                with node.client("carol") as c:
                    for k in range(5):
                        name = f"q-{n}-{t}-{k}.bin"
                        r = c.put(dav("carol", name), content=rand(name, size))
                        codes.append(r.status_code)
                        if r.status_code == 201:
                            with lock:
                                acked[name] = size
                return codes

            calls.append(fill)
    for codes in together(*calls):
        assert set(codes) <= {201, 507}, codes  # type: ignore[arg-type]
    assert 0 < sum(acked.values()) <= quota
    assert len(acked) == quota // size  # refusals only once it was full: nothing lost to the race
    view = same_view(fleet, "carol", "")
    assert {name: int(sz) for name, (_, sz) in view.items()} == acked
    for node in fleet.nodes:  # both nodes report the same usage, within the quota
        with node.client("carol") as c:
            r = c.request("PROPFIND", dav("carol"), headers={"Depth": "0"}, content=QUOTA_PROPS)
        used = int(ET.fromstring(r.content).findtext(f".//{D}quota-used-bytes") or -1)
        assert used == sum(acked.values())


def test_a_password_change_refuses_the_old_password_on_every_node_at_once(fleet: Fleet) -> None:
    fleet.admin("user", "add", "dave", "--password-stdin", input=PASSWORD + "\n")
    for node in fleet.nodes:  # each node verified and cached the password
        with node.client("dave") as c:
            assert c.request("PROPFIND", dav("dave"), headers={"Depth": "0"}).status_code == 207
    fleet.admin("user", "passwd", "dave", "--password-stdin", input="the-new-password\n")
    for node in fleet.nodes:
        with node.client("dave") as c:
            assert c.request("PROPFIND", dav("dave"), headers={"Depth": "0"}).status_code == 401
        with node.client("dave", "the-new-password") as c:
            assert c.request("PROPFIND", dav("dave"), headers={"Depth": "0"}).status_code == 207
    # An app password revoked through one node's configuration stops on both at once.
    token = fleet.admin("apppassword", "add", "dave", "laptop").strip().splitlines()[-1]
    for node in fleet.nodes:
        with node.client("dave", token) as c:
            assert c.request("PROPFIND", dav("dave"), headers={"Depth": "0"}).status_code == 207
    app_id = fleet.admin("apppassword", "list", "dave").split("\t")[0]
    fleet.admin("apppassword", "revoke", "dave", app_id)
    for node in fleet.nodes:
        with node.client("dave", token) as c:
            assert c.request("PROPFIND", dav("dave"), headers={"Depth": "0"}).status_code == 401


LOCKINFO = (b'<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
            b'<d:locktype><d:write/></d:locktype><d:owner>node a</d:owner></d:lockinfo>')


def test_a_lock_taken_on_one_node_is_honoured_on_the_other(fleet: Fleet) -> None:
    a, b = fleet.nodes
    with a.client("bob") as ca, b.client("bob") as cb:
        assert ca.put(dav("bob", "locked.txt"), content=b"v1").status_code == 201
        r = ca.request("LOCK", dav("bob", "locked.txt"), content=LOCKINFO, headers={"Timeout": "Second-600"})
        assert r.status_code == 200, r.text
        token = r.headers["lock-token"].strip("<>")
        assert cb.put(dav("bob", "locked.txt"), content=b"v2").status_code == 423
        assert cb.delete(dav("bob", "locked.txt")).status_code == 423
        assert cb.put(dav("bob", "locked.txt"), content=b"v3", headers={"If": f"(<{token}>)"}).status_code == 204
        assert cb.request("UNLOCK", dav("bob", "locked.txt"), headers={"Lock-Token": f"<{token}>"}).status_code == 204
        assert ca.put(dav("bob", "locked.txt"), content=b"v4").status_code == 204
        assert cb.get(dav("bob", "locked.txt")).content == b"v4"


def test_a_chunked_upload_whose_parts_go_to_both_nodes(fleet: Fleet) -> None:
    a, b = fleet.nodes
    data = rand("chunked", 5 * 1024 * KiB + 123)
    part = 512 * KiB
    up = "/remote.php/dav/uploads/alice/across-nodes"
    with a.client() as ca, b.client() as cb:
        assert ca.request("MKCOL", up, headers={"OC-Total-Length": str(len(data))}).status_code == 201
        for i, off in enumerate(range(0, len(data), part)):
            c = (ca, cb)[i % 2]
            assert c.put(f"{up}/{i:016d}", content=data[off:off + part]).status_code == 201
        r = cb.request("MOVE", f"{up}/.file", headers={"Destination": f"{b.url}{dav('alice', 'assembled.bin')}",
                                                       "OC-Total-Length": str(len(data))})
        assert r.status_code == 201, r.text
        got = ca.get(dav("alice", "assembled.bin"))
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        assert got.headers["etag"] == cb.head(dav("alice", "assembled.bin")).headers["etag"]


def test_the_background_jobs_ran_once_across_the_fleet(fleet: Fleet) -> None:
    core = fleet.core()
    try:
        with core.db.read() as tx:
            rows = leases.all_leases(tx)
    finally:
        core.db.dispose()
    names = {r.name for r in rows}
    assert {"gc.collect", "gc.sweep", "uploads.expire", "locks.purge"} <= names
    holders = {r.holder for r in rows}
    pids = {str(n.proc.pid) for n in fleet.nodes if n.proc}
    assert all(any(f":{pid}:" in h for pid in pids) for h in holders), holders
    # Each job ran once since the fleet started (its interval is a day).
    started = [r for r in (n.records() for n in fleet.nodes) for r in r if "done on node" in str(r.get("message"))]
    per_job: dict[str, int] = {}
    for r in started:
        job = str(r["message"]).split()[1]
        per_job[job] = per_job.get(job, 0) + 1
    assert per_job and all(count == 1 for count in per_job.values()), per_job
    # What an operator sees.
    shown = fleet.admin("jobs").splitlines()
    for name in ("gc.collect", "gc.sweep", "uploads.expire", "locks.purge", "login.counters.purge",
                 "login.flows.purge"):
        at = shown.index(f"{name}: idle")
        assert shown[at + 1].startswith("  last run: finished ") and " on node@" in shown[at + 1]
        assert shown[at + 2].startswith("  next run: at ")


def test_admin_gc_refuses_or_waits_while_a_node_holds_a_gc_lease(fleet: Fleet) -> None:
    core = fleet.core()
    try:
        with core.db.write() as tx:
            now = leases.db_now(tx)
            assert leases.acquire(tx, "gc.collect", "node@elsewhere:1:test", now, 600.0, due_only=False)
        r = fleet.nodes[1].admin("gc")
        assert r.returncode == 1
        assert "gc.collect is running on node node@elsewhere:1:test" in r.stderr, r.stderr

        node = fleet.nodes[1]
        waiting = subprocess.Popen([*cartable_exe(), "admin", "gc", "--wait", "--data", str(node.data)],
                                   env=node.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # it says it waits, and waits...
        assert line.startswith("waiting: the background job gc.collect is running on node node@elsewhere:1:test")
        assert waiting.poll() is None
        with core.db.write() as tx:  # ...until the holder releases the lease
            t = leases.db_now(tx)
            assert leases.release(tx, "gc.collect", "node@elsewhere:1:test", t, t + 3600, "test")
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert out.startswith("deleted 0 chunks"), out
    finally:
        core.db.dispose()
