# SPDX-License-Identifier: EUPL-1.2
"""The root ``core`` and ``client`` fixtures, made cheap for the many small tests here: the data
folder (migrated, with alice and an app password) is prepared once per module and copied for each
test, and the client signs in with the app password (no argon2 per test)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from cartable.server import build_app, open_core
from tests.conftest import PASSWORD, make_settings


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("template") / "data"
    core = open_core(make_settings(data))
    accounts.create_user(core, "alice", PASSWORD)
    token = accounts.create_app_password(core, "alice", "tests")
    core.db.dispose()
    return data, token


@pytest.fixture
def core(template: tuple[Path, str], tmp_path: Path) -> Iterator[Core]:
    shutil.copytree(template[0], tmp_path / "data")
    c = open_core(make_settings(tmp_path / "data"))
    yield c
    c.db.dispose()


@pytest.fixture
def client(core: Core, template: tuple[Path, str], tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(make_settings(tmp_path / "data"), core)
    with TestClient(app, base_url="http://testserver") as tc:
        tc.auth = ("alice", template[1])
        yield tc
