# SPDX-License-Identifier: EUPL-1.2
"""Several real ``cartable serve`` processes ("nodes") on ONE database and ONE chunk store.

Each node has its own data folder, which holds nothing of record: the stores are named by
``database_url`` and the chunk store settings (``shared_stores``), as an operator would on
several machines. By default that is one SQLite file and one chunk folder outside every node's
data folder; with ``CARTABLE_TEST_BACKEND=pg-rgw`` it is a fresh PostgreSQL database and a fresh
Ceph RGW bucket from tests/engines.py.

Every node logs JSON lines at level info (the request log included): ``Node.problems`` lists
each 5xx answer (507, a full quota, apart) and each error record, and ``fleet`` fails a test whose nodes logged any.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cartable.config import load_settings
from cartable.core.context import Core
from cartable.server import open_core
from tests.conftest import PASSWORD, LiveServer, free_port

BACKEND = os.environ.get("CARTABLE_TEST_BACKEND", "sqlite-local")
USERS = ("alice", "bob")


def shared_stores(root: Path) -> dict[str, str]:
    """The settings (config.SETTINGS names) that put every node on one database and chunk store."""
    if BACKEND == "pg-rgw":
        from tests.engines import engine, new_bucket, new_database

        ceph = engine("ceph")
        return {"database_url": new_database(engine("postgres")), "blob_store": "s3",
                "s3_endpoint": ceph.env["S3_ENDPOINT_URL"], "s3_bucket": new_bucket(ceph),
                "s3_access_key": ceph.env["AWS_ACCESS_KEY_ID"], "s3_secret_key": ceph.env["AWS_SECRET_ACCESS_KEY"]}
    if BACKEND != "sqlite-local":
        raise RuntimeError(f"CARTABLE_TEST_BACKEND={BACKEND!r}: use sqlite-local or pg-rgw")
    root.mkdir(parents=True, exist_ok=True)
    return {"database_url": f"sqlite:///{(root / 'cartable.db').resolve()}", "blob_path": str(root / "chunks")}


@dataclass
class Node(LiveServer):
    name: str = "node"

    @property
    def log_path(self) -> Path:
        return self.data.parent / f"server-{self.port}.log"

    def client(self, user: str = "alice", password: str = PASSWORD) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=120)

    def records(self) -> list[dict[str, object]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # the lines serve prints itself ("cartable serving ...")
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def problems(self) -> list[str]:
        """Every 5xx answer (but 507, a full quota: the client's condition, not a failure) and
        every error record this node logged."""
        return [json.dumps(r) for r in self.records()
                if int(r.get("status", 0) or 0) in range(500, 600) and r.get("status") != 507
                or r.get("level") in ("error", "critical")]


def make_node(root: Path, name: str, stores: dict[str, str], **settings: str) -> Node:
    env = {f"CARTABLE_{k.upper()}": v for k, v in {**stores, **settings}.items()}
    env.update(CARTABLE_LOG_LEVEL="info", CARTABLE_LOG_FORMAT="json")
    (root / name).mkdir(parents=True)
    return Node(root / name / "data", free_port(), extra_env=env, name=name)


@dataclass
class Fleet:
    nodes: list[Node]
    stores: dict[str, str]
    root: Path

    def core(self) -> Core:
        """An in-process core on the shared stores (for assertions; the caller disposes of it)."""
        return open_core(load_settings(None, {"data": self.root / "inspect", **self.stores}, environ={}))

    def admin(self, *args: str, input: str | None = None) -> str:
        r = self.nodes[0].admin(*args, input=input)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def problems(self) -> list[str]:
        return [f"{n.name}: {p}" for n in self.nodes for p in n.problems()]

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def start_fleet(root: Path, count: int = 2, **settings: str) -> Fleet:
    """``count`` nodes on shared stores, started one after the other, with users alice and bob."""
    stores = shared_stores(root / "shared")
    fleet = Fleet([make_node(root, f"node-{chr(97 + i)}", stores, **settings) for i in range(count)], stores, root)
    try:
        for node in fleet.nodes:
            node.start()
        for user in USERS:
            fleet.admin("user", "add", user, "--password-stdin", input=PASSWORD + "\n")
    except BaseException:
        fleet.stop()
        raise
    return fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = start_fleet(tmp_path)
    try:
        yield f
    finally:
        f.stop()
    assert not f.problems(), "\n".join(f.problems())
