# SPDX-License-Identifier: EUPL-1.2
"""The sync API's changes feed (/api/v1/changes, core/changes.py): what a client reads after its
cursor, when a cursor is gone, trimming, the JSON errors, and the long-poll."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts, changes
from cartable.core.context import Core
from cartable.store.meta import journal
from tests.conftest import DAV, PASSWORD

API = "/api/v1/changes"


def ok(r, *codes: int):  # type: ignore[no-untyped-def]
    assert r.status_code in (codes or (200, 201, 204)), (r.status_code, r.text)
    return r


def feed(client: TestClient, cursor: str, **params: object) -> dict:
    r = client.get(API, params={"cursor": cursor, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_new_client_starts_at_the_present_and_reads_what_follows(client: TestClient) -> None:
    ok(client.put(f"{DAV}/before.txt", content=b"old"))
    start = client.get(API).json()
    assert start["changes"] == [] and start["more"] is False and start["cursor"]
    ok(client.request("MKCOL", f"{DAV}/docs"))
    ok(client.put(f"{DAV}/docs/a.txt", content=b"aaa", headers={"X-Cartable-Device": "laptop",
                                                                 "X-Cartable-Operation": "op-1"}))
    ok(client.request("MOVE", f"{DAV}/docs/a.txt", headers={"Destination": f"{DAV}/docs/b.txt"}))
    ok(client.put(f"{DAV}/docs/b.txt", content=b"bbbb"))
    ok(client.delete(f"{DAV}/before.txt"))
    got = feed(client, start["cursor"])
    ops = [(c["op"], c["name"], c["kind"]) for c in got["changes"]]
    assert ops == [("create", "docs", "folder"), ("create", "a.txt", "file"), ("move", "b.txt", "file"),
                   ("modify", "b.txt", "file"), ("delete", "before.txt", "file")]
    created = got["changes"][1]
    assert created["device"] == "laptop" and created["operation"] == "op-1" and created["size"] == 3
    assert created["parent"] == got["changes"][0]["id"]
    assert got["changes"][3]["size"] == 4 and got["changes"][3]["version"] != created["version"]
    # the next cursor has nothing more to say
    again = feed(client, got["cursor"])
    assert again["changes"] == [] and again["more"] is False


def test_pages_of_limit_entries_with_more(client: TestClient) -> None:
    start = client.get(API).json()["cursor"]
    for i in range(7):
        ok(client.put(f"{DAV}/f{i}.txt", content=b"x"))
    seen, cursor = [], start
    while True:
        page = feed(client, cursor, limit=3)
        assert len(page["changes"]) <= 3
        seen += [c["name"] for c in page["changes"]]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert seen == [f"f{i}.txt" for i in range(7)]


def test_another_users_changes_never_show(core: Core, client: TestClient) -> None:
    accounts.create_user(core, "bob", PASSWORD)
    start = client.get(API).json()["cursor"]
    bob = TestClient(client.app, base_url="http://testserver")
    bob.auth = ("bob", PASSWORD)
    assert bob.put("/remote.php/dav/files/bob/secret.txt", content=b"s").status_code == 201
    assert feed(client, start)["changes"] == []
    # bob's own cursor sees it; the same cursor text read by alice shows her space only
    assert [c["name"] for c in bob.get(API, params={"cursor": start}).json()["changes"]] == ["secret.txt"]


@pytest.mark.parametrize("bad", ["", "not-a-cursor", "YzE6eDp5", "YzE6YWJjOi0x", "%00"])
def test_a_cursor_this_server_did_not_make_is_a_clear_400(client: TestClient, bad: str) -> None:
    r = client.get(API, params={"cursor": bad}) if bad else client.get(API + "?cursor=x!")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and "cursor" in err["detail"]


def test_a_cursor_from_another_database_is_gone(core: Core, client: TestClient) -> None:
    ok(client.put(f"{DAV}/a.txt", content=b"a"))
    cursor = client.get(API).json()["cursor"]
    with core.db.write() as tx:  # what a restore from another copy looks like: a new epoch
        journal.set_kv(tx, "epoch", "restored0000000000000000")
    r = client.get(API, params={"cursor": cursor}, headers={"Accept-Language": "en"})
    assert r.status_code == 410
    err = r.json()["error"]
    assert err["code"] == "gone" and "do not delete" in err["detail"] and err["message"].startswith("This reference")
    fr = client.get(API, params={"cursor": cursor})  # French by default
    assert fr.json()["error"]["message"].startswith("Cette référence") and fr.headers["content-language"] == "fr"


def test_a_cursor_ahead_of_the_journal_is_gone(core: Core, client: TestClient) -> None:
    with core.db.read() as tx:
        epoch, head = journal.get_kv(tx, "epoch"), journal.head(tx)
    assert epoch is not None
    r = client.get(API, params={"cursor": changes.encode(epoch, head + 50)})
    assert r.status_code == 410 and "restored from a backup" in r.json()["error"]["detail"]


def test_trim_keeps_young_entries_and_an_old_cursor_is_gone(core: Core, client: TestClient) -> None:
    now = [time.time()]
    core.clock = lambda: now[0]
    start = client.get(API).json()["cursor"]
    ok(client.put(f"{DAV}/old.txt", content=b"o"))
    mid = feed(client, start)["cursor"]
    now[0] += 10 * 86400
    ok(client.put(f"{DAV}/young.txt", content=b"y"))
    now[0] += 85 * 86400  # old.txt's entry is 95 days old, young.txt's 85
    assert changes.trim(core) >= 1
    assert changes.trim(core) == 0  # nothing more to trim
    assert client.get(API, params={"cursor": start}).status_code == 410
    assert [c["name"] for c in feed(client, mid)["changes"]] == ["young.txt"]


def test_an_idle_cursor_follows_the_journal_so_trimming_never_strands_it(core: Core, client: TestClient,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # On PostgreSQL an idle cursor moves to the watermark: the head a read saw changes.LAG seconds
    # ago (api/watch.py). The test does not wait ten minutes: LAG 0 makes the previous read's head
    # the watermark. SQLite moves it to the head at once.
    monkeypatch.setattr(changes, "LAG", 0.0)
    now = [time.time()]
    core.clock = lambda: now[0]
    accounts.create_user(core, "bob", PASSWORD)
    idle = client.get(API).json()["cursor"]
    bob = TestClient(client.app, base_url="http://testserver")
    bob.auth = ("bob", PASSWORD)
    for i in range(3):
        ok(bob.put(f"/remote.php/dav/files/bob/{i}.txt", content=b"b"))
    time.sleep(1.1)  # the watcher keeps one head sample per second
    for _ in range(2):  # nothing for alice, but her cursor moves past bob's entries
        idle = feed(client, idle)["cursor"]
        time.sleep(1.1)
    now[0] += 91 * 86400
    assert changes.trim(core) >= 3
    assert feed(client, idle)["changes"] == []


def test_retention_zero_keeps_everything(core: Core) -> None:
    from dataclasses import replace
    core.limits = replace(core.limits, journal_retention_days=0)
    assert changes.trim(core, now=time.time() + 10**9) == 0


def test_errors_are_one_json_shape(client: TestClient) -> None:
    r = client.get(API, auth=("alice", "wrong-password-here"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = client.post(API)
    assert r.status_code == 405 and r.headers["allow"] == "GET" and r.json()["error"]["code"] == "method_not_allowed"
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get(API + "/wait")
    assert r.status_code == 400 and "cursor" in r.json()["error"]["detail"]
    r = client.get(API + "/wait", params={"cursor": client.get(API).json()["cursor"], "timeout": "9999"})
    assert r.status_code == 400 and "timeout" in r.json()["error"]["detail"]


def test_wait_answers_at_once_when_something_is_new(client: TestClient) -> None:
    cursor = client.get(API).json()["cursor"]
    ok(client.put(f"{DAV}/n.txt", content=b"n"))
    t0 = time.monotonic()
    r = client.get(API + "/wait", params={"cursor": cursor, "timeout": 30})
    assert r.status_code == 200 and [c["name"] for c in r.json()["changes"]] == ["n.txt"]
    assert time.monotonic() - t0 < 20


def test_wait_times_out_empty(client: TestClient) -> None:
    cursor = client.get(API).json()["cursor"]
    r = client.get(API + "/wait", params={"cursor": cursor, "timeout": 0.5})
    assert r.status_code == 200 and r.json()["changes"] == [] and r.json()["cursor"]


def test_wait_is_woken_by_a_write(client: TestClient) -> None:
    cursor = client.get(API).json()["cursor"]
    writer = TestClient(client.app, base_url="http://testserver")
    writer.auth = ("alice", PASSWORD)

    def write_later() -> None:
        time.sleep(1.0)
        ok(writer.put(f"{DAV}/late.txt", content=b"late"))

    t = threading.Thread(target=write_later)
    t.start()
    t0 = time.monotonic()
    r = client.get(API + "/wait", params={"cursor": cursor, "timeout": 60})
    t.join()
    assert r.status_code == 200 and [c["name"] for c in r.json()["changes"]] == ["late.txt"]
    assert time.monotonic() - t0 < 50  # woken by the write, not by the 60 s timeout
