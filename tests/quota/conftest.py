# SPDX-License-Identifier: EUPL-1.2
"""The root ``core`` and ``client`` fixtures, made cheap for the many small tests here: the data
folder (migrated, with alice and an app password) is prepared once per module and copied for each
test, and the client signs in with the app password (no argon2 per test). On pg-rgw the database
is not in the folder: each test prepares its own (a fresh database, tests/backend.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from cartable.server import build_app, open_core
from tests import backend
from tests.conftest import PASSWORD, make_settings


def _prepare(data: Path) -> str:
    core = open_core(make_settings(data))
    accounts.create_user(core, "alice", PASSWORD)
    token = accounts.create_app_password(core, "alice", "tests")
    core.db.dispose()
    return token


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str] | None:
    if backend.on_pg():
        return None
    data = tmp_path_factory.mktemp("template") / "data"
    return data, _prepare(data)


@pytest.fixture
def token(template: tuple[Path, str] | None, tmp_path: Path) -> str:
    """alice's app password, in the test's own instance at tmp_path/data."""
    if template is None:
        return _prepare(tmp_path / "data")
    shutil.copytree(template[0], tmp_path / "data")
    return template[1]


@pytest.fixture
def core(token: str, tmp_path: Path) -> Iterator[Core]:
    c = open_core(make_settings(tmp_path / "data"))
    yield c
    c.db.dispose()


@pytest.fixture
def client(core: Core, token: str, tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(make_settings(tmp_path / "data"), core)
    with TestClient(app, base_url="http://testserver") as tc:
        tc.auth = ("alice", token)
        yield tc
