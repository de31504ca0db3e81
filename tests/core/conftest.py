# SPDX-License-Identifier: EUPL-1.2
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.core import accounts
from cartable.core.auth import Authenticator
from cartable.core.context import Core, Limits
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.store.blobs.local import LocalChunkStore
from tests.backend import open_test_blobs, open_test_db


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_core(tmp: Path, clock: object = None, *, local_blobs: bool = False, **limits: object) -> Core:
    """A core on the test backend (tests/backend.py) whose files live in ``tmp``; local_blobs:
    its chunks in the local folder tmp/chunks on every backend (tests of the folder's own fault
    points, which still exercise the metadata database of the backend)."""
    blobs = LocalChunkStore(tmp / "chunks") if local_blobs else open_test_blobs(tmp)
    core = Core(open_test_db(tmp), blobs, Limits(**limits))  # type: ignore[arg-type]
    if clock is not None:
        core.clock = clock  # type: ignore[assignment]
    return core


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def small_core(tmp_path: Path, clock: FakeClock) -> Iterator[Core]:
    """A core whose uploads flush every chunk at once (write_batch_bytes=1) and a fake clock."""
    core = make_core(tmp_path, clock, write_batch_bytes=1, gc_grace_seconds=3600.0)
    accounts.create_user(core, "alice", "alice-secret-pw")
    yield core
    core.db.dispose()


def principal(core: Core, name: str = "alice") -> Principal:
    return Authenticator(core).authenticate(name, f"{name}-secret-pw", "test")


def op_for(core: Core, name: str = "alice") -> Op:
    return Op(principal(core, name))


def delete_for_good(core: Core, op: Op, parts: tuple[str, ...]) -> None:
    """Delete, then empty the trash: the item's chunk references are released."""
    from cartable.core import files, trash

    files.delete(core, op, parts)
    trash.empty(core, op)
