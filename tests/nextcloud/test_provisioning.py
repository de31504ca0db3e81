# SPDX-License-Identifier: EUPL-1.2
"""OCS provisioning and sharee search as Nextcloud clients call them: cloud/users/{id},
cloud/groups, apps/files_sharing/api/v1/sharees; v1 and v2, JSON and XML."""

from __future__ import annotations

import pytest
from lxml import etree
from starlette.testclient import TestClient

from cartable.core import accounts, groups
from cartable.core.context import Core
from tests.conftest import DAV, PASSWORD

API = {"OCS-APIRequest": "true"}
SHAREES = "/apps/files_sharing/api/v1/sharees"


@pytest.fixture
def people(core: Core) -> Core:
    """alice (in fixture `core`), bob, carol (disabled), the admin root; groups profs and eleves."""
    accounts.set_profile(core, "alice", display_name="Alice Martin", email="alice@ecole.fr")
    accounts.create_user(core, "bob", "bob-secret-pw", display_name="Bob Élève", email="bob@ecole.fr")
    accounts.create_user(core, "carol", "carol-secret-pw", display_name="Carol Martin")
    accounts.set_disabled(core, "carol", True)
    accounts.create_user(core, "root", "root-secret-pw", is_admin=True)
    groups.create_group(core, "profs", "Professeurs du lycée")
    groups.create_group(core, "eleves", "Élèves de 2nde")
    groups.add_member(core, "profs", "alice")
    groups.add_member(core, "eleves", "bob")
    return core


def ocs(client: TestClient, path: str, v: int = 2, **kw: object):  # type: ignore[no-untyped-def]
    sep = "&" if "?" in path else "?"
    return client.get(f"/ocs/v{v}.php{path}{sep}format=json", headers=API, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("v", [1, 2])
def test_a_user_reads_their_own_record(client: TestClient, people: Core, v: int) -> None:
    accounts.set_quota(people, "alice", 10_000)
    assert client.put(f"{DAV}/a.txt", content=b"x" * 1000).status_code == 201
    r = ocs(client, "/cloud/users/alice", v)
    assert r.status_code == 200
    body = r.json()["ocs"]
    assert body["meta"]["statuscode"] == (200 if v == 2 else 100)
    data = body["data"]
    assert data["id"] == "alice" and data["displayname"] == "Alice Martin" == data["display-name"]
    assert data["email"] == "alice@ecole.fr" and data["groups"] == ["profs"]
    assert data["quota"] == {"free": 9000, "used": 1000, "total": 10_000, "relative": 10.0, "quota": 10_000}
    # cloud/user (what the desktop client reads) carries the same record, groups included
    assert ocs(client, "/cloud/user", v).json()["ocs"]["data"]["groups"] == ["profs"]
    # the id is found without regard to case, and answered in its own spelling
    assert ocs(client, "/cloud/users/ALICE", v).json()["ocs"]["data"]["id"] == "alice"


def test_the_record_in_xml(client: TestClient, people: Core) -> None:
    for v, ctype in ((1, "text/xml; charset=UTF-8"), (2, "application/xml; charset=utf-8")):
        r = client.get(f"/ocs/v{v}.php/cloud/users/alice", headers=API)
        assert r.status_code == 200 and r.headers["content-type"] == ctype
        root = etree.fromstring(r.content)
        assert root.findtext("meta/statuscode") == ("200" if v == 2 else "100")
        assert root.findtext("data/id") == "alice"
        assert root.findtext("data/displayname") == "Alice Martin"
        assert [e.text for e in root.findall("data/groups/element")] == ["profs"]
        assert root.findtext("data/quota/used") == "0"
        assert root.findtext("data/notify_email") == ""  # None is an empty element, never "None"
    assert b"None" not in client.get("/ocs/v2.php/cloud/users/alice", headers=API).content


@pytest.mark.parametrize("target", ["bob", "carol", "nobody-here", "root"])
def test_another_users_record_is_what_nextcloud_answers_a_non_admin(client: TestClient, people: Core,
                                                                    target: str) -> None:
    r2 = ocs(client, f"/cloud/users/{target}", 2)
    assert r2.status_code == 404
    assert r2.json()["ocs"]["meta"] == {"status": "failure", "statuscode": 998, "message": "",
                                        "totalitems": "", "itemsperpage": ""}
    assert r2.json()["ocs"]["data"] == []
    r1 = ocs(client, f"/cloud/users/{target}", 1)
    assert r1.status_code == 200 and r1.json()["ocs"]["meta"]["statuscode"] == 998
    # an unknown account answers exactly like an existing one: no probing for names
    assert r2.content == ocs(client, "/cloud/users/nobody-here", 2).content


def test_an_admin_reads_anyone(client: TestClient, people: Core) -> None:
    admin = ("root", "root-secret-pw")
    data = ocs(client, "/cloud/users/carol", auth=admin).json()["ocs"]["data"]
    assert data["id"] == "carol" and data["enabled"] is False and data["displayname"] == "Carol Martin"
    assert data["email"] is None and data["groups"] == []
    r = ocs(client, "/cloud/users/nobody-here", auth=admin)
    assert r.status_code == 404 and r.json()["ocs"]["meta"]["statuscode"] == 404
    r1 = ocs(client, "/cloud/users/nobody-here", 1, auth=admin)
    assert r1.status_code == 200 and r1.json()["ocs"]["meta"]["statuscode"] == 404


@pytest.mark.parametrize("path", ["/cloud/users/alice", "/cloud/groups", f"{SHAREES}?itemType=file&search=b",
                                  "/cloud/groups/details"])
@pytest.mark.parametrize("v", [1, 2])
def test_without_credentials_nothing_is_told(client: TestClient, people: Core, path: str, v: int) -> None:
    for auth in (None, ("alice", "wrong-password")):
        r = ocs(client, path, v, auth=auth)
        assert r.status_code == 401 and r.json()["ocs"]["meta"]["statuscode"] == 997
        assert r.json()["ocs"]["data"] == [] and "WWW-Authenticate" in r.headers


@pytest.mark.parametrize("v", [1, 2])
def test_groups_are_listed_to_every_user(client: TestClient, people: Core, v: int) -> None:
    assert ocs(client, "/cloud/groups", v).json()["ocs"]["data"] == {"groups": ["eleves", "profs"]}
    assert ocs(client, "/cloud/groups?search=PROF", v).json()["ocs"]["data"] == {"groups": ["profs"]}
    assert ocs(client, "/cloud/groups?search=élèves", v).json()["ocs"]["data"] == {"groups": ["eleves"]}
    assert ocs(client, "/cloud/groups?limit=1&offset=1", v).json()["ocs"]["data"] == {"groups": ["profs"]}
    assert ocs(client, "/cloud/groups?search=%25", v).json()["ocs"]["data"] == {"groups": []}  # % is literal
    x = client.get(f"/ocs/v{v}.php/cloud/groups", headers=API)
    assert [e.text for e in etree.fromstring(x.content).findall("data/groups/element")] == ["eleves", "profs"]
    for bad_limit in ("many", "%C2%B2"):
        bad = ocs(client, f"/cloud/groups?limit={bad_limit}", v)
        assert bad.status_code == (400 if v == 2 else 200) and bad.json()["ocs"]["meta"]["statuscode"] == 400


def test_group_details_are_for_admins(client: TestClient, people: Core) -> None:
    r = ocs(client, "/cloud/groups/details")
    assert r.status_code == 403 and r.json()["ocs"]["meta"]["statuscode"] == 403
    data = ocs(client, "/cloud/groups/details", auth=("root", "root-secret-pw")).json()["ocs"]["data"]
    assert data["groups"][1] == {"id": "profs", "displayname": "Professeurs du lycée", "usercount": 1,
                                 "disabled": 0, "canAdd": False, "canRemove": False}


def sharees(client: TestClient, query: str, v: int = 2) -> dict:  # type: ignore[type-arg]
    r = ocs(client, f"{SHAREES}?{query}", v)
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("v", [1, 2])
def test_sharee_search_has_nextclouds_shape(client: TestClient, people: Core, v: int) -> None:
    data = sharees(client, "itemType=folder&search=bob", v)
    assert set(data) == {"exact", "users", "groups", "remotes", "remote_groups", "emails", "circles", "rooms",
                         "lookup", "lookupEnabled"}
    assert set(data["exact"]) == {"users", "groups", "remotes", "remote_groups", "emails", "circles", "rooms"}
    assert data["exact"]["users"] == [{"label": "Bob Élève", "subline": "", "icon": "icon-user",
                                       "value": {"shareType": 0, "shareWith": "bob"},
                                       "shareWithDisplayNameUnique": "bob@ecole.fr", "status": []}]
    assert data["users"] == [] and data["groups"] == [] and data["lookupEnabled"] is False


def test_sharee_search_exact_and_partial(client: TestClient, people: Core) -> None:
    # partial: display name, case and accents folded; the caller and disabled accounts never appear
    data = sharees(client, "itemType=file&search=martin")
    assert data["users"] == [] and data["exact"]["users"] == []  # alice is the caller, carol is disabled
    data = sharees(client, "itemType=file&search=ÉLÈ")
    assert [u["value"]["shareWith"] for u in data["users"]] == ["bob"]
    assert [g["value"] for g in data["groups"]] == [{"shareType": 1, "shareWith": "eleves"}]
    assert data["groups"][0]["label"] == "Élèves de 2nde"
    # exact: the group's name, or its display name, or a user's e-mail
    data = sharees(client, "itemType=file&search=PROFS")
    assert data["exact"]["groups"] == [{"label": "Professeurs du lycée",
                                        "value": {"shareType": 1, "shareWith": "profs"}}]
    assert data["groups"] == []
    assert sharees(client, "itemType=file&search= bob@ecole.fr ")["exact"]["users"][0]["value"]["shareWith"] == "bob"
    # shareType narrows the kinds
    data = sharees(client, "itemType=file&search=e&shareType=1")
    assert data["users"] == [] and [g["value"]["shareWith"] for g in data["groups"]] == ["eleves", "profs"]
    data = sharees(client, "itemType=file&search=e&shareType[]=0")
    assert data["groups"] == [] and [u["value"]["shareWith"] for u in data["users"]] == ["bob"]


def test_sharee_pages_and_next_link(client: TestClient, people: Core) -> None:
    for i in range(30):
        accounts.create_user(people, f"user{i:02d}", "secret-password")
    r = ocs(client, f"{SHAREES}?itemType=file&search=user&perPage=10&page=2")
    assert [u["value"]["shareWith"] for u in r.json()["ocs"]["data"]["users"]] == \
        [f"user{i:02d}" for i in range(10, 20)]
    assert 'page=3' in r.headers["link"] and r.headers["link"].endswith('rel="next"')
    assert r.headers["link"].startswith("<http://testserver/ocs/v2.php/apps/files_sharing/api/v1/sharees?")
    # at most 25 a page whatever is asked (Nextcloud's maxAutocompleteResults)
    assert len(ocs(client, f"{SHAREES}?itemType=file&search=user").json()["ocs"]["data"]["users"]) == 25
    # the last page has no next link
    assert "link" not in ocs(client, f"{SHAREES}?itemType=file&search=user&perPage=25&page=2").headers
    # an exact name is found on page 1 even when the partial page did not reach it
    data = ocs(client, f"{SHAREES}?itemType=file&search=user29&perPage=1").json()["ocs"]["data"]
    assert [u["value"]["shareWith"] for u in data["exact"]["users"]] == ["user29"]


@pytest.mark.parametrize(("query", "message"), [
    ("search=bob", "Missing itemType"),
    ("itemType=file&perPage=0", "Invalid perPage argument"),
    ("itemType=file&perPage=-3", "Invalid perPage argument"),
    ("itemType=file&page=0", "Invalid page"),
    ("itemType=file&page=x", "Invalid page"),
    ("itemType=file&page=%C2%B2", "Invalid page"),  # a superscript two: a digit to str.isdigit, not to int
    ("itemType=file&perPage=%D9%A3", "Invalid perPage argument"),
])
@pytest.mark.parametrize("v", [1, 2])
def test_sharee_search_bad_parameters(client: TestClient, people: Core, query: str, message: str, v: int) -> None:
    r = ocs(client, f"{SHAREES}?{query}", v)
    assert r.status_code == (400 if v == 2 else 200)
    assert r.json()["ocs"]["meta"]["statuscode"] == 400 and r.json()["ocs"]["meta"]["message"] == message


def test_hostile_search_text(client: TestClient, people: Core) -> None:
    for text in ("%", "_", "\\", "a" * 5000, "\x00", "' OR 1=1 --"):
        r = client.get(f"/ocs/v2.php{SHAREES}", params={"itemType": "file", "search": text, "format": "json"},
                       headers=API)
        assert r.status_code == 200
        data = r.json()["ocs"]["data"]
        assert data["users"] == [] and data["groups"] == [] and data["exact"]["users"] == []
    r = client.get("/ocs/v2.php/cloud/groups", params={"search": "pro\x00", "format": "json"}, headers=API)
    assert r.json()["ocs"]["data"] == {"groups": []}
    # a path that is no user id, or a revocation id that is no number, is no endpoint
    assert ocs(client, "/cloud/users/alice/extra").status_code == 404
    r = client.delete("/ocs/v2.php/apps/cartable/api/v1/apppasswords/%C2%B2?format=json", headers=API)
    assert r.status_code == 404
    assert PASSWORD  # the client fixture logs in as alice


def test_http_logins_leave_audit_events_with_the_client_address(client: TestClient, people: Core) -> None:
    from cartable.core import audit

    assert client.get("/ocs/v2.php/cloud/user?format=json", auth=("alice", "wrong-pw")).status_code == 401
    failed = audit.query(people, event="login", outcome="failure")
    assert [(e.actor, e.address, e.detail) for e in failed] == [("alice", "testclient", "wrong password")]
    for _ in range(5):  # ordinary requests with working credentials leave nothing
        assert client.get("/ocs/v2.php/cloud/user?format=json").status_code == 200
    assert audit.query(people, event="login", outcome="success") == []
    token = ocs(client, "/core/getapppassword").json()["ocs"]["data"]["apppassword"]
    events = [(e.event, e.actor, e.address) for e in audit.query(people, user="alice", since=failed[0].at)]
    assert events[:2] == [("app_password.created", "alice", "testclient"), ("login", "alice", "testclient")]
    assert client.delete("/ocs/v2.php/core/apppassword?format=json", headers=API,
                         auth=("alice", token)).status_code == 200
    assert audit.query(people, user="alice", limit=1)[0].event == "app_password.revoked"
