# SPDX-License-Identifier: EUPL-1.2
"""The sync API across two nodes on one database: a long-poll on node A is woken by a write on
node B; two devices reading the feed from different nodes converge on the same tree; a client
replaying after a dropped answer reads the same entries again (a cursor is a position, not a
consumed queue)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.nodes.conftest import Fleet, start_fleet

pytestmark = pytest.mark.slow

API = "/api/v1/changes"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = start_fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield f
    finally:
        f.stop()
    assert not f.problems(), "\n".join(f.problems())


def test_a_wait_on_one_node_is_woken_by_a_write_on_the_other(fleet: Fleet) -> None:
    a, b = fleet.nodes
    with a.client() as ca, b.client() as cb:
        cursor = ca.get(API).json()["cursor"]
        answer: dict[str, object] = {}

        def wait() -> None:
            t0 = time.monotonic()
            r = ca.get(API + "/wait", params={"cursor": cursor, "timeout": 90}, timeout=120)
            answer.update(status=r.status_code, body=r.json(), took=time.monotonic() - t0)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(1.5)  # the wait is registered on node A
        assert "status" not in answer, answer  # it did not answer before anything changed
        assert cb.put("/remote.php/dav/files/alice/from-b.txt", content=b"hello").status_code == 201
        t.join(100)
        assert answer["status"] == 200, answer
        body = answer["body"]
        assert isinstance(body, dict)
        assert [c["name"] for c in body["changes"]] == ["from-b.txt"]
        assert float(answer["took"]) < 60, answer  # woken by the write, not by the timeout


def tree_from_feed(entries: list[dict], tree: dict[int, tuple[int | None, str]]) -> None:
    """Apply feed entries to {node id: (parent id, name)} as a sync client would."""
    for c in entries:
        if c["op"] == "delete":
            gone = {c["id"]}
            changed = True
            while changed:
                changed = False
                for k, (p, _) in list(tree.items()):
                    if p in gone and k not in gone:
                        gone.add(k)
                        changed = True
            for k in gone:
                tree.pop(k, None)
        else:
            tree[c["id"]] = (c["parent"], c["name"])


def test_two_devices_on_two_nodes_converge(fleet: Fleet) -> None:
    a, b = fleet.nodes
    dav = "/remote.php/dav/files/bob/"
    with a.client("bob") as ca, b.client("bob") as cb:
        start = ca.get(API).json()["cursor"]
        for i, c in enumerate((ca, cb, ca, cb)):
            assert c.request("MKCOL", f"{dav}d{i}").status_code == 201
            assert c.put(f"{dav}d{i}/f.txt", content=b"x" * i).status_code == 201
        assert cb.request("MOVE", f"{dav}d1", headers={"Destination": f"{dav}d0/d1"}).status_code == 201
        assert ca.delete(f"{dav}d2").status_code == 204
        trees = []
        for c in (ca, cb):
            tree: dict[int, tuple[int | None, str]] = {}
            cursor = start
            while True:
                page = c.get(API, params={"cursor": cursor, "limit": 2}).json()
                tree_from_feed(page["changes"], tree)
                cursor = page["cursor"]
                if not page["more"]:
                    break
            trees.append(tree)
        assert trees[0] == trees[1]
        names = sorted(name for _, name in trees[0].values())
        assert names == ["d0", "d1", "d3", "f.txt", "f.txt", "f.txt"]
        # replaying the same cursor (an answer lost on the way) gives the same entries again
        first = ca.get(API, params={"cursor": start}).json()
        again = cb.get(API, params={"cursor": start}).json()
        assert first == again
