# SPDX-License-Identifier: EUPL-1.2
"""litmus (Debian's WebDAV compliance suite) against a real `cartable serve`: every test of the
basic, copymove, props, locks and http groups must pass."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DAV, PASSWORD, LiveServer, require_tool

pytestmark = pytest.mark.interop

GROUPS = ["basic", "copymove", "props", "locks", "http"]


@pytest.mark.parametrize("group", GROUPS)
def test_litmus_group(live_server: LiveServer, tmp_path: Path, group: str) -> None:
    litmus = require_tool("litmus")
    work = tmp_path / f"litmus-{group}"
    work.mkdir()
    proc = subprocess.run([litmus, f"{live_server.url}{DAV}/", "alice", PASSWORD],
                          env={"TESTS": group, "PATH": "/usr/bin:/bin"}, cwd=work,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    m = re.search(rf"summary for `{group}': of (\d+) tests run: (\d+) passed, (\d+) failed", out)
    assert m, out[-3000:]
    run, passed, failed = map(int, m.groups())
    assert failed == 0 and passed == run, out[-3000:]
    assert "skipped" not in out.split(f"summary for `{group}'")[1].splitlines()[0], out[-2000:]
