# SPDX-License-Identifier: EUPL-1.2
"""nextcloudcmd (Debian's `nextcloud-desktop-cmd`, 3.7.x) against a real `cartable serve`.

Every sync goes through a logging reverse proxy (tests/interop/ncsupport.py), so the requests the
client made can be asserted on and printed when something fails. Trees are compared byte for byte:
relative path (NFC) → sha256, on the two client folders and on the server (PROPFIND + GET)."""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool, start_live_server
from tests.interop.ncsupport import (
    DIR,
    LoggingProxy,
    MiB,
    client_env,
    local_tree,
    make_tree,
    nfc,
    run,
    server_tree,
    write_random,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

USER = "alice"


class Client:
    """One nextcloudcmd client folder, synced through the proxy."""

    def __init__(self, exe: str, folder: Path, proxy: LoggingProxy, home: Path) -> None:
        self.exe, self.folder, self.proxy = exe, folder, proxy
        folder.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        self.env = client_env() | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        self.last: subprocess.CompletedProcess[str] | None = None

    def sync(self, *extra: str) -> list[str]:
        """Run one sync; assert it succeeded; return the requests it made ("METHOD path -> status")."""
        self.proxy.clear()
        self.last = run([self.exe, "--non-interactive", "-u", USER, "-p", PASSWORD, *extra,
                         str(self.folder), self.proxy.url], env=self.env, timeout=600)
        log = [str(r) for r in self.proxy.log]
        assert self.last.returncode == 0, (
            f"nextcloudcmd exited with {self.last.returncode}\n--- requests:\n" + "\n".join(log[-60:])
            + "\n--- proxy errors: " + repr(self.proxy.errors)
            + "\n--- output (tail):\n" + (self.last.stdout + self.last.stderr)[-4000:])
        failed = [line for line in log if int(line.rsplit(" ", 1)[1]) >= 500]
        assert not failed, "server errors during the sync:\n" + "\n".join(failed)
        return log

    def tree(self) -> dict[str, str]:
        return local_tree(self.folder)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The default server: bulk_upload = auto does not offer bulk upload to nextcloudcmd 3.7.x,
    which cannot send an empty file in a bulk request (nextcloud/desktop#5824, fixed in 3.9), and
    these trees hold empty files. Bulk upload has its own tests in test_nextcloudcmd_bulk.py."""
    srv = start_live_server(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture
def proxy(live_server: LiveServer) -> Iterator[LoggingProxy]:
    with LoggingProxy(live_server.url) as p:
        yield p


@pytest.fixture
def clients(proxy: LoggingProxy, tmp_path: Path) -> tuple[Client, Client]:
    exe = require_tool("nextcloudcmd")
    return (Client(exe, tmp_path / "A", proxy, tmp_path / "homeA"),
            Client(exe, tmp_path / "B", proxy, tmp_path / "homeB"))


def on_server(live_server: LiveServer) -> dict[str, str]:
    return server_tree(live_server.url, (USER, PASSWORD), DAV)


def diff(a: dict[str, str], b: dict[str, str]) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    return f"only left: {only_a[:20]}\nonly right: {only_b[:20]}\ndifferent: {changed[:20]}"


def assert_same(a: dict[str, str], b: dict[str, str], what: str) -> None:
    assert a == b, f"{what} differ:\n{diff(a, b)}"


def upload_and_download(clients: tuple[Client, Client], live_server: LiveServer) -> dict[str, str]:
    """Scenario 1+2: the seeded tree up from A, checked on the server, then down into B."""
    a, b = clients
    want = make_tree(a.folder, n_files=200)
    assert sum(1 for v in want.values() if v != DIR) == 200
    log = a.sync()
    puts = [line for line in log if line.startswith("PUT ")]
    assert len(puts) == 200, f"{len(puts)} PUTs for 200 files"
    assert_same(a.tree(), want, "A after its first sync vs the tree written")
    assert_same(on_server(live_server), want, "server vs A's tree")
    b.sync()
    assert_same(b.tree(), want, "B after its first sync vs A's tree")
    assert (b.folder / "empty folder").is_dir() and not any((b.folder / "empty folder").iterdir())
    assert (b.folder / "empty-file.txt").stat().st_size == 0
    return want


# --------------------------------------------------------------------------------------------------
# scenarios 1 and 2


def test_first_sync_up_then_down(clients: tuple[Client, Client], live_server: LiveServer) -> None:
    want = upload_and_download(clients, live_server)
    # Unicode names written NFC and NFD arrived once each, under their NFC name.
    for name in ("docs/café.txt", "docs/naïve résumé.md", "Übung/Übungsblatt 1.txt",
                 "Übung/Lösungen/Lösung é.txt", "misc/日本語のファイル.txt", "misc/emoji 🎉 party.bin"):
        assert nfc(name) in want, name
    # A second sync of both folders changes nothing anywhere.
    for c in clients:
        c.sync()
    assert_same(clients[0].tree(), want, "A after a second sync")
    assert_same(clients[1].tree(), want, "B after a second sync")
    assert_same(on_server(live_server), want, "server after the second syncs")


def test_large_file_chunked_upload_and_download(clients: tuple[Client, Client], live_server: LiveServer) -> None:
    """A 60 MiB file goes up through /remote.php/dav/uploads/ (chunking) and comes down whole."""
    a, b = clients
    write_random(a.folder / "big" / "sixty.bin", 60 * MiB, random.Random(60))
    (a.folder / "big" / "small.txt").write_bytes(b"next to a big one\n")
    want = a.tree()
    log = a.sync()
    uploads = [line for line in log if "/remote.php/dav/uploads/" in line]
    assert any(line.startswith("MKCOL /remote.php/dav/uploads/alice/") for line in uploads), "\n".join(log)
    assert any(line.startswith("MOVE ") and line.split(" -> ")[0].endswith("/.file") for line in uploads), \
        "\n".join(log)
    assert not any(line.startswith("PUT /remote.php/dav/files/alice/big/sixty.bin") for line in log), \
        "the 60 MiB file was sent as one PUT instead of in chunks"
    assert_same(on_server(live_server), want, "server vs A")
    b.sync()
    assert_same(b.tree(), want, "B vs A")


# --------------------------------------------------------------------------------------------------
# scenario 3: edits, deletions, renames and folder moves, on either side


def test_changes_propagate_both_ways(clients: tuple[Client, Client], live_server: LiveServer) -> None:
    a, b = clients
    upload_and_download(clients, live_server)
    a.sync()  # settles the etags of the folders A created (the journal holds an empty etag after MKCOL)

    # -- local changes in A
    edited = next(p for p in sorted((a.folder / "docs").iterdir()) if p.name.endswith(".md"))
    edited.write_bytes(b"edited in A\n" * 100)
    victim = a.folder / "Übung" / "Übungsblatt 1.txt"
    victim.unlink()
    renamed_from = a.folder / "misc" / "日本語のファイル.txt"
    renamed_to = a.folder / "misc" / "renamed ファイル.txt"
    renamed_from.rename(renamed_to)
    moved_from = a.folder / "misc"
    moved_to = a.folder / "docs" / "misc moved"
    moved_from.rename(moved_to)  # a folder moved into another one
    want = a.tree()
    log = a.sync()
    methods = Counter(line.split(" ", 1)[0] for line in log)
    assert methods["PUT"] == 1, "expected only the edited file to be uploaded:\n" + "\n".join(log)
    assert methods["DELETE"] == 1, "\n".join(log)
    assert methods["MOVE"] >= 1, "renames should be MOVEs, not re-uploads:\n" + "\n".join(log)
    assert_same(on_server(live_server), want, "server vs A after A's local changes")
    log = b.sync()
    assert_same(b.tree(), want, "B vs A after A's local changes")
    gets = [line for line in log if line.startswith("GET /remote.php/")]
    assert len(gets) == 1, ("B should download only the edited file (a remote rename or folder move is a "
                            "local rename: a MOVE must keep the moved item's etag and fileid):\n" + "\n".join(log))

    # -- changes made directly on the server, then synced into B
    auth = (USER, PASSWORD)
    root = live_server.url + DAV
    with httpx.Client(auth=auth, timeout=60, trust_env=False) as h:
        r = h.put(f"{root}/Übung/new from server.txt", content=b"made on the server\n")
        assert r.status_code == 201, r.text
        r = h.put(f"{root}/docs/café.txt", content=b"edited on the server\n" * 7)
        assert r.status_code == 204, r.text
        r = h.request("DELETE", f"{root}/empty-file.txt")
        assert r.status_code == 204, r.text
        r = h.request("MOVE", f"{root}/docs/misc moved/renamed ファイル.txt",
                      headers={"Destination": root + quote("/docs/misc moved/renamed on server.txt")})
        assert r.status_code == 201, r.text
        r = h.request("MOVE", f"{root}/docs/misc moved",
                      headers={"Destination": root + quote(nfc("/Übung/Lösungen/misc twice moved"))})
        assert r.status_code == 201, r.text
        r = h.request("MKCOL", f"{root}/folder from server")
        assert r.status_code == 201, r.text
    want = on_server(live_server)
    log = b.sync()
    assert_same(b.tree(), want, "B vs the server after server-side changes")
    gets = sorted(line for line in log if line.startswith("GET /remote.php/"))
    assert len(gets) == 2, ("B should download only the new and the edited file; moves are local renames:\n"
                            + "\n".join(log))
    a.sync()
    assert_same(a.tree(), want, "A vs the server after server-side changes")
    assert_same(on_server(live_server), want, "server after both syncs")


# --------------------------------------------------------------------------------------------------
# scenario 4: the same file edited on both sides


CONFLICT_RE = re.compile(r"^naïve résumé \(conflicted copy .+\)\.md$")


def test_conflict_keeps_both_versions(clients: tuple[Client, Client], live_server: LiveServer) -> None:
    a, b = clients
    # A small tree is enough here.
    make_tree(a.folder, n_files=20, seed=4)
    a.sync()
    b.sync()
    assert_same(b.tree(), a.tree(), "B vs A")
    rel = Path("docs") / nfc("naïve résumé.md")
    (a.folder / rel).write_bytes(b"version A\n")
    a.sync()
    (b.folder / rel).write_bytes(b"version B, longer\n")
    b_log = b.sync()
    assert (b.folder / rel).read_bytes() == b"version A\n", "B should end with the server version"
    copies = [p for p in (b.folder / "docs").iterdir() if CONFLICT_RE.match(nfc(p.name))]
    assert len(copies) == 1, (sorted(p.name for p in (b.folder / "docs").iterdir()), b_log)
    assert copies[0].read_bytes() == b"version B, longer\n"
    # uploadConflictFiles is advertised: the conflict copy is on the server too, with B's content.
    server = on_server(live_server)
    conflict_key = nfc(f"docs/{copies[0].name}")
    assert conflict_key in server, ("the conflict copy was not uploaded:\n" + "\n".join(b_log))
    assert_same(server, b.tree(), "server vs B after the conflict")
    a.sync()
    assert_same(a.tree(), server, "A vs server after A syncs the conflict copy down")


# --------------------------------------------------------------------------------------------------
# scenario 5: a sync with nothing to do


def test_no_change_sync_is_four_requests(clients: tuple[Client, Client], live_server: LiveServer) -> None:
    a, b = clients
    upload_and_download(clients, live_server)
    a.sync()  # lists the folders A made once more (empty journal etag after MKCOL): see protocol §16
    for c in (a, b):
        for _ in range(2):
            log = c.sync()
            expected = ["GET /status.php -> 200", "GET /ocs/v1.php/cloud/capabilities?format=json -> 200",
                        "GET /ocs/v1.php/cloud/user?format=json -> 200",
                        f"PROPFIND {DAV}/ -> 207"]
            assert sorted(log) == sorted(expected), (f"no-change sync of {c.folder.name} made these requests:\n"
                                                    + "\n".join(log))
    depth = [r.header("Depth") for r in a.proxy.log if r.method == "PROPFIND"]
    assert depth == ["1"], depth
    assert os.path.exists(a.folder) and a.tree() == b.tree()
