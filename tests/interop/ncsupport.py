# SPDX-License-Identifier: EUPL-1.2
"""Helpers for the real-client interop tests (nextcloudcmd, owncloudcmd, rclone) and the Nextcloud
bench: a logging reverse proxy, seeded test trees, and byte-for-byte tree digests of a local folder
or of the server (PROPFIND Depth 1, recursively, + GET)."""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import subprocess
import threading
import unicodedata
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree as ET

import httpx

__all__ = ["DIR", "LoggedRequest", "LoggingProxy", "client_env", "local_tree", "make_tree", "nfc", "run",
           "server_tree", "sha256_file", "write_random"]

DIR = "<dir>"  # the digest value of a folder
KiB, MiB = 1024, 1024 * 1024
# What the sync clients keep in the synced folder itself: never part of the data.
CLIENT_FILES = (".sync_", "._sync_", ".nextcloudsync.log", ".owncloudsync.log", ".csync_journal")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def client_env() -> dict[str, str]:
    """Environment for the Qt clients: headless, no proxy picked up from the host, a private HOME
    is set by the caller when needed."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8", LC_ALL="C.UTF-8", no_proxy="*", NO_PROXY="*")
    return env


# --------------------------------------------------------------------------------------------------
# trees


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def is_client_file(name: str) -> bool:
    return name.startswith(CLIENT_FILES)


def local_tree(root: Path) -> dict[str, str]:
    """relative path (NFC, '/'-separated) → sha256 of the content, or DIR for a folder."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        for d in dirnames:
            out[nfc((rel_dir / d).as_posix())] = DIR
        for f in filenames:
            if rel_dir == Path(".") and is_client_file(f):
                continue
            key = nfc((rel_dir / f).as_posix())
            assert key not in out, f"two local names equal after NFC: {key!r}"
            out[key] = sha256_file(Path(dirpath) / f)
    return out


PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>'
                 b"<d:resourcetype/><d:getcontentlength/></d:prop></d:propfind>")


def server_tree(base_url: str, auth: tuple[str, str], dav_root: str) -> dict[str, str]:
    """The same digest as local_tree, from the server: PROPFIND Depth 1 on every folder, GET every file."""
    out: dict[str, str] = {}
    root_path = dav_root.rstrip("/") + "/"
    with httpx.Client(base_url=base_url, auth=auth, timeout=120, trust_env=False) as c:
        todo = [""]
        while todo:
            rel = todo.pop()
            url = root_path + quote(rel)
            r = c.request("PROPFIND", url, content=PROPFIND_BODY, headers={"Depth": "1"})
            assert r.status_code == 207, (url, r.status_code, r.text[:500])
            for resp in ET.fromstring(r.content).findall("{DAV:}response"):
                href = unquote(urlsplit(resp.findtext("{DAV:}href") or "").path)
                assert href.startswith(root_path), (href, root_path)
                child = href[len(root_path):].strip("/")
                if child == rel.strip("/"):
                    continue
                is_dir = resp.find(".//{DAV:}resourcetype/{DAV:}collection") is not None
                key = nfc(child)
                assert key not in out, f"two server names equal after NFC: {key!r}"
                if is_dir:
                    out[key] = DIR
                    todo.append(child + "/")
                else:
                    h = hashlib.sha256()
                    with c.stream("GET", root_path + quote(child)) as g:
                        assert g.status_code == 200, (child, g.status_code)
                        for chunk in g.iter_bytes(MiB):
                            h.update(chunk)
                    out[key] = h.hexdigest()
    return out


def write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(rng.randbytes(n))
            left -= n


# Names deliberately stored on disk in one normal form or the other (the NFC of all of them is
# distinct within each folder).
UNICODE_NAMES = [
    ("docs", unicodedata.normalize("NFD", "café.txt")),                  # NFD file name
    ("docs", unicodedata.normalize("NFC", "naïve résumé.md")),           # NFC file name
    (unicodedata.normalize("NFC", "Übung"), "Übungsblatt 1.txt"),        # NFC folder
    (unicodedata.normalize("NFC", "Übung") + "/" + unicodedata.normalize("NFD", "Lösungen"),
     unicodedata.normalize("NFD", "Lösung é.txt")),                      # NFD folder and file in it
    ("misc", "日本語のファイル.txt"),
    ("misc", "emoji 🎉 party.bin"),
    ("misc", "spaces and (parens) [x] + ; = & ' ,.txt"),
]


def make_tree(root: Path, n_files: int = 200, seed: int = 20261122, max_size: int = 200 * KiB,
              depth: int = 3, width: int = 3, nfd: bool = True) -> dict[str, str]:
    """A seeded tree: n_files files (sizes 0..max_size, skewed small) in nested folders, the Unicode
    names above (all written NFC when nfd is False), one empty file and one empty folder.
    Returns local_tree(root)."""
    rng = random.Random(seed)
    folders = [Path("")]
    frontier = [Path("")]
    for level in range(depth):
        nxt = []
        for parent in frontier:
            for i in range(rng.randint(1, width)):
                f = parent / f"d{level}{i}-{rng.randrange(1000):03d}"
                nxt.append(f)
        folders += nxt
        frontier = nxt
    for f in folders:
        (root / f).mkdir(parents=True, exist_ok=True)
    fixed = len(UNICODE_NAMES) + 1
    for i in range(n_files - fixed):
        folder = rng.choice(folders)
        size = min(max_size, int(rng.paretovariate(1.2) * 2 * KiB) - 2 * KiB) if i % 10 else rng.randint(0, max_size)
        write_random(root / folder / f"f{i:04d}-{rng.randrange(10**6):06d}.bin", max(0, size), rng)
    for folder, name in UNICODE_NAMES:
        if not nfd:
            folder, name = nfc(folder), nfc(name)
        write_random(root / folder / name, rng.randint(1, 20 * KiB), rng)
    (root / "empty-file.txt").write_bytes(b"")
    (root / "empty folder").mkdir()
    return local_tree(root)


# --------------------------------------------------------------------------------------------------
# the logging reverse proxy


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # percent-decoded path, without the query
    query: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __str__(self) -> str:
        q = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{q} -> {self.status}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_ProxyServer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def _body_chunks(self):  # type: ignore[no-untyped-def]
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, MiB))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            left -= len(chunk)
            yield chunk

    def _forward(self) -> None:
        srv = self.server
        conn = getattr(self, "_upstream", None)
        if conn is None:
            conn = self._upstream = http.client.HTTPConnection(srv.upstream_host, srv.upstream_port, timeout=600)
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() in HOP_BY_HOP:
                continue
            conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for chunk in self._body_chunks():
            if chunked:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                conn.send(chunk)
        if chunked:
            conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        split = urlsplit(self.path)
        srv.record(LoggedRequest(self.command, unquote(split.path), split.query, resp.status,
                                 tuple(self.headers.items())))
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        body = b""
        if length is None and not no_body:
            body = resp.read()  # chunked upstream: buffer it and send a length
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP or (length is None and k.lower() == "content-length"):
                continue
            self.send_header(k, v)
        if length is None and not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if no_body:
            resp.read()
        elif length is None:
            self.wfile.write(body)
        else:
            while chunk := resp.read(MiB):
                self.wfile.write(chunk)
        if resp.will_close:
            conn.close()
            self._upstream = None

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._forward()
            self.wfile.flush()
        except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
            self.server.errors.append(f"{self.command} {self.path}: {exc!r}")
            self.close_connection = True
            up = getattr(self, "_upstream", None)
            if up is not None:
                up.close()
                self._upstream = None

    def finish(self) -> None:
        up = getattr(self, "_upstream", None)
        if up is not None:
            up.close()
        super().finish()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    upstream_host: str
    upstream_port: int

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        u = urlsplit(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.lock = threading.Lock()
        self.log: list[LoggedRequest] = []
        self.errors: list[str] = []

    def record(self, r: LoggedRequest) -> None:
        with self.lock:
            self.log.append(r)


class LoggingProxy:
    """A reverse proxy on 127.0.0.1:<free port> to `upstream` recording every request (method,
    path, status, request headers). Use as a context manager."""

    def __init__(self, upstream: str) -> None:
        self._server = _ProxyServer(upstream)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def log(self) -> list[LoggedRequest]:
        with self._server.lock:
            return list(self._server.log)

    @property
    def errors(self) -> list[str]:
        return list(self._server.errors)

    def clear(self) -> None:
        with self._server.lock:
            self._server.log.clear()

    def __enter__(self) -> "LoggingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
