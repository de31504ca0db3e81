# SPDX-License-Identifier: EUPL-1.2
"""nextcloudcmd and bulk upload (dav.bulkupload), counted on the wire by the logging proxy.

nextcloudcmd 3.7.x (Debian's) cannot put an empty file in a bulk request: it aborts the whole
POST mid-body and blacklists its files for a while (nextcloud/desktop#5824, fixed in 3.9). The
server sees an aborted request and writes nothing half; the last test checks exactly that."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool, start_live_server
from tests.interop.ncsupport import LoggingProxy, client_env, local_tree, run, server_tree

pytestmark = [pytest.mark.interop, pytest.mark.slow]

USER = "alice"


def small_files(root: Path, n: int, *, empty: int = 0) -> dict[str, str]:
    """n small files (1..4000 bytes, never empty) in 10 folders, plus `empty` empty files."""
    rng = random.Random(7)
    for i in range(n):
        folder = root / f"dir{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"small {i:04d}.txt").write_bytes(rng.randbytes(rng.randint(1, 4000)))
    for i in range(empty):
        (root / f"dir{i % 10}" / f"empty {i}.txt").write_bytes(b"")
    return local_tree(root)


def sync(exe: str, folder: Path, proxy: LoggingProxy, home: Path) -> tuple[int, list[str]]:
    proxy.clear()
    folder.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env = client_env() | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    r = run([exe, "--non-interactive", "-u", USER, "-p", PASSWORD, str(folder), proxy.url], env=env, timeout=600)
    return r.returncode, [str(x) for x in proxy.log]


@pytest.fixture
def bulk_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = start_live_server(tmp_path / "data-bulk", bulk_upload="true")
    yield srv
    srv.stop()


def test_first_sync_of_many_small_files_goes_up_in_bulk(bulk_server: LiveServer, tmp_path: Path) -> None:
    """600 small new files go up in bulk POSTs of at most 100 files and no PUT; every file
    arrives byte for byte and a second client gets them all. The same first sync against a
    server with bulk_upload = false makes one PUT per file."""
    exe = require_tool("nextcloudcmd")
    want = small_files(tmp_path / "A", 600)
    with LoggingProxy(bulk_server.url) as proxy:
        rc, log = sync(exe, tmp_path / "A", proxy, tmp_path / "homeA")
        assert rc == 0, "\n".join(log[-40:])
        methods = Counter(line.split(" ", 1)[0] for line in log)
        bulks = [line for line in log if line.startswith("POST /remote.php/dav/bulk ")]
        assert len(bulks) >= 6 and all(line.endswith(" 200") for line in bulks), "\n".join(log)
        assert methods["PUT"] == 0, "\n".join(line for line in log if line.startswith("PUT"))
        assert len(log) < 100, f"{len(log)} requests for 600 files"
        assert server_tree(bulk_server.url, (USER, PASSWORD), DAV) == want
        rc, _ = sync(exe, tmp_path / "B", proxy, tmp_path / "homeB")
        assert rc == 0 and local_tree(tmp_path / "B") == want

    plain = start_live_server(tmp_path / "data-plain", bulk_upload="false")
    try:
        with LoggingProxy(plain.url) as proxy:
            small_files(tmp_path / "C", 600)
            rc, log = sync(exe, tmp_path / "C", proxy, tmp_path / "homeC")
        assert rc == 0
        assert Counter(line.split(" ", 1)[0] for line in log)["PUT"] == 600
        assert not any("/remote.php/dav/bulk" in line for line in log)
    finally:
        plain.stop()


def test_an_aborted_bulk_request_leaves_nothing_half_written(bulk_server: LiveServer, tmp_path: Path) -> None:
    """With empty files among them, nextcloudcmd 3.7.x aborts some bulk POSTs mid-body (its own
    bug). Whatever the client managed, every file on the server is whole and equal to the local
    one, no empty file appears in place of a real one, and fsck finds nothing wrong."""
    exe = require_tool("nextcloudcmd")
    want = small_files(tmp_path / "A", 300, empty=5)
    with LoggingProxy(bulk_server.url) as proxy:
        sync(exe, tmp_path / "A", proxy, tmp_path / "homeA")
    got = server_tree(bulk_server.url, (USER, PASSWORD), DAV)
    assert set(got) <= set(want)
    assert all(got[k] == want[k] for k in got), [k for k in got if got[k] != want[k]]
    r = bulk_server.admin("fsck")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
