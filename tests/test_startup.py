# SPDX-License-Identifier: EUPL-1.2
"""`cartable serve` as a new operator meets it: every startup failure is one line that says what to
fix (checked word for word) with exit status 2 and no traceback; nothing is created before the
port is known to be free; the data folder and database are private; logs in text or JSON lines."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, cartable_exe, free_port, require_tool

# The embedded instance's startup: its data folder and SQLite file (serve() gives no database URL).
pytestmark = [pytest.mark.slow, pytest.mark.local_only]

NOBODY = 65534


def serve(data: Path, *args: str, env: dict[str, str] | None = None, unprivileged: bool = False,
          port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `cartable serve` expecting it to stop by itself (a startup failure). ``unprivileged``:
    as root, without the capabilities that bypass file permissions (see ``not_writable``)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARTABLE_")}
    full_env.update(env or {})
    prefix: list[str] = []
    if unprivileged and os.geteuid() == 0:
        prefix = [require_tool("setpriv", "apt-get install util-linux"),
                  "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    command = [*prefix, *cartable_exe(), "serve", "--data", str(data), "--port", str(port or free_port()), *args]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=120)


def not_writable(folder: Path) -> None:
    """Make ``folder`` a folder this test's server may read but not write: another user's when
    the tests run as root (whose server then runs without permission-bypassing capabilities)."""
    folder.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
        folder.chmod(0o755)  # explicitly: the umask of this process may be anything
    else:
        folder.chmod(0o555)


def failed_with(r: subprocess.CompletedProcess[str], line: str) -> None:
    assert (r.returncode, r.stderr, r.stdout) == (2, line + "\n", ""), r.stderr


def test_data_path_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a folder")
    failed_with(serve(data), f"cannot start: the data folder {data} is a file, not a folder; choose another "
                             "with --data (or CARTABLE_DATA)")


def test_data_folder_not_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    not_writable(data)
    failed_with(serve(data, unprivileged=True),
                f"cannot start: the data folder {data} is not writable (Permission denied); give the user running "
                "cartable write access to it, or choose another with --data (or CARTABLE_DATA)")
    assert list(data.iterdir()) == []


def test_data_folder_cannot_be_created(tmp_path: Path) -> None:
    not_writable(tmp_path / "parent")
    data = tmp_path / "parent" / "data"
    failed_with(serve(data, unprivileged=True),
                f"cannot start: cannot create the data folder {data} (Permission denied); choose another with "
                "--data (or CARTABLE_DATA)")


def test_data_folder_cannot_be_reached(tmp_path: Path) -> None:
    not_writable(tmp_path / "closed")
    (tmp_path / "closed").chmod(0o700 if os.geteuid() == 0 else 0o000)  # nobody may search it
    data = tmp_path / "closed" / "data"
    try:
        failed_with(serve(data, unprivileged=True),
                    f"cannot start: cannot reach the data folder {data} (Permission denied); give the user running "
                    "cartable access to the folders above it, or choose another with --data (or CARTABLE_DATA)")
    finally:
        (tmp_path / "closed").chmod(0o755)


def test_existing_unreadable_data_folder_is_one_line_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    not_writable(data)
    data.chmod(0o300 if os.geteuid() == 0 else 0o000)  # neither readable nor (for others) writable
    try:
        r = serve(data, unprivileged=True)
    finally:
        data.chmod(0o755)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith(
        f"cannot start: the data folder {data} is not writable (Permission denied)"), r.stderr


def test_chunk_folder_is_a_file(tmp_path: Path) -> None:
    chunks = tmp_path / "chunks"
    chunks.write_text("")
    failed_with(serve(tmp_path / "data", env={"CARTABLE_BLOB_PATH": str(chunks)}),
                f"cannot start: the chunk folder {chunks} is a file, not a folder; choose another with blob_path "
                "(CARTABLE_BLOB_PATH)")


def test_chunk_folder_not_writable(tmp_path: Path) -> None:
    chunks = tmp_path / "chunks"
    not_writable(chunks)
    failed_with(serve(tmp_path / "data", env={"CARTABLE_BLOB_PATH": str(chunks)}, unprivileged=True),
                f"cannot start: the chunk folder {chunks} is not writable (Permission denied); give the user "
                "running cartable write access to it, or choose another with blob_path (CARTABLE_BLOB_PATH)")


def test_port_in_use_creates_nothing_and_prints_no_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = serve(data, port=port)
    failed_with(r, f"cannot start: cannot listen on 127.0.0.1:{port}: the port is already in use; stop the "
                   "program that uses it, or choose another port with --port")
    assert not data.exists(), "nothing is created before the port is known to be free"


def test_host_that_is_not_an_address_of_this_machine(tmp_path: Path) -> None:
    port = free_port()
    r = serve(tmp_path / "data", "--host", "192.0.2.1", port=port)  # TEST-NET-1: never a local address
    failed_with(r, f"cannot start: cannot listen on 192.0.2.1:{port}: '192.0.2.1' is not an address of this "
                   "machine; choose one of its addresses (or 127.0.0.1, or 0.0.0.0 for all) with --host")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("kind", ["missing", "folder", "not toml"])
def test_unreadable_configuration(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "cartable.toml"
    if kind == "folder":
        config.mkdir()
    elif kind == "not toml":
        config.write_text("port 8080\n")
    r = serve(tmp_path / "data", "--config", str(config))
    expected = {
        "missing": f"configuration error: cannot read the configuration file {config} (No such file or directory); "
                   "check its path and permissions",
        "folder": f"configuration error: cannot read the configuration file {config} (Is a directory); check its "
                  "path and permissions",
        "not toml": f"configuration error: the configuration file {config} is not valid TOML (Expected '=' after a "
                    "key in a key/value pair (at line 1, column 6))",
    }[kind]
    failed_with(r, expected)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("url", "line"), [
    ("nonsense", "cannot start: database_url 'nonsense' is not a database URL cartable understands; use "
                 "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
    ("foo://x/y", "cannot start: database_url 'foo://x/y' is not a database URL cartable understands; use "
                  "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
    # a database cartable does not support: refused by name, the password hidden
    ("mysql://u:hunter2@db.example/cartable", "cannot start: database_url 'mysql://u:***@db.example/cartable' is "
                                              "not a database URL cartable understands; use "
                                              "sqlite:////path/to/cartable.db or postgresql://user@host/dbname"),
])
def test_bad_database_url(tmp_path: Path, url: str, line: str) -> None:
    failed_with(serve(tmp_path / "data", env={"CARTABLE_DATABASE_URL": url}), line)


def test_corrupt_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "cartable.db").write_bytes(b"this is not a database\n" * 300)
    (data / "cartable.db").chmod(0o600)
    failed_with(serve(data), f"cannot start: the database {data / 'cartable.db'} is damaged or is not a cartable "
                             "database (file is not a database); restore it from a backup (see docs/operations.md)")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    failed_with(serve(tmp_path / "data", env={"CARTABLE_LOG_FORMAT": "xml"}),
                "configuration error: log_format 'xml' is not one of: text, json")


def test_bad_admin_account_settings(tmp_path: Path) -> None:
    failed_with(serve(tmp_path / "data", env={"CARTABLE_ADMIN_PASSWORD": "short"}),
                "cannot start: cannot create the admin account 'admin': the password must have at least 8 "
                "characters")
    failed_with(serve(tmp_path / "data2", env={"CARTABLE_ADMIN_USER": "../root"}),
                "cannot start: cannot create the admin account '../root': user name '../root' must be 1-64 "
                "letters, digits or . _ @ + - and start with a letter or digit")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_is_private_to_the_server(tmp_path: Path) -> None:
    srv = LiveServer(tmp_path / "data", free_port())
    srv.start()
    try:
        r = srv.admin("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
        big = bytes(range(256)) * 4096  # 1 MiB: chunks, not inline
        assert httpx.put(f"{srv.url}{DAV}/big.bin", content=big, auth=("alice", PASSWORD)).status_code == 201
        data = srv.data
        assert mode(data) == 0o700 and mode(data / "chunks") == 0o700
        for name in ("cartable.db", "cartable.db-wal", "cartable.db-shm"):
            assert mode(data / name) == 0o600, name
        chunk_files = [p for p in (data / "chunks").rglob("*") if p.is_file()]
        chunk_dirs = [p for p in (data / "chunks").rglob("*") if p.is_dir()]
        assert chunk_files and chunk_dirs
        assert {mode(p) & 0o077 for p in chunk_files + chunk_dirs} == {0}, "files made later are private too"
    finally:
        srv.stop()


def test_world_readable_data_is_fixed_and_said(tmp_path: Path) -> None:
    srv = LiveServer(tmp_path / "data", free_port())
    srv.start()
    srv.stop()
    data, db = srv.data, srv.data / "cartable.db"
    data.chmod(0o755)
    db.chmod(0o644)
    srv.start()
    srv.stop()
    assert (mode(data), mode(db)) == (0o750, 0o640)
    log = (tmp_path / f"server-{srv.port}.log").read_text()
    assert (f"WARNING cartable: {data} could be read by other users of this machine (mode 0755); cartable "
            "changed it to 0750") in log
    assert (f"WARNING cartable: {db} could be read by other users of this machine (mode 0644); cartable "
            "changed it to 0640") in log


class LoggingServer(LiveServer):
    log_format = "text"

    def env(self) -> dict[str, str]:
        return {**super().env(), "CARTABLE_LOG_LEVEL": "info", "CARTABLE_LOG_FORMAT": self.log_format}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_request_log_of_a_running_server(tmp_path: Path, log_format: str) -> None:
    srv = LoggingServer(tmp_path / "data", free_port())
    srv.log_format = log_format
    srv.start()
    try:
        r = httpx.request("PROPFIND", f"{srv.url}/remote.php/dav/files/admin/?secret=abc",
                          auth=("admin", srv.admin_password), headers={"Depth": "0", "X-Request-ID": "op-7"})
        assert r.status_code == 207
    finally:
        srv.stop()
    log = (tmp_path / f"server-{srv.port}.log").read_text()
    assert srv.admin_password not in log and "secret=abc" not in log
    if log_format == "text":
        assert ' admin "PROPFIND /remote.php/dav/files/admin/" 207 ' in log and "rid=op-7" in log
        return
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records, log
    access = [x for x in records if x["logger"] == "cartable.access" and x["method"] == "PROPFIND"]
    assert len(access) == 1
    assert {k: access[0][k] for k in ("path", "status", "user", "client", "request_id")} == {
        "path": "/remote.php/dav/files/admin/", "status": 207, "user": "admin", "client": "127.0.0.1",
        "request_id": "op-7"}
    assert any(x["logger"].startswith("uvicorn") for x in records), "the HTTP server's own lines are JSON too"
    non_json = [line for line in log.splitlines() if line and not line.startswith("{")]
    assert all(line.startswith("cartable serving ") for line in non_json), non_json
