# SPDX-License-Identifier: EUPL-1.2
"""The `cartable` command as an operator uses it: first start, admin commands on the data folder
of a running server, configuration errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from cartable.config import ConfigError, load_settings
from cartable.server import open_blobs
from tests.conftest import DAV, PASSWORD, LiveServer, cartable_exe, free_port, make_settings

pytestmark = pytest.mark.slow


def test_first_start_generates_and_prints_the_admin_password(tmp_path: Path) -> None:
    srv = LiveServer(tmp_path / "data", free_port(), admin_password="")
    srv.start()
    try:
        log = (tmp_path / f"server-{srv.port}.log").read_text()
        line = next(x for x in log.splitlines() if "Created admin account 'admin' with password:" in x)
        password = line.rsplit(": ", 1)[1].strip()
        assert len(password) >= 16
        r = httpx.request("PROPFIND", f"{srv.url}/remote.php/dav/files/admin/", auth=("admin", password),
                          headers={"Depth": "0"})
        assert r.status_code == 207
    finally:
        srv.stop()
    srv.start()  # a second start creates nothing and prints no password
    srv.stop()
    assert (tmp_path / f"server-{srv.port}.log").read_text().count("Created admin account") == 1


def test_admin_commands_work_while_the_server_runs(live_server: LiveServer) -> None:
    url = f"{live_server.url}{DAV}/"
    assert httpx.request("PROPFIND", url, auth=("alice", PASSWORD), headers={"Depth": "0"}).status_code == 207
    listing = live_server.admin("user", "list")
    assert listing.returncode == 0 and "alice" in listing.stdout and "admin" in listing.stdout

    r = live_server.admin("user", "passwd", "alice", "--password-stdin", input="brand-new-pw\n")
    assert r.returncode == 0, r.stderr
    assert httpx.request("PROPFIND", url, auth=("alice", PASSWORD), headers={"Depth": "0"}).status_code == 401
    assert httpx.request("PROPFIND", url, auth=("alice", "brand-new-pw"), headers={"Depth": "0"}).status_code == 207

    assert live_server.admin("user", "quota", "alice", "1000").returncode == 0
    r = httpx.put(f"{url}big.bin", content=b"x" * 5000, auth=("alice", "brand-new-pw"))
    assert r.status_code == 507
    assert live_server.admin("user", "quota", "alice", "default").returncode == 0
    assert httpx.put(f"{url}big.bin", content=b"x" * 5000, auth=("alice", "brand-new-pw")).status_code == 201

    token = live_server.admin("apppassword", "add", "alice", "laptop").stdout.strip()
    assert len(token) == 72
    assert httpx.get(f"{url}big.bin", auth=("alice", token)).content == b"x" * 5000
    app_id = live_server.admin("apppassword", "list", "alice").stdout.split("\t")[0]
    assert live_server.admin("apppassword", "revoke", "alice", app_id).returncode == 0
    assert httpx.get(f"{url}big.bin", auth=("alice", token)).status_code == 401

    assert live_server.admin("user", "disable", "alice").returncode == 0
    assert httpx.get(f"{url}big.bin", auth=("alice", "brand-new-pw")).status_code == 401
    assert live_server.admin("user", "enable", "alice").returncode == 0
    assert httpx.get(f"{url}big.bin", auth=("alice", "brand-new-pw")).status_code == 200

    fsck = live_server.admin("fsck")
    assert fsck.returncode == 0 and "OK" in fsck.stdout, fsck.stdout + fsck.stderr
    assert live_server.admin("user", "delete", "alice", "--yes").returncode == 0
    assert httpx.get(f"{url}big.bin", auth=("alice", "brand-new-pw")).status_code == 401
    assert live_server.admin("fsck").returncode == 0


def test_admin_errors_are_clear(live_server: LiveServer) -> None:
    r = live_server.admin("user", "add", "alice", "--password-stdin", input="whatever-pw\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = live_server.admin("user", "add", "bob", "--password-stdin", input="short\n")
    assert r.returncode == 1 and "at least 8" in r.stderr
    r = live_server.admin("user", "add", "../evil", "--password-stdin", input="long-enough-pw\n")
    assert r.returncode == 1 and "user name" in r.stderr
    r = live_server.admin("user", "passwd", "nobody", "--password-stdin", input="long-enough-pw\n")
    assert r.returncode == 1 and "no user named" in r.stderr
    r = live_server.admin("user", "quota", "alice", "lots")
    assert r.returncode == 1 and "not a size" in r.stderr
    r = live_server.admin("gc", "--grace", "1")
    assert r.returncode == 1


def test_fsck_reports_a_missing_chunk(live_server: LiveServer) -> None:
    url = f"{live_server.url}{DAV}/"
    data = bytes(range(256)) * 4096  # 1 MiB: stored as a chunk, not inline
    assert httpx.put(f"{url}f.bin", content=data, auth=("alice", PASSWORD)).status_code == 201
    store = open_blobs(make_settings(live_server.data))  # the server's chunk store, on any test backend
    chunks = [d for d, _mtime in store.iter_digests()]
    assert chunks
    store.delete_many(chunks)
    r = live_server.admin("fsck")
    assert r.returncode == 1 and "missing from the chunk store" in r.stdout


def test_config_file_env_and_options(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 9000\ndefault_quota = "2GB"\n')
    s = load_settings(cfg, {"host": "0.0.0.0"}, environ={"CARTABLE_PORT": "9100"})
    assert (s.port, s.host, s.default_quota) == (9100, "0.0.0.0", 2_000_000_000)
    cfg.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match="gc_grace_seconds"):
        load_settings(None, environ={"CARTABLE_GC_GRACE_SECONDS": "1"})
    r = subprocess.run([*cartable_exe(), "serve", "--data", str(tmp_path / "d")],
                       env={"CARTABLE_DEFAULT_QUOTA": "many", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "default_quota" in r.stderr
