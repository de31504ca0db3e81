# SPDX-License-Identifier: EUPL-1.2
"""owncloudcmd (Debian's `owncloud-client-cmd`, 2.11) against a real `cartable serve`: a tree up, then
down into a second folder, identical; a > 10 MB file through the chunked-upload protocol; and names
stored NFD on disk (owncloudcmd, unlike nextcloudcmd, PROPFINDs every file and folder it just made
and requires the answer's href to start with the exact request path it sent).

Debian's build aborts ("Cannot load system exclude list") without `--exclude FILE`: we pass an
empty one. Every run goes through the logging proxy and has a deadline, so a hang fails loudly with
the requests made so far."""

from __future__ import annotations

import random
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool
from tests.interop.ncsupport import LoggingProxy, MiB, client_env, local_tree, make_tree, server_tree, write_random

pytestmark = [pytest.mark.interop, pytest.mark.slow]

USER = "alice"


class OcClient:
    def __init__(self, exe: str, folder: Path, proxy: LoggingProxy, home: Path) -> None:
        self.exe, self.folder, self.proxy = exe, folder, proxy
        folder.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        self.exclude = home / "exclude.lst"
        self.exclude.write_text("")
        self.env = client_env() | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}

    def sync(self, timeout: float = 180) -> list[str]:
        self.proxy.clear()
        cmd = [self.exe, "--non-interactive", "--exclude", str(self.exclude), "-u", USER, "-p", PASSWORD,
               str(self.folder), self.proxy.url]
        try:
            p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            rc, out = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out = None, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        log = [str(r) for r in self.proxy.log]
        warnings = [line for line in out.splitlines() if "warning" in line or "critical" in line
                    if "Missing permissions" not in line]
        assert rc == 0, (f"owncloudcmd {'hung (killed after %d s)' % timeout if rc is None else 'exited with %s' % rc}"
                         "\n--- requests:\n" + "\n".join(log[-40:]) + "\n--- client warnings:\n"
                         + "\n".join(warnings[-20:]) + "\n--- output (tail):\n" + out[-2000:])
        failed = [line for line in log if int(line.rsplit(" ", 1)[1]) >= 500]
        assert not failed, "server errors during the sync:\n" + "\n".join(failed)
        return log


@pytest.fixture
def clients(live_server: LiveServer, tmp_path: Path) -> Iterator[tuple[OcClient, OcClient]]:
    exe = require_tool("owncloudcmd")
    with LoggingProxy(live_server.url) as proxy:
        yield (OcClient(exe, tmp_path / "A", proxy, tmp_path / "homeA"),
               OcClient(exe, tmp_path / "B", proxy, tmp_path / "homeB"))


def on_server(live_server: LiveServer) -> dict[str, str]:
    return server_tree(live_server.url, (USER, PASSWORD), DAV)


def test_tree_up_then_down(clients: tuple[OcClient, OcClient], live_server: LiveServer) -> None:
    """Scenarios 1 and 2 with every name written NFC on disk (see test_nfd_names for NFD)."""
    a, b = clients
    want = make_tree(a.folder, n_files=120, seed=7, nfd=False)
    log = a.sync()
    assert sum(1 for line in log if line.startswith("PUT ")) == 120, "\n".join(log)
    assert local_tree(a.folder) == want
    assert on_server(live_server) == want
    b.sync()
    assert local_tree(b.folder) == want
    assert (b.folder / "empty folder").is_dir()
    for c in (a, b):  # nothing left to do on either side
        log = c.sync()
        assert not [line for line in log if line.split(" ", 1)[0] in ("PUT", "MKCOL", "DELETE", "MOVE")], log


def test_large_file_chunked(clients: tuple[OcClient, OcClient], live_server: LiveServer) -> None:
    """A 24 MiB file (> 10 MB: owncloudcmd uses /remote.php/dav/uploads/) up and down, byte for byte."""
    a, b = clients
    write_random(a.folder / "big" / "large.bin", 24 * MiB, random.Random(24))
    (a.folder / "big" / "small.txt").write_bytes(b"small\n")
    want = local_tree(a.folder)
    log = a.sync()
    assert any(line.startswith(f"MKCOL /remote.php/dav/uploads/{USER}/") for line in log), "\n".join(log)
    assert on_server(live_server) == want
    b.sync()
    assert local_tree(b.folder) == want


def test_nfd_names(clients: tuple[OcClient, OcClient], live_server: LiveServer) -> None:
    """A file and a folder whose names are NFD on disk (as macOS writes them, or a Linux tool may)."""
    a, b = clients
    (a.folder / unicodedata.normalize("NFD", "Zoë")).mkdir()
    (a.folder / unicodedata.normalize("NFD", "Zoë") / "inside.txt").write_bytes(b"in a NFD folder\n")
    (a.folder / unicodedata.normalize("NFD", "café.txt")).write_bytes(b"NFD file name\n")
    want = local_tree(a.folder)
    a.sync(timeout=45)
    assert on_server(live_server) == want
    b.sync(timeout=45)
    assert local_tree(b.folder) == want
