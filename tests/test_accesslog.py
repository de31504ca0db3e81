# SPDX-License-Identifier: EUPL-1.2
"""The request log as an operator reads it: one line per request with who, what, how long, in text
or JSON lines; server errors with their traceback; never a credential, a token or a server path
in what the client sees."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from cartable.http.accesslog import JsonFormatter, TextFormatter
from cartable.store.blobs.base import StoreUnavailable
from tests.conftest import DAV, PASSWORD


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cartable.access"]


def both_formats(record: logging.LogRecord) -> tuple[str, dict[str, object]]:
    return TextFormatter().format(record), json.loads(JsonFormatter().format(record))


def test_one_line_per_request_with_who_what_and_how_long(client: TestClient,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cartable.access")
    r = client.put(DAV + "/a%20b.txt?token=query-secret-123", content=b"hello",
                   headers={"X-Request-ID": "req-42"})
    assert r.status_code == 201
    assert client.get(DAV + "/a%20b.txt").status_code == 200
    (put, get) = lines(caplog)
    text, data = both_formats(put)
    assert data["method"] == "PUT" and data["path"] == "/remote.php/dav/files/alice/a%20b.txt"
    assert data["status"] == 201 and data["user"] == "alice" and data["client"] == "testclient"
    assert data["request_id"] == "req-42" and isinstance(data["duration_ms"], float)
    assert data["logger"] == "cartable.access" and data["level"] == "info" and str(data["time"]).endswith("Z")
    assert 'testclient alice "PUT /remote.php/dav/files/alice/a%20b.txt" 201 0 ' in text
    assert text.endswith("ms rid=req-42")
    _, got = both_formats(get)
    assert got["bytes"] == 5 and got["status"] == 200 and got["request_id"] == ""
    for record in (put, get):
        for out in both_formats(record):
            rendered = json.dumps(out) if isinstance(out, dict) else out
            assert PASSWORD not in rendered and "query-secret-123" not in rendered and "token=" not in rendered


def test_credentials_and_tokens_never_reach_the_log(client: TestClient, core: Core,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = accounts.create_app_password(core, "alice", "laptop")
    assert client.request("PROPFIND", DAV + "/", headers={"Depth": "0", "Authorization": f"Bearer {token}"},
                          auth=None).status_code == 207
    assert client.request("PROPFIND", DAV + "/", headers={"Depth": "0"},
                          auth=("alice", "wrong-" + PASSWORD)).status_code == 401
    r = client.post("/index.php/login/v2", auth=None)
    login_url, poll_token = r.json()["login"], r.json()["poll"]["token"]
    login_token = login_url.rsplit("/", 1)[1]
    assert client.get(login_url, auth=None).status_code == 200
    assert client.post(login_url, data={"user": "alice", "password": PASSWORD}, auth=None).status_code == 200
    assert client.post("/index.php/login/v2/poll", data={"token": poll_token}, auth=None).status_code == 404
    everything = "\n".join(TextFormatter().format(r) + JsonFormatter().format(r) for r in caplog.records
                           if r.name.startswith("cartable"))  # (httpx logs the test client's URLs)
    for secret in (token, PASSWORD, login_token, poll_token):
        assert secret not in everything
    access = [r.request for r in lines(caplog)]  # type: ignore[attr-defined]
    assert [a["user"] for a in access[:2]] == ["alice", ""]
    assert [a["status"] for a in access[:2]] == [207, 401]
    assert access[3]["path"] == "/index.php/login/v2/flow/*"
    assert access[4]["path"] == "/index.php/login/v2/flow/*" and access[4]["user"] == "alice"


def test_a_hostile_path_cannot_forge_a_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cartable.access")
    assert client.get(DAV + '/x%0A1.2.3.4 - "GET /admin" 200', auth=None).status_code == 401
    (record,) = lines(caplog)
    text, data = both_formats(record)
    assert "\n" not in text and '"GET /admin"' not in text
    assert data["path"] == "/remote.php/dav/files/alice/x%0A1.2.3.4%20-%20%22GET%20/admin%22%20200"


def test_server_errors_are_logged_with_their_traceback(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from cartable.nextcloud import ocs

    def broken(*args: object) -> object:
        raise RuntimeError("the capabilities broke")

    monkeypatch.setattr(ocs, "capabilities", broken)
    caplog.set_level(logging.INFO)
    r = client.get("/ocs/v1.php/cloud/capabilities", auth=None)
    assert r.status_code == 500 and "RuntimeError" not in r.text and "broke" not in r.text
    error = next(r for r in caplog.records if r.name == "cartable.error")
    data = json.loads(JsonFormatter().format(error))
    assert "RuntimeError: the capabilities broke" in str(data["traceback"])
    assert data["message"] == "internal error on GET /ocs/v1.php/cloud/capabilities"
    assert "Traceback (most recent call last)" in TextFormatter().format(error)
    (access,) = lines(caplog)
    assert access.request["status"] == 500  # type: ignore[attr-defined]


def test_a_storage_failure_names_no_server_path(client: TestClient, core: Core, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    secret_path = str(tmp_path / "data" / "chunks" / "78")

    def full_disk(*args: object, **kwargs: object) -> object:
        raise StoreUnavailable(f"cannot write chunks under {secret_path}: No space left on device")

    monkeypatch.setattr(core.blobs, "put_many", full_disk)
    caplog.set_level(logging.INFO)
    r = client.put(DAV + "/big.bin", content=bytes(range(256)) * 1024)  # not inline: goes to the chunk store
    assert r.status_code == 503
    assert "the storage is temporarily unavailable; try again later" in r.text
    assert str(tmp_path) not in r.text and "chunks" not in r.text
    assert any(secret_path in rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR)
