# SPDX-License-Identifier: EUPL-1.2
"""MOVE in the change journal, through WebDAV: a sync client reading the journal must learn that
a node moved (same id, new parent, new name), not that one thing vanished and another appeared,
and a MOVE that replaces something journals the deletion first. The MOVE that assembles a chunked
upload is a content change (create or modify), not a move."""

from __future__ import annotations

from starlette.testclient import TestClient

from cartable.core import accounts, files
from cartable.core.context import Core
from cartable.core.model import Principal
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import journal
from cartable.store.meta.records import ChangeRecord
from tests.conftest import DAV

UP = "/remote.php/dav/uploads/alice"


def alice(core: Core) -> Principal:
    with core.db.read() as tx:
        rec = accounts_repo.user_by_name(tx, "alice")
    assert rec is not None
    return accounts.principal_for(core, rec)


def mark(core: Core) -> int:
    with core.db.read() as tx:
        return journal.head(tx)


def since(core: Core, seq: int) -> list[ChangeRecord]:
    principal = alice(core)
    with core.db.read() as tx:
        return journal.since(tx, principal.space_id, seq, 100)


def node_id(core: Core, *parts: str) -> int:
    return files.stat(core, alice(core), parts).id


def test_move_of_a_file_to_another_folder(client: TestClient, core: Core) -> None:
    assert client.request("MKCOL", f"{DAV}/a").status_code == 201
    assert client.request("MKCOL", f"{DAV}/b").status_code == 201
    assert client.put(f"{DAV}/a/x.txt", content=b"x").status_code == 201
    moved, b = node_id(core, "a", "x.txt"), node_id(core, "b")
    seq = mark(core)
    r = client.request("MOVE", f"{DAV}/a/x.txt", headers={"Destination": f"{DAV}/b/y.txt"})
    assert r.status_code == 201
    assert [(e.op, e.node_id, e.parent_id, e.name, e.kind) for e in since(core, seq)] == [
        ("move", moved, b, "y.txt", "f")]


def test_rename_in_place(client: TestClient, core: Core) -> None:
    assert client.put(f"{DAV}/x.txt", content=b"x").status_code == 201
    moved, root = node_id(core, "x.txt"), alice(core).root_id
    seq = mark(core)
    assert client.request("MOVE", f"{DAV}/x.txt", headers={"Destination": f"{DAV}/z.txt"}).status_code == 201
    assert [(e.op, e.node_id, e.parent_id, e.name) for e in since(core, seq)] == [("move", moved, root, "z.txt")]


def test_move_of_a_folder_over_an_existing_one(client: TestClient, core: Core) -> None:
    for folder in ("src", "src/inner", "dst", "dst/old"):
        assert client.request("MKCOL", f"{DAV}/{folder}").status_code == 201
    assert client.put(f"{DAV}/src/inner/f.txt", content=b"f").status_code == 201
    moved, replaced, root = node_id(core, "src"), node_id(core, "dst"), alice(core).root_id
    seq = mark(core)
    r = client.request("MOVE", f"{DAV}/src", headers={"Destination": f"{DAV}/dst", "Overwrite": "T"})
    assert r.status_code == 204
    entries = since(core, seq)
    assert [(e.op, e.node_id) for e in entries] == [("delete", replaced), ("move", moved)]
    assert (entries[1].parent_id, entries[1].name, entries[1].kind) == (root, "dst", "d")
    # the members moved with their folder: same ids, nothing journalled for them
    assert client.get(f"{DAV}/dst/inner/f.txt").content == b"f"


def test_refused_move_journals_nothing(client: TestClient, core: Core) -> None:
    assert client.put(f"{DAV}/x.txt", content=b"x").status_code == 201
    assert client.put(f"{DAV}/y.txt", content=b"y").status_code == 201
    seq = mark(core)
    r = client.request("MOVE", f"{DAV}/x.txt", headers={"Destination": f"{DAV}/y.txt", "Overwrite": "F"})
    assert r.status_code == 412
    assert since(core, seq) == []


def test_assembly_move_is_a_content_change(client: TestClient, core: Core) -> None:
    assert client.put(f"{DAV}/t.bin", content=b"old").status_code == 201
    target = node_id(core, "t.bin")
    for key, dst, op in (("u1", "t.bin", "modify"), ("u2", "n.bin", "create")):
        assert client.request("MKCOL", f"{UP}/{key}").status_code == 201
        assert client.put(f"{UP}/{key}/1", content=b"new content").status_code == 201
        seq = mark(core)
        r = client.request("MOVE", f"{UP}/{key}/.file", headers={"Destination": f"{DAV}/{dst}"})
        assert r.status_code in (201, 204)
        entries = since(core, seq)
        assert [(e.op, e.name) for e in entries] == [(op, dst)]
        if op == "modify":
            assert entries[0].node_id == target
