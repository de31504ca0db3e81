# SPDX-License-Identifier: EUPL-1.2
"""The authorisation matrix for link actors, generated from one table.

Rows are the endpoints and methods a link reaches (ROWS); columns are the actors (ACTORS). Each
row holds the exact status for every actor: a row missing an actor fails
``test_every_row_names_every_actor``, and a method the public WebDAV app offers without a row
fails ``test_every_link_method_has_a_row``. Each cell gets its own target names (suffixed with
the actor), so the cells do not depend on each other's order.

Actors:
- owner: alice, with her password, on her own URLs (/remote.php/dav/files/alice/class, OCS);
- ro, rw, drop: anonymous with a read-only (1), read-write (15), upload-only (4) link;
- wrongpw: a read-write link with a password, sent a wrong one (Basic, any user name);
- expired: a read-write link past its expiry;
- revoked: a read-write link its owner removed;
- nolink: a token that never existed;
- other: bob, with his own password, on alice's URLs (WebDAV, OCS); on /s/ he has no token;
- uro, uall: a user alice shared /class with, read-only (1) and with every permission (31), on
  their own URLs through the mount point (/remote.php/dav/files/uro/Shared/class);
- member: a member of the group "profs" that /class is shared with (15), the same way;
- stranger: a user nothing is shared with, on the same URLs of their own tree (404 throughout).
On OCS rows every link actor is anonymous (links give no access to the API): 401; the users
list their own shares and cannot create, change or remove alice's (404).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts, groups
from cartable.core.context import Core
from cartable.nextcloud.public_dav import LINK_METHODS
from cartable.server import build_app
from cartable.store.meta import shares as shares_repo
from tests.conftest import DAV, PASSWORD, make_settings

ACTORS = ("owner", "ro", "rw", "drop", "wrongpw", "expired", "revoked", "nolink", "other", "uro", "uall", "member",
          "stranger")
USERS = ("uro", "uall", "member", "stranger")  # accounts reaching /class through a share (or not)
LINKS = {"ro": 1, "rw": 15, "drop": 4, "wrongpw": 15, "expired": 15, "revoked": 15}
OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
BOB = ("bob", "bob-secret-pw")
ALICE = ("alice", PASSWORD)


@dataclass
class World:
    web: TestClient
    tokens: dict[str, str]  # actor → token of its link (every actor but owner and other)
    spare: dict[str, int]  # actor → id of a link of alice's that this actor's OCS cell may change


@dataclass(frozen=True)
class Call:
    """One request: method, path below the actor's root (DAV rows) or a full path (others)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    data: dict[str, object] | None = None


def _user(actor: str) -> tuple[str, str]:
    return actor, f"{actor}-secret-pw"


def _dav_base(w: World, actor: str) -> tuple[str, tuple[str, str] | None]:
    if actor in USERS:
        return f"/remote.php/dav/files/{actor}/Shared/class", _user(actor)
    if actor in ("owner", "other"):
        return f"{DAV}/class", ALICE if actor == "owner" else BOB
    auth = ("anyone", "wrong-password") if actor == "wrongpw" else None
    return f"/public.php/dav/files/{w.tokens[actor]}", auth


def dav(method: str, path: str, *, dest: str | None = None, body: bytes = b"", **headers: str) -> Callable[
        [World, str], tuple[Call, tuple[str, str] | None]]:
    """A WebDAV row: ``{a}`` in path or dest is the actor's name; dest is below the same root."""
    def build(w: World, actor: str) -> tuple[Call, tuple[str, str] | None]:
        base, auth = _dav_base(w, actor)
        hdrs = dict(headers)
        if dest is not None:
            hdrs["Destination"] = base + dest.format(a=actor)
        return Call(method, base + path.format(a=actor), hdrs, body), auth
    return build


def download(w: World, actor: str) -> tuple[Call, tuple[str, str] | None]:
    token = w.tokens.get(actor, w.tokens["ro"] if actor == "owner" else "no-such-token")
    auth = ("", "wrong-password") if actor == "wrongpw" else ALICE if actor == "owner" else None
    return Call("GET", f"/s/{token}/download", {}), auth


def ocs(method: str, path: str, data: dict[str, object] | None = None) -> Callable[
        [World, str], tuple[Call, tuple[str, str] | None]]:
    def build(w: World, actor: str) -> tuple[Call, tuple[str, str] | None]:
        auth = ALICE if actor == "owner" else BOB if actor == "other" else _user(actor) if actor in USERS else \
            ("anyone", "wrong-password") if actor == "wrongpw" else None
        return Call(method, path.format(id=w.spare[actor]), {"OCS-APIRequest": "true"}, data=data), auth
    return build


LOCK_BODY = (b'<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
             b"<d:locktype><d:write/></d:locktype></d:lockinfo>")
PROPPATCH_BODY = (b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop>'
                  b"<x:tag>v</x:tag></d:prop></d:set></d:propertyupdate>")
PROPFIND_BODY = b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'

DENIED_TAIL = {"wrongpw": 401, "expired": 410, "revoked": 404, "nolink": 404, "other": 403}


def row(owner: int, ro: int, rw: int, drop: int, **tail: int) -> dict[str, int]:
    """A user with a read-only share answers as a read-only link; with all permissions, or
    read-write through a group, as a read-write link; a stranger finds nothing (404; 409 for a
    new name: its parent folder does not exist)."""
    return {"owner": owner, "ro": ro, "rw": rw, "drop": drop, **DENIED_TAIL,
            "uro": ro, "uall": rw, "member": rw, "stranger": 404, **tail}


NO_TOKEN = {"uro": 404, "uall": 404, "member": 404, "stranger": 404}
OCS_ANON = {"ro": 401, "rw": 401, "drop": 401, "wrongpw": 401, "expired": 401, "revoked": 401, "nolink": 401}
OCS_USERS = {"uro": 404, "uall": 404, "member": 404, "stranger": 404}
OCS_USERS_LIST = {"uro": 200, "uall": 200, "member": 200, "stranger": 200}

# name → (request builder, {actor: exact status})
ROWS: dict[str, tuple[Callable[[World, str], tuple[Call, tuple[str, str] | None]], dict[str, int]]] = {
    "PROPFIND folder": (dav("PROPFIND", "/", body=PROPFIND_BODY, Depth="1"), row(207, 207, 207, 403)),
    "GET file": (dav("GET", "/a.txt"), row(200, 200, 200, 403)),
    "HEAD file": (dav("HEAD", "/a.txt"), row(200, 200, 200, 403)),
    "PUT new": (dav("PUT", "/new-{a}.txt", body=b"new"), row(201, 403, 201, 201, stranger=409)),
    # upload-only: stored under a free name (201), the existing file untouched
    "PUT overwrite": (dav("PUT", "/ow-{a}.txt", body=b"over"), row(204, 403, 204, 201, stranger=409)),
    "MKCOL": (dav("MKCOL", "/dir-{a}"), row(201, 403, 201, 201, stranger=409)),
    "DELETE": (dav("DELETE", "/del-{a}.txt"), row(204, 403, 204, 403)),
    "MOVE": (dav("MOVE", "/mv-{a}.txt", dest="/moved-{a}.txt"), row(201, 403, 201, 403)),
    "COPY": (dav("COPY", "/a.txt", dest="/copy-{a}.txt"), row(201, 403, 201, 403)),
    "PROPPATCH": (dav("PROPPATCH", "/pp-{a}.txt", body=PROPPATCH_BODY), row(207, 403, 207, 403)),
    "LOCK": (dav("LOCK", "/lock-{a}.txt", body=LOCK_BODY, Timeout="Second-60"), row(200, 403, 200, 403, stranger=409)),
    "UNLOCK (no such lock)": (dav("UNLOCK", "/a.txt", **{"Lock-Token": "<opaquelocktoken:nope>"}),
                              row(409, 409, 409, 403)),
    "/s/{token}/download": (download, row(200, 200, 200, 403, other=404, **NO_TOKEN)),
    "OCS list": (ocs("GET", OCS), {"owner": 200, **OCS_ANON, "other": 200, **OCS_USERS_LIST}),
    "OCS create": (ocs("POST", OCS, {"path": "/class", "shareType": 3}),
                   {"owner": 200, **OCS_ANON, "other": 404, **OCS_USERS}),
    "OCS update": (ocs("PUT", OCS + "/{id}", {"note": "n"}), {"owner": 200, **OCS_ANON, "other": 404, **OCS_USERS}),
    "OCS delete": (ocs("DELETE", OCS + "/{id}"), {"owner": 200, **OCS_ANON, "other": 404, **OCS_USERS}),
}


@pytest.fixture
def world(core: Core, tmp_path: Path) -> Iterator[World]:
    accounts.create_user(core, *BOB)
    for actor in USERS:
        accounts.create_user(core, *_user(actor))
    groups.create_group(core, "profs")
    groups.add_member(core, "profs", "member")
    app = build_app(make_settings(tmp_path / "data", login_max_delay_seconds=0.0), core)
    with TestClient(app, base_url="http://testserver") as web:
        def put(path: str, body: bytes = b"x") -> None:
            assert web.put(f"{DAV}/class/{path}", content=body, auth=ALICE).status_code == 201

        assert web.request("MKCOL", f"{DAV}/class", auth=ALICE).status_code == 201
        put("a.txt", b"lesson")
        for a in ACTORS:
            for prefix in ("ow", "del", "mv", "pp", "lock"):
                put(f"{prefix}-{a}.txt")
        tokens, spare = {}, {}
        for actor, perms in LINKS.items():
            data: dict[str, object] = {"path": "/class", "shareType": 3, "permissions": perms}
            if actor == "wrongpw":
                data["password"] = "the-right-one"
            r = web.post(OCS, data=data, headers={"OCS-APIRequest": "true", "Accept": "application/json"},
                         auth=ALICE)
            share = r.json()["ocs"]["data"]
            tokens[actor] = share["token"]
            if actor == "expired":
                with core.db.write() as tx:
                    shares_repo.update(tx, int(share["id"]), expires_at=time.time() - 60)
            if actor == "revoked":
                assert web.delete(f"{OCS}/{share['id']}", headers={"OCS-APIRequest": "true"},
                                  auth=ALICE).status_code == 200
        tokens["nolink"] = "NoSuchTokenNoSuchTokenNoSuchTok0"
        for with_, share_type, perms in (("uro", 0, 1), ("uall", 0, 31), ("profs", 1, 15)):
            r = web.post(OCS, data={"path": "/class", "shareType": share_type, "shareWith": with_,
                                    "permissions": perms}, headers={"OCS-APIRequest": "true"}, auth=ALICE)
            assert r.status_code == 200, r.text
        for a in ACTORS:
            r = web.post(OCS, data={"path": "/class", "shareType": 3}, auth=ALICE,
                         headers={"OCS-APIRequest": "true", "Accept": "application/json"})
            spare[a] = int(r.json()["ocs"]["data"]["id"])
        yield World(web, tokens, spare)


def send(w: World, call: Call, auth: tuple[str, str] | None) -> Any:
    kw: dict[str, Any] = {"headers": call.headers, "auth": auth}
    if call.data is not None:
        kw["data"] = call.data
    elif call.body:
        kw["content"] = call.body
    return w.web.request(call.method, call.path, follow_redirects=False, **kw)


def test_every_row_names_every_actor() -> None:
    for name, (_, expected) in ROWS.items():
        assert set(expected) == set(ACTORS), f"row {name!r} must give a status for every actor"


def test_every_link_method_has_a_row() -> None:
    covered = {name.split()[0] for name in ROWS}
    missing = [m for m in LINK_METHODS if m not in covered]
    assert not missing, f"methods served through links without a matrix row: {missing}"


def test_link_authorisation_matrix(world: World) -> None:
    wrong: list[str] = []
    for name, (build, expected) in ROWS.items():
        for actor in ACTORS:
            call, auth = build(world, actor)
            got = send(world, call, auth).status_code
            if got != expected[actor]:
                wrong.append(f"{name} × {actor}: expected {expected[actor]}, got {got}")
    assert not wrong, "\n".join(wrong)
    # What the refused cells did not do: the owner's files are intact.
    web = world.web
    for a in ("ro", "drop", "wrongpw", "expired", "revoked", "nolink", "other", "uro", "stranger"):
        assert web.get(f"{DAV}/class/del-{a}.txt", auth=ALICE).status_code == 200
        assert web.get(f"{DAV}/class/mv-{a}.txt", auth=ALICE).status_code == 200
    assert web.get(f"{DAV}/class/ow-drop.txt", auth=ALICE).content == b"x"
    assert web.get(f"{DAV}/class/ow-drop (2).txt", auth=ALICE).content == b"over"
    assert web.get(f"{DAV}/class/ow-ro.txt", auth=ALICE).content == b"x"
    assert web.get(f"{DAV}/class/ow-uro.txt", auth=ALICE).content == b"x"
    assert web.get(f"{DAV}/class/ow-uall.txt", auth=ALICE).content == b"over"
