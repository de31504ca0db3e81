# SPDX-License-Identifier: EUPL-1.2
"""Nextcloud's own integration scenarios (nextcloud/server build/integration/*_features/*.feature),
ported to pytest against the in-process app. The Background of those features gives every new
user a skeleton; `user0` here gets the same files with the same bytes where a step depends on
them (welcome.txt's bytes 52-78 are "example file for developers", parent.txt's 1-8 "extcloud").

Each test keeps the scenario's name in its docstring. Steps map to plain HTTP: "using old dav
path" is /remote.php/webdav, "new dav path" /remote.php/dav/files/USER."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from cartable.server import build_app
from tests.conftest import make_settings

USER, PASSWORD = "user0", "user0-secret-pw"
WELCOME = (b"Welcome to your Nextcloud account!\n\nThis is just an example file for developers and git users.\n"
           b"The folder PARENT is an example of a folder with a file in it.\n")
TEXTFILE = b"Nextcloud test text file\n"
SKELETON = {"welcome.txt": WELCOME, **{f"textfile{i}.txt": TEXTFILE for i in range(5)},
            "PARENT/parent.txt": TEXTFILE}
OLD, NEW = "/remote.php/webdav", f"/remote.php/dav/files/{USER}"


@dataclass
class Nc:
    """A user's session the way the scenarios' steps talk: `dav` is the current dav path."""

    client: TestClient
    core: Core
    dav: str = NEW

    def url(self, path: str) -> str:
        return self.dav + "/" + path.lstrip("/")

    def request(self, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.request(method, self.url(path), **kwargs)

    def moves(self, src: str, dst: str, **headers: str):  # type: ignore[no-untyped-def]
        return self.request("MOVE", src, headers={"Destination": self.url(dst), **headers})

    def copies(self, src: str, dst: str):  # type: ignore[no-untyped-def]
        return self.request("COPY", src, headers={"Destination": self.url(dst)})

    def download(self, path: str, rng: str | None = None):  # type: ignore[no-untyped-def]
        return self.request("GET", path, headers={"Range": rng} if rng else {})

    def mkcol(self, path: str) -> int:
        return int(self.request("MKCOL", path).status_code)


def _skeleton(client: TestClient) -> None:
    for folder in ("FOLDER", "PARENT"):
        assert client.request("MKCOL", f"{NEW}/{folder}").status_code == 201
    for path, data in SKELETON.items():
        assert client.put(f"{NEW}/{path}", content=data).status_code == 201


@pytest.fixture
def nc(core: Core, tmp_path: Path) -> Iterator[Nc]:
    accounts.create_user(core, USER, PASSWORD)
    with TestClient(build_app(make_settings(tmp_path / "data"), core), base_url="http://testserver") as tc:
        tc.auth = (USER, PASSWORD)
        _skeleton(tc)
        yield Nc(tc, core)


@pytest.fixture(params=["old", "new"])
def nc_any(nc: Nc, request: pytest.FixtureRequest) -> Nc:
    """Scenarios written once per dav path ("old way", "new endpoint")."""
    nc.dav = OLD if request.param == "old" else NEW
    return nc
