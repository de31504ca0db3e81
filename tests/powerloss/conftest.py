# SPDX-License-Identifier: EUPL-1.2
"""The write path's background writer and bulk upload's commit threads run inline in these tests,
so that the steps of a run come in the same order every time (each module sets ``pytestmark =
pytest.mark.powerloss``). Concurrent commits sharing SQLite's group commit are cut in
test_group_commit.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.core import bulk, writes
from tests.powerloss.rig import InlineExecutor


@pytest.fixture(autouse=True)
def _inline_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "_WRITERS", InlineExecutor())
    monkeypatch.setattr(bulk, "_POOL", InlineExecutor())


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A folder for the simulated runs: in memory (/dev/shm) when the machine has it, because
    SQLite really syncs its commits and the simulator does not need them to reach a disk (it keeps
    its own record of what is durable); else the test's temporary folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="cartable-powerloss-", dir=shm))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path
