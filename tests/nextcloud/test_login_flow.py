# SPDX-License-Identifier: EUPL-1.2
"""Login Flow v2 through the in-process app: init, browser pages, grant, poll, expiry, i18n."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from httpx import Response
from sqlalchemy import select
from starlette.testclient import TestClient

from cartable.core import accounts, login_flow
from cartable.core.context import Core
from cartable.server import build_app, open_core
from cartable.store.meta.schema import login_flows, meta_kv
from tests.conftest import DAV, PASSWORD, make_settings
from tests.core.conftest import FakeClock

CLIENT_UA = "Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian-6.1 ClientArchitecture: x86_64)"
STATE = re.compile(r'name="state" value="([^"]+)"')


@dataclass(frozen=True)
class Flow:
    login_path: str  # path of the browser page
    poll_token: str
    poll_endpoint: str


def init(client: TestClient) -> Flow:
    r = client.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}, auth=None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["poll"]["endpoint"] == "http://testserver/index.php/login/v2/poll"
    assert body["login"].startswith("http://testserver/index.php/login/v2/flow/")
    assert len(body["poll"]["token"]) >= 43
    return Flow(urlsplit(body["login"]).path, body["poll"]["token"], body["poll"]["endpoint"])


def poll(client: TestClient, flow: Flow) -> tuple[int, object]:
    r = client.post(urlsplit(flow.poll_endpoint).path, data={"token": flow.poll_token}, auth=None)
    return r.status_code, r.json()


def log_in(client: TestClient, flow: Flow, password: str = PASSWORD, **headers: str) -> str:
    """Submit the login form; returns the grant page's state token."""
    r = client.post(flow.login_path, data={"user": "alice", "password": password}, auth=None, headers=headers)
    assert r.status_code == 200, r.text
    found = STATE.search(r.text)
    assert found, r.text
    return found.group(1)


def grant(client: TestClient, flow: Flow, state: str | None, user: str = "alice") -> int:
    data = {"user": user} if state is None else {"user": user, "state": state}
    r = client.post(flow.login_path + "/grant", data=data, auth=None)
    return r.status_code


def test_full_flow_gives_a_working_app_password_once(client: TestClient, core: Core) -> None:
    flow = init(client)
    assert poll(client, flow) == (404, [])
    page = client.get(flow.login_path, auth=None)
    assert page.status_code == 200
    assert "mirall/3.7.3" in page.text and "wants access to your account" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == \
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    assert "<script" not in page.text and "http://" not in page.text and "https://" not in page.text
    state = log_in(client, flow)
    assert poll(client, flow) == (404, [])
    r = client.post(flow.login_path + "/grant", data={"user": "alice", "state": state}, auth=None)
    assert r.status_code == 200 and "you may close this window" in r.text
    status, body = poll(client, flow)
    assert status == 200
    assert isinstance(body, dict)
    assert body["server"] == "http://testserver" and body["loginName"] == "alice"
    app_password = body["appPassword"]
    assert len(app_password) == 72 and app_password != PASSWORD
    dav = client.request("PROPFIND", DAV + "/", headers={"Depth": "0"}, auth=("alice", app_password))
    assert dav.status_code == 207
    assert poll(client, flow) == (404, [])
    # The flow is gone: its page is refused too.
    assert client.get(flow.login_path, auth=None).status_code == 403


def test_app_password_is_listed_under_the_client_name_and_revocable(client: TestClient, core: Core) -> None:
    flow = init(client)
    assert grant(client, flow, log_in(client, flow)) == 200
    _, body = poll(client, flow)
    assert isinstance(body, dict)
    app_password = body["appPassword"]
    listed = accounts.list_app_passwords(core, "alice")
    assert [a.name for a in listed] == [CLIENT_UA]
    assert client.request("PROPFIND", DAV + "/", headers={"Depth": "0"},
                          auth=("alice", app_password)).status_code == 207
    accounts.revoke_app_password(core, "alice", listed[0].id)
    assert client.request("PROPFIND", DAV + "/", headers={"Depth": "0"},
                          auth=("alice", app_password)).status_code == 401


def test_wrong_password_shows_the_form_again_and_grants_nothing(client: TestClient, core: Core) -> None:
    flow = init(client)
    r = client.post(flow.login_path, data={"user": "alice", "password": "not-the-password"}, auth=None)
    assert r.status_code in (200, 401)
    assert "Wrong user name or password" in r.text and 'name="state"' not in r.text
    assert poll(client, flow) == (404, [])
    assert accounts.list_app_passwords(core, "alice") == []


def test_grant_needs_a_valid_state_token(client: TestClient, core: Core) -> None:
    flow = init(client)
    state = log_in(client, flow)
    assert grant(client, flow, None) == 403
    assert grant(client, flow, "") == 403
    assert grant(client, flow, state[:-4] + "0000") == 403
    issued, _, mac = state.partition(".")
    assert grant(client, flow, f"{int(issued) + 1}.{mac}") == 403
    # A state token is bound to its flow and its user.
    other = init(client)
    assert grant(client, other, state) == 403
    accounts.create_user(core, "mallory", "mallory-secret-pw")
    assert grant(client, flow, state, user="mallory") == 403
    assert poll(client, flow) == (404, [])
    assert accounts.list_app_passwords(core, "alice") == []
    assert grant(client, flow, state) == 200
    assert poll(client, flow)[0] == 200


def test_expired_flow_is_refused(client: TestClient, core: Core) -> None:
    clock = core.clock = FakeClock()
    flow = init(client)
    clock.advance(login_flow.FLOW_LIFETIME - 1)
    assert client.get(flow.login_path, auth=None).status_code == 200  # one second before: still open
    state = log_in(client, flow)  # a fresh state token: only the flow's age can refuse the grant
    clock.advance(1)  # exactly FLOW_LIFETIME after the flow started
    r = client.get(flow.login_path, auth=None)
    assert r.status_code == 403 and "expired" in r.text
    assert grant(client, flow, state) == 403
    assert poll(client, flow) == (404, [])
    assert accounts.list_app_passwords(core, "alice") == []


def test_granted_but_expired_flow_is_not_polled(client: TestClient, core: Core) -> None:
    clock = core.clock = FakeClock()
    early, late = init(client), init(client)
    assert grant(client, early, log_in(client, early)) == 200
    assert grant(client, late, log_in(client, late)) == 200
    clock.advance(login_flow.FLOW_LIFETIME - 1)
    assert poll(client, early)[0] == 200  # one second before it expires
    clock.advance(1)
    assert poll(client, late) == (404, [])


def test_database_holds_only_a_sealed_password(client: TestClient, core: Core) -> None:
    flow = init(client)
    assert grant(client, flow, log_in(client, flow)) == 200
    with core.db.read() as tx:
        row = tx.execute(select(login_flows)).one()._mapping
    assert row["login_name"] == "alice"
    assert flow.poll_token not in str(dict(row))
    sealed = bytes(row["sealed_password"])
    _, body = poll(client, flow)
    assert isinstance(body, dict)
    app_password = body["appPassword"].encode()
    assert app_password not in sealed and sealed != app_password
    with core.db.read() as tx:
        assert tx.execute(select(login_flows)).first() is None


def test_existing_app_password_logs_in_and_the_device_gets_its_own(client: TestClient, core: Core) -> None:
    existing = accounts.create_app_password(core, "alice", "old device")
    flow = init(client)
    r = client.post(flow.login_path + "/apptoken", data={"user": "alice", "password": PASSWORD}, auth=None)
    assert r.status_code == 200 and "not an app password" in r.text
    r = client.post(flow.login_path + "/apptoken", data={"user": "alice", "password": existing}, auth=None)
    assert r.status_code == 200 and "you may close this window" in r.text
    status, body = poll(client, flow)
    assert status == 200 and isinstance(body, dict) and body["appPassword"] != existing
    names = [a.name for a in accounts.list_app_passwords(core, "alice")]
    assert len(names) == 2 and names[0] == "old device"
    for token in (existing, body["appPassword"]):  # both work, and each can be revoked alone
        r = client.request("PROPFIND", "/remote.php/dav/files/alice/", auth=("alice", token), headers={"Depth": "0"})
        assert r.status_code == 207


def test_pages_speak_french_or_english(client: TestClient) -> None:
    flow = init(client)
    fr = client.get(flow.login_path, headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"}, auth=None)
    assert 'lang="fr"' in fr.text and "demande l’accès à votre compte" in fr.text
    en = client.get(flow.login_path, headers={"Accept-Language": "de-DE,en;q=0.5"}, auth=None)
    assert 'lang="en"' in en.text and "wants access to your account" in en.text
    assert 'lang="en"' in client.get(flow.login_path, auth=None).text
    state_fr = client.post(flow.login_path, data={"user": "alice", "password": PASSWORD}, auth=None,
                           headers={"Accept-Language": "fr"})
    assert "Accorder l’accès" in state_fr.text


def test_client_name_is_escaped(client: TestClient) -> None:
    r = client.post("/index.php/login/v2", headers={"User-Agent": '<script>alert("x")</script>'}, auth=None)
    page = client.get(urlsplit(r.json()["login"]).path, auth=None)
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_unknown_tokens(client: TestClient) -> None:
    assert client.post("/index.php/login/v2/poll", data={"token": "nope"}, auth=None).status_code == 404
    assert client.post("/index.php/login/v2/poll", auth=None).status_code == 404
    r = client.get("/index.php/login/v2/flow/unknown-login-token", auth=None)
    assert r.status_code == 403 and r.headers["x-frame-options"] == "DENY"


def test_purge_expired_deletes_only_expired_flows(client: TestClient, core: Core) -> None:
    clock = core.clock = FakeClock()
    init(client)
    clock.advance(login_flow.FLOW_LIFETIME - 1)
    assert login_flow.purge_expired(core) == 0
    clock.advance(1)
    assert login_flow.purge_expired(core) == 1
    with core.db.read() as tx:
        assert tx.execute(select(login_flows)).first() is None


DENY_FORM = re.compile(r'<form method="post" action="([^"]+/deny)">')


def deny(client: TestClient, flow: Flow, state: str, **headers: str) -> Response:
    return client.post(flow.login_path + "/deny", data={"user": "alice", "state": state}, auth=None,
                       headers=headers)


def test_deny_ends_the_flow_for_good(client: TestClient, core: Core) -> None:
    flow = init(client)
    page = client.post(flow.login_path, data={"user": "alice", "password": PASSWORD}, auth=None)
    found = DENY_FORM.search(page.text)
    assert found and found.group(1) == flow.login_path + "/deny" and "Deny access" in page.text
    state = STATE.search(page.text).group(1)  # type: ignore[union-attr]
    r = deny(client, flow, state)
    assert r.status_code == 200 and "Access was denied" in r.text and "mirall/3.7.3" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    for _ in range(3):
        assert poll(client, flow) == (404, [])
    assert grant(client, flow, state) == 403
    assert client.get(flow.login_path, auth=None).status_code == 403
    assert accounts.list_app_passwords(core, "alice") == []


def test_deny_page_speaks_french(client: TestClient) -> None:
    flow = init(client)
    page = client.post(flow.login_path, data={"user": "alice", "password": PASSWORD}, auth=None,
                       headers={"Accept-Language": "fr"})
    assert "Refuser l’accès" in page.text
    r = deny(client, flow, STATE.search(page.text).group(1), **{"Accept-Language": "fr"})  # type: ignore[union-attr]
    assert r.status_code == 200 and "L’accès a été refusé" in r.text and 'lang="fr"' in r.text


def test_deny_needs_the_state_token(client: TestClient) -> None:
    flow = init(client)
    state = log_in(client, flow)
    assert deny(client, flow, "").status_code == 403
    assert deny(client, flow, state[:-4] + "0000").status_code == 403
    assert grant(client, flow, state) == 200, "a forged denial changed nothing"
    assert poll(client, flow)[0] == 200


def test_a_flow_survives_a_restart_and_moves_between_nodes(client: TestClient, core: Core, tmp_path: Path) -> None:
    flow = init(client)
    state = log_in(client, flow)  # issued by this node
    other = open_core(make_settings(tmp_path / "data"))  # another node (or this one restarted)
    try:
        with TestClient(build_app(make_settings(tmp_path / "data"), other)) as node2:
            assert grant(node2, flow, state) == 200
            status, body = poll(node2, flow)
            assert status == 200 and isinstance(body, dict) and body["loginName"] == "alice"
        with core.db.read() as tx:
            keys = tx.execute(select(meta_kv.c.value).where(meta_kv.c.key == "login_flow_state_key")).all()
        assert len(keys) == 1 and len(keys[0][0]) == 64
        assert poll(client, flow) == (404, [])
    finally:
        other.db.dispose()


def test_starting_flows_is_rate_limited_per_address(core: Core, tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    core.clock = lambda: now[0]
    app = build_app(make_settings(tmp_path / "data", login_flow_starts_per_address=3,
                                  login_failure_decay_seconds=20), core)
    with TestClient(app, client=("192.0.2.1", 1000)) as a, TestClient(app, client=("192.0.2.2", 1000)) as b:
        statuses = [a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA})
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and "too many" in r.json()["message"]
        assert b.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}).status_code == 200
        now[0] += 10  # half a start has leaked away: 2.5 of 3, one more fits
        assert a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}).status_code == 200
        r = a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA})
        assert r.status_code == 429 and r.headers["retry-after"] == "11"
        now[0] += 9.9  # the count (3.5) falls below 3 after 10 s: Retry-After rounds up
        assert a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}).status_code == 429
        now[0] += 11 - 9.9
        assert a.post("/index.php/login/v2", headers={"User-Agent": CLIENT_UA}).status_code == 200
