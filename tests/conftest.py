# SPDX-License-Identifier: EUPL-1.2
"""Shared fixtures: a core on the test backend (tests/backend.py: SQLite + a chunk folder, or a
fresh PostgreSQL database + a Ceph RGW bucket), an in-process WebDAV client, and a real
`cartable serve` process on loopback (readiness polled, never slept)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():
    # Starlette 1.x prefers "httpx2" for its TestClient; httpx works the same for our use.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cartable.config import load_settings
from cartable.core import accounts
from cartable.core.context import Core
from cartable.server import build_app, open_core
from tests import backend

PASSWORD = "alice-secret-pw"
DAV = "/remote.php/dav/files/alice"


def make_settings(data: Path, **extra: object):
    """Settings of the instance at ``data`` on the test backend (``extra`` overrides)."""
    return load_settings(None, {"data": data, **backend.settings_for(data), **extra}, environ={})


@pytest.fixture(autouse=True)
def _backend_cleanup() -> Iterator[None]:
    """Drop the test's PostgreSQL databases after it (pg-rgw); nothing on sqlite-local."""
    yield
    backend.forget()


def pytest_report_header(config: pytest.Config) -> str:
    return f"cartable test backend: {backend.BACKEND} (CARTABLE_TEST_BACKEND)"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    c = open_core(make_settings(tmp_path / "data"))
    accounts.create_user(c, "alice", PASSWORD)
    yield c
    c.db.dispose()


@pytest.fixture
def client(core: Core, tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(make_settings(tmp_path / "data"), core)
    with TestClient(app, base_url="http://testserver") as tc:
        tc.auth = ("alice", PASSWORD)
        yield tc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cartable_exe() -> list[str]:
    exe = Path(sys.executable).parent / "cartable"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cartable"]


@dataclass
class LiveServer:
    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    admin_password: str = "admin-secret-pw"
    extra_env: dict[str, str] | None = None  # CARTABLE_* settings for this server
    serve_env: dict[str, str] = field(default_factory=dict)  # more environment for `serve` only
    ready_seconds: float = 30.0  # how long start() waits for the health check before failing

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTABLE_")}
        env.update(CARTABLE_ADMIN_PASSWORD=self.admin_password, CARTABLE_LOG_LEVEL="warning")
        env.update(backend.environ_for(self.data))
        env.update(self.extra_env or {})
        return env

    def start(self) -> None:
        with open(self.data.parent / f"server-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [*cartable_exe(), "serve", "--data", str(self.data), "--port", str(self.port)],
                env={**self.env(), **self.serve_env}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cartable serve exited with {self.proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/_cartable/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()  # a server that never became ready must not outlive the test that started it
        raise RuntimeError(f"cartable serve did not become ready within {self.ready_seconds:.0f} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def start_paused_at(self, point: str, nth: int = 1) -> Path:
        """(Re)start the server so that it freezes at the nth hit of a fault point (the
        ``fault_pause`` setting); returns the marker file it writes when it gets there."""
        self.stop()
        marker = self.data.parent / f"paused-{self.port}-{point}-{nth}"
        marker.unlink(missing_ok=True)
        marker.with_name(marker.name + ".hits").unlink(missing_ok=True)  # the workers' shared hit count
        self.serve_env = {"CARTABLE_FAULT_PAUSE": f"{point}@{nth}:{marker}"}
        self.start()
        return marker

    def kill_when_paused(self, marker: Path, timeout: float = 60) -> None:
        """Wait (polled, with a deadline) until the server froze at its fault point, then SIGKILL
        it there. Fails if it never got there: the kill would not land where the test means."""
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert self.proc is not None and self.proc.poll() is None, "the server exited before its fault point"
            assert time.monotonic() < deadline, f"the server never reached its fault point ({marker.name})"
            time.sleep(0.01)
        self.kill()
        self.serve_env = {}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def admin(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cartable_exe(), "admin", *args, "--data", str(self.data)], env=self.env(),
                              input=input, capture_output=True, text=True, timeout=120)


def start_live_server(data: Path, **settings: str) -> LiveServer:
    """A started `cartable serve` with user alice; settings as CARTABLE_* variables."""
    srv = LiveServer(data, free_port(), extra_env={f"CARTABLE_{k.upper()}": v for k, v in settings.items()})
    srv.start()
    r = srv.admin("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    return srv


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path / "data", free_port())
    srv.start()
    r = srv.admin("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    yield srv
    srv.stop()


def require_tool(name: str, installer: str = "scripts/install-deps.sh") -> str:
    """A required peer program: its absence fails the test loudly (never a skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run {installer} (CI does)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pg-rgw, deselect the tests marked local_only, and the power-loss group (it simulates
    the local folder's and SQLite's files losing power): they run on sqlite-local. Remembered
    for the summary: listed, never silently left out."""
    if not backend.on_pg():
        return

    def local_only(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) is not None for m in ("local_only", "powerloss"))

    local = [item for item in items if local_only(item)]
    if local:
        config.hook.pytest_deselected(items=local)
        items[:] = [item for item in items if not local_only(item)]
        config.stash[_LOCAL_ONLY] = [item.nodeid for item in local]


_LOCAL_ONLY = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    local = config.stash.get(_LOCAL_ONLY, [])
    if local:
        terminalreporter.write_sep("-", f"{len(local)} local_only tests not run on {backend.BACKEND} "
                                        "(they run on sqlite-local)")
        for nodeid in local:
            terminalreporter.write_line(nodeid)
