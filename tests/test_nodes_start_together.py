# SPDX-License-Identifier: EUPL-1.2
"""Several nodes starting at the same instant on a NEW database all start (issue 11: 2 of 3 crashed
on PostgreSQL, every trial: migrations took no lock and first-start rows were read, then inserted).

On pg-rgw the database is empty (not the migrated template) and the nodes share it and one bucket;
on sqlite-local they share one data folder. Each node migrates, writes the first-start rows
(epoch, instance id) and bootstraps the admin account; all must become ready, agree on those rows,
and serve the same account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cartable.store.meta import journal
from cartable.store.meta.engine import MetaDB, sqlite_url
from tests import backend
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.slow

NODES = 3


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """CARTABLE_* settings naming an empty database (and, on pg-rgw, a bucket) for every node."""
    if not backend.on_pg():
        yield {}
        return
    from tests.engines import drop_database, engine, new_database

    pg = engine("postgres")
    url = new_database(pg)
    settings = backend.settings_for(tmp_path / "shared")
    settings["database_url"] = url
    yield {f"CARTABLE_{k.upper()}": v for k, v in settings.items()}
    drop_database(pg, url)


def test_nodes_starting_together_on_a_new_database_all_start(tmp_path: Path, new_database: dict[str, str]) -> None:
    data = tmp_path / "data"  # one folder for all (sqlite-local); on pg-rgw only logs go there
    nodes = [LiveServer(data, free_port(), extra_env=new_database, ready_seconds=180) for _ in range(NODES)]
    errors: list[BaseException] = []
    go = threading.Barrier(NODES)

    def start(node: LiveServer) -> None:
        go.wait()
        try:
            node.start()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        assert errors == [], [str(e) for e in errors]
        for node in nodes:
            r = httpx.request("PROPFIND", f"{node.url}/remote.php/dav/files/admin/", headers={"Depth": "0"},
                              auth=("admin", node.admin_password), timeout=30)
            assert r.status_code == 207, r.text
    finally:
        for node in nodes:
            node.stop()
    url = new_database.get("CARTABLE_DATABASE_URL") or sqlite_url(data / "cartable.db")
    db = MetaDB(url)
    try:
        with db.read() as tx:
            assert journal.get_kv(tx, "epoch") and journal.get_kv(tx, "instance_id")
    finally:
        db.dispose()
