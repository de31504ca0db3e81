# SPDX-License-Identifier: EUPL-1.2
"""`cartable serve` with several worker processes (cli/workers.py), as an operator runs it: every
worker serves, concurrent writers through different workers lose nothing, a worker killed with
SIGKILL is started again, `kill -9` of the server leaves no worker behind, SIGTERM stops them
all; and the SQLite writer lock between processes (store/meta/engine.py) is really taken."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import fcntl
import http.client
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from cartable.cli import workers
from cartable.core import accounts
from cartable.server import open_core
from tests.conftest import DAV, PASSWORD, LiveServer, cartable_exe, free_port, make_settings

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(x) for x in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(what: str, check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    # A local chunk folder on either backend (the S3 store: test_s3_serves_with_several_workers).
    srv = LiveServer(tmp_path / "data", free_port(), extra_env={"CARTABLE_WORKERS": "3",
                                                                "CARTABLE_BLOB_STORE": "local"})
    srv.start()
    assert srv.admin("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n").returncode == 0
    yield srv
    srv.stop()


def test_every_worker_serves_and_concurrent_writers_lose_nothing(server: LiveServer, tmp_path: Path) -> None:
    assert server.proc is not None
    log = (tmp_path / f"server-{server.port}.log").read_text()
    assert "with 3 workers" in log
    wait_until("three workers run", lambda: len(children(server.proc.pid)) == 3)
    url = f"{server.url}{DAV}"
    payloads = {f"f{i:03d}.txt": os.urandom(3000 + i) for i in range(120)}
    # One connection per request: the workers take turns accepting them.
    def put(name: str) -> int:
        r = httpx.put(f"{url}/{name}", content=payloads[name], auth=("alice", PASSWORD))
        return r.status_code

    with cf.ThreadPoolExecutor(16) as pool:
        assert set(pool.map(put, payloads)) == {201}
        # Same file from 16 writers at once: exactly one version wins, none is torn.
        contenders = [os.urandom(20_000) for _ in range(16)]
        codes = list(pool.map(lambda b: httpx.put(f"{url}/same.bin", content=b, auth=("alice", PASSWORD)).status_code,
                              contenders))
    assert all(c in (201, 204) for c in codes) and codes.count(201) == 1
    assert httpx.get(f"{url}/same.bin", auth=("alice", PASSWORD)).content in contenders
    for name, body in payloads.items():
        assert httpx.get(f"{url}/{name}", auth=("alice", PASSWORD)).content == body
    fsck = server.admin("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_killed_worker_is_started_again_and_nothing_acknowledged_is_lost(server: LiveServer,
                                                                           tmp_path: Path) -> None:
    assert server.proc is not None
    url = f"{server.url}{DAV}"
    wait_until("three workers run", lambda: len(children(server.proc.pid)) == 3)
    victim = min(children(server.proc.pid))
    stop = threading.Event()
    acknowledged: dict[str, bytes] = {}

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            name, body = f"w{n}-{i}.bin", os.urandom(5000)
            try:
                r = httpx.put(f"{url}/{name}", content=body, auth=("alice", PASSWORD), timeout=30)
            except httpx.TransportError:
                continue  # that worker died under this request: not acknowledged
            if r.status_code == 201:
                acknowledged[name] = body
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    os.kill(victim, signal.SIGKILL)
    wait_until("the killed worker is replaced",
                lambda: victim not in children(server.proc.pid) and len(children(server.proc.pid)) == 3)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > 10
    for name, body in acknowledged.items():
        assert httpx.get(f"{url}/{name}", auth=("alice", PASSWORD)).content == body
    assert "was killed by signal 9; starting it again" in (tmp_path / f"server-{server.port}.log").read_text()
    fsck = server.admin("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_kill_9_of_the_server_leaves_no_worker_and_sigterm_stops_them_all(server: LiveServer) -> None:
    assert server.proc is not None
    wait_until("three workers run", lambda: len(children(server.proc.pid)) == 3)
    pids = children(server.proc.pid)
    server.kill()
    wait_until("every worker died with the server", lambda: not any(alive(p) for p in pids), timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/_cartable/health", timeout=2)

    server.start()
    pids = children(server.proc.pid)
    wait_until("three workers run", lambda: len(children(server.proc.pid)) == 3)
    pids = children(server.proc.pid)
    server.proc.terminate()
    assert server.proc.wait(20) == 0
    assert not any(alive(p) for p in pids)


def test_workers_that_keep_dying_at_start_stop_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """supervise() itself, in a child of the test (it forks): five quick deaths in a row end it
    with status 1 instead of a restart loop."""
    monkeypatch.setattr(workers, "RESTART_PAUSE", 0.0)
    pid = os.fork()
    if pid == 0:
        def broken(index: int) -> None:
            raise RuntimeError("cannot open the database")
        os._exit(workers.supervise(2, broken))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


def test_check_apart_runs_the_check_in_a_child_and_reports_its_error() -> None:
    """What the check starts (here a thread, for the S3 store obstore's runtime) never exists in
    the caller, and its error comes back as text."""
    threads = threading.active_count()

    def starts_a_thread_and_fails() -> None:
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        raise RuntimeError(f"no bucket here (pid {os.getpid()})")

    report = workers.check_apart(starts_a_thread_and_fails)
    assert report is not None and report.startswith("no bucket here (pid ")
    assert report != f"no bucket here (pid {os.getpid()})"
    assert workers.check_apart(lambda: "fine") is None
    assert threading.active_count() == threads


@pytest.mark.local_only  # SQLite's own lock file; PostgreSQL has row locks
def test_the_sqlite_writer_lock_is_shared_between_processes(tmp_path: Path) -> None:
    """While another process holds DATABASE-writer, a write of this one waits; it goes on as soon
    as the lock is let go (SQLite's busy handler is never what queues the workers)."""
    core = open_core(make_settings(tmp_path / "data"))
    try:
        lock_file = Path(core.db.engine.url.database + "-writer")
        holder = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(holder, fcntl.LOCK_EX)
        done = threading.Event()
        t = threading.Thread(target=lambda: (accounts.create_user(core, "bob", PASSWORD), done.set()))
        t.start()
        assert not done.wait(1.0), "a write went ahead while another process held the writer lock"
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        assert done.wait(10)
        t.join()
        assert accounts.get_user(core, "bob").name == "bob"
    finally:
        core.db.dispose()


def worker_of(server: LiveServer, conn: http.client.HTTPConnection) -> int:
    """The worker process that holds the server's end of this open client connection."""
    assert server.proc is not None and conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, remote_port = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            if local_port == server.port and remote_port == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in children(server.proc.pid):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def threads_of(pid: int) -> list[str]:
    return [(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()]


@pytest.mark.s3
def test_s3_serves_with_several_workers(tmp_path: Path) -> None:
    """With blob_store = s3 every worker opens its own S3 client after the fork (obstore's
    runtime does not survive one: the supervisor never starts it). Several workers answer, and a
    file uploaded through one reads back byte for byte through another."""
    from tests.engines import engine, new_bucket

    ceph = engine("ceph")
    srv = LiveServer(tmp_path / "data", free_port(), extra_env={
        "CARTABLE_WORKERS": "3", "CARTABLE_BLOB_STORE": "s3", "CARTABLE_S3_ENDPOINT": ceph.env["S3_ENDPOINT_URL"],
        "CARTABLE_S3_BUCKET": new_bucket(ceph), "CARTABLE_S3_ACCESS_KEY": ceph.env["AWS_ACCESS_KEY_ID"],
        "CARTABLE_S3_SECRET_KEY": ceph.env["AWS_SECRET_ACCESS_KEY"]})
    conns: dict[int, http.client.HTTPConnection] = {}
    try:
        srv.start()  # inside: a server whose workers hang is still stopped
        assert srv.proc is not None
        assert "with 3 workers" in (tmp_path / f"server-{srv.port}.log").read_text()
        wait_until("three workers run", lambda: len(children(srv.proc.pid)) == 3)
        assert srv.admin("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n").returncode == 0
        # Keep connections open until each worker holds one (the workers take turns accepting).
        host = srv.url.split("//", 1)[1].rsplit(":", 1)[0]
        for _ in range(300):
            conn = http.client.HTTPConnection(host, srv.port, timeout=30)
            conn.request("GET", "/_cartable/health")
            assert conn.getresponse().read() == b"ok\n"
            pid = worker_of(srv, conn)
            if pid in conns:
                conn.close()
            else:
                conns[pid] = conn
            if len(conns) == 3:
                break
        assert len(conns) >= 2, "one worker accepted every connection"
        auth = {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
        pids = list(conns)
        for up, down in ((pids[0], pids[1]), (pids[1], pids[0])):
            body = os.urandom(300_000)  # over inline_max: its chunk goes to the bucket
            path = f"{DAV}/from-{up}.bin"
            conns[up].request("PUT", path, body=body, headers=auth)
            put = conns[up].getresponse()
            put.read()
            assert put.status == 201
            conns[down].request("GET", path, headers=auth)
            answer = conns[down].getresponse()
            assert answer.status == 200 and answer.read() == body
            assert worker_of(srv, conns[up]) == up and worker_of(srv, conns[down]) == down
        assert not [t for t in threads_of(srv.proc.pid) if t.startswith("tokio")], \
            "obstore's runtime runs in the supervisor: forked workers would hang"
        fsck = srv.admin("fsck")
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        for conn in conns.values():
            conn.close()
        srv.stop()


@pytest.mark.s3
def test_s3_store_that_cannot_be_used_stops_a_fleet_at_start(tmp_path: Path) -> None:
    """The S3 check the supervisor runs in a child of its own still fails the start with one
    line and status 2, before any worker runs."""
    from tests.engines import engine

    ceph = engine("ceph")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTABLE_")}
    env.update({"CARTABLE_WORKERS": "3", "CARTABLE_BLOB_STORE": "s3",
                "CARTABLE_S3_ENDPOINT": ceph.env["S3_ENDPOINT_URL"],
                "CARTABLE_S3_BUCKET": f"absent-{os.getpid()}-{free_port()}",
                "CARTABLE_S3_ACCESS_KEY": ceph.env["AWS_ACCESS_KEY_ID"],
                "CARTABLE_S3_SECRET_KEY": ceph.env["AWS_SECRET_ACCESS_KEY"]})
    r = subprocess.run([*cartable_exe(), "serve", "--data", str(tmp_path / "data"), "--port", str(free_port())],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("cannot start: cannot list in s3 bucket 'absent-"), r.stderr
    assert "with 3 workers" not in r.stdout
