# SPDX-License-Identifier: EUPL-1.2
"""rclone (Debian's 1.60) with its WebDAV backend, `vendor = nextcloud`, against a real `cartable serve`:
copy up and down, `rclone check` (SHA1 from oc:checksums), modification times, a 200 MiB single PUT,
and server-side moves (full-URL Destination, `Overwrite: F`). rclone talks to the server through the
logging proxy so that a failure shows the requests."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool
from tests.interop.ncsupport import DIR, LoggingProxy, MiB, local_tree, make_tree, nfc, run, server_tree, write_random

pytestmark = [pytest.mark.interop, pytest.mark.slow]

USER = "alice"


class Rclone:
    def __init__(self, exe: str, proxy: LoggingProxy, home: Path) -> None:
        self.exe, self.proxy = exe, proxy
        home.mkdir(parents=True, exist_ok=True)
        (home / "rclone.conf").write_text("")
        obscured = run([exe, "obscure", PASSWORD]).stdout.strip()
        assert obscured, "rclone obscure printed nothing"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("RCLONE_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        self.env.update(HOME=str(home), RCLONE_CONFIG=str(home / "rclone.conf"),
                        RCLONE_CONFIG_CART_TYPE="webdav", RCLONE_CONFIG_CART_URL=f"{proxy.url}{DAV}/",
                        RCLONE_CONFIG_CART_VENDOR="nextcloud", RCLONE_CONFIG_CART_USER=USER,
                        RCLONE_CONFIG_CART_PASS=obscured)

    def __call__(self, *args: str, ok: bool = True, timeout: float = 600, stdout_only: bool = False) -> str:
        self.proxy.clear()
        p = run([self.exe, *args], env=self.env, timeout=timeout)
        if ok:
            log = [f"{r} Destination={r.header('Destination')} Overwrite={r.header('Overwrite')}"
                   if r.method in ("MOVE", "COPY") else str(r) for r in self.proxy.log]
            assert p.returncode == 0, (f"rclone {' '.join(args)} exited with {p.returncode}:\n{p.stderr[-4000:]}"
                                       "\n--- requests:\n" + "\n".join(log[-60:]))
        return p.stdout if stdout_only else p.stdout + p.stderr


@pytest.fixture
def rclone(live_server: LiveServer, tmp_path: Path) -> Iterator[Rclone]:
    exe = require_tool("rclone")
    with LoggingProxy(live_server.url) as proxy:
        yield Rclone(exe, proxy, tmp_path / "home")


def on_server(live_server: LiveServer, sub: str = "") -> dict[str, str]:
    return server_tree(live_server.url, (USER, PASSWORD), DAV + "/" + sub)


def seeded_mtimes(root: Path, seed: int) -> dict[str, int]:
    """Give every file a distinct whole-second mtime in the past; return relative path (NFC) → mtime."""
    rng = random.Random(seed)
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in sorted(files):
            p = Path(dirpath) / f
            t = rng.randint(1_000_000_000, 1_700_000_000)
            os.utime(p, (t, t))
            out[nfc(p.relative_to(root).as_posix())] = t
    return out


def test_copy_check_download_and_mtimes(rclone: Rclone, live_server: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    want = make_tree(src, n_files=80, seed=11)
    mtimes = seeded_mtimes(src, 12)

    rclone("copy", "--create-empty-src-dirs", str(src), "cart:up")
    assert on_server(live_server, "up") == want
    # SHA1 (oc:checksums) and sizes agree, whichever side is the source; --download compares bytes.
    assert "0 differences found" in rclone("check", str(src), "cart:up")
    assert "0 differences found" in rclone("check", "cart:up", str(src))
    assert "0 differences found" in rclone("check", "--download", str(src), "cart:up")

    # Modification times set at upload (X-OC-Mtime) are kept: as rclone lists them ...
    listed = json.loads(rclone("lsjson", "-R", "--files-only", "cart:up", stdout_only=True))
    assert len(listed) == sum(1 for v in want.values() if v != DIR)
    for entry in listed:
        got = int(datetime.fromisoformat(entry["ModTime"].replace("Z", "+00:00")).timestamp())
        assert got == mtimes[nfc(entry["Path"])], (entry, mtimes[nfc(entry["Path"])])
    # ... and as the server answers getlastmodified.
    with httpx.Client(auth=(USER, PASSWORD), timeout=60, trust_env=False) as h:
        for rel in ("docs/café.txt", "Übung/Lösungen/Lösung é.txt", "empty-file.txt"):
            r = h.request("PROPFIND", f"{live_server.url}{DAV}/up/{quote(rel)}", headers={"Depth": "0"},
                          content=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
                                  b"<d:getlastmodified/></d:prop></d:propfind>")
            assert r.status_code == 207, (rel, r.status_code, r.text[:300])
            text = r.text.split("getlastmodified>", 1)[1].split("<", 1)[0]
            assert int(parsedate_to_datetime(text).timestamp()) == mtimes[nfc(rel)], (rel, text)

    # Down into a new folder: identical, empty folder included, mtimes restored locally.
    dst = tmp_path / "dst"
    rclone("copy", "--create-empty-src-dirs", "cart:up", str(dst))
    assert local_tree(dst) == want
    for rel, t in mtimes.items():
        matches = [p for p in dst.rglob("*") if nfc(p.relative_to(dst).as_posix()) == rel]
        assert len(matches) == 1 and int(matches[0].stat().st_mtime) == t, rel


def test_200_mib_single_put(rclone: Rclone, live_server: LiveServer, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    write_random(big, 200 * MiB, random.Random(200))
    h = hashlib.sha256()
    with open(big, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    rclone("copyto", str(big), "cart:large/big.bin", timeout=900)
    puts = [r for r in rclone.proxy.log if r.method == "PUT"]
    assert [r.path for r in puts] == [f"{DAV}/large/big.bin"], [str(r) for r in rclone.proxy.log]
    got = hashlib.sha256()
    n = 0
    with httpx.Client(auth=(USER, PASSWORD), timeout=300, trust_env=False) as c:
        with c.stream("GET", f"{live_server.url}{DAV}/large/big.bin") as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes(MiB):
                got.update(chunk)
                n += len(chunk)
    assert n == 200 * MiB and got.hexdigest() == h.hexdigest()
    assert "0 differences found" in rclone("check", str(tmp_path), "cart:large", "--include", "big.bin")


def test_moveto_and_move(rclone: Rclone, live_server: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    want = make_tree(src, n_files=30, seed=21)
    rclone("copy", "--create-empty-src-dirs", str(src), "cart:m")
    assert on_server(live_server, "m") == want

    # A file, to a new name in another (new) folder.
    rclone("moveto", "cart:m/docs/café.txt", "cart:m/elsewhere/café renamed.txt")
    moves = [r for r in rclone.proxy.log if r.method == "MOVE"]
    assert len(moves) == 1, [str(r) for r in rclone.proxy.log]
    assert moves[0].header("Destination", ).startswith(rclone.proxy.url), moves[0].header("Destination")
    assert moves[0].header("Overwrite") == "F"
    assert not [r for r in rclone.proxy.log if r.method in ("PUT", "GET")], "moveto should be server-side"
    want[nfc("elsewhere")] = DIR
    want[nfc("elsewhere/café renamed.txt")] = want.pop(nfc("docs/café.txt"))
    assert on_server(live_server, "m") == want

    # A folder, with its content, into a new place (DirMove: one server-side MOVE).
    rclone("move", "cart:m/Übung", "cart:m/archive/Übung 2020")
    assert [r.method for r in rclone.proxy.log].count("MOVE") >= 1, [str(r) for r in rclone.proxy.log]
    assert not [r for r in rclone.proxy.log if r.method in ("PUT", "GET")], "move should be server-side"
    moved = {k: v for k, v in want.items() if k == nfc("Übung") or k.startswith(nfc("Übung/"))}
    for k in moved:
        del want[k]
    want[nfc("archive")] = DIR
    for k, v in moved.items():
        want[nfc("archive/Übung 2020") + k[len(nfc("Übung")):]] = v
    got = on_server(live_server, "m")
    # rclone's `move` may leave the emptied source folder behind (it does without --delete-empty-src-dirs).
    got.pop(nfc("Übung"), None)
    assert got == want, sorted(set(got) ^ set(want))
    # And rclone agrees with a local copy of the expected layout.
    check = tmp_path / "expected"
    shutil.copytree(src, check)
    (check / "elsewhere").mkdir()
    os.rename(check / "docs" / [p.name for p in (check / "docs").iterdir() if nfc(p.name) == nfc("café.txt")][0],
              check / "elsewhere" / "café renamed.txt")
    (check / "archive").mkdir()
    os.rename(check / nfc("Übung"), check / "archive" / "Übung 2020")
    assert "0 differences found" in rclone("check", str(check), "cart:m")


def test_bearer_token_app_password(rclone: Rclone, live_server: LiveServer, tmp_path: Path) -> None:
    """rclone's `bearer_token` with an app password alone (no user, no password): Nextcloud
    accepts client tokens that way, and so does cartable."""
    token = live_server.admin("apppassword", "add", USER, "rclone").stdout.strip()
    assert len(token) == 72
    for key in ("RCLONE_CONFIG_CART_USER", "RCLONE_CONFIG_CART_PASS"):
        rclone.env.pop(key)
    rclone.env["RCLONE_CONFIG_CART_BEARER_TOKEN"] = token
    src = tmp_path / "src"
    want = make_tree(src, n_files=12, seed=21)
    rclone("copy", "--create-empty-src-dirs", str(src), "cart:bearer")
    assert on_server(live_server, "bearer") == want
    sent = [r.header("Authorization") or "" for r in rclone.proxy.log]
    assert sent and all(a == f"Bearer {token}" for a in sent), set(sent)
    assert "0 differences found" in rclone("check", "--download", str(src), "cart:bearer")
    dst = tmp_path / "dst"
    rclone("copy", "--create-empty-src-dirs", "cart:bearer", str(dst))
    assert local_tree(dst) == want
    # A wrong token is refused, and rclone says so.
    rclone.env["RCLONE_CONFIG_CART_BEARER_TOKEN"] = "x" * 72
    assert "401" in rclone("lsf", "cart:bearer", ok=False)
