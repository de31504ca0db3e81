# SPDX-License-Identifier: EUPL-1.2
"""Display names and e-mail addresses: set, cleared, refused when hostile, recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cartable.core import accounts, audit
from cartable.core.audit import Actor
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, NotFound
from tests.core.conftest import make_core


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    c = make_core(tmp_path)
    accounts.create_user(c, "alice", "alice-secret-pw")
    yield c
    c.db.dispose()


def test_set_and_clear(core: Core) -> None:
    info = accounts.set_profile(core, "ALICE", display_name="  Alice Lefèvre ", email=" alice@ecole.fr ",
                                actor=Actor("cli:root"))
    assert (info.name, info.display_name, info.email) == ("alice", "Alice Lefèvre", "alice@ecole.fr")
    assert accounts.set_profile(core, "alice", email="").email == ""  # cleared
    assert accounts.get_user(core, "alice").display_name == "Alice Lefèvre"  # untouched
    assert accounts.set_profile(core, "alice", display_name="").display_name == "alice"  # back to the name
    details = [e.detail for e in reversed(audit.query(core, event="user.updated"))]
    assert details == ["display name: Alice Lefèvre, email: alice@ecole.fr", "email: ", "display name: alice"]
    with pytest.raises(NotFound):
        accounts.set_profile(core, "bob", email="bob@ecole.fr")


@pytest.mark.parametrize(("field", "value"), [
    ("email", "not-an-address"), ("email", "a@b@c"), ("email", "a b@c.fr"), ("email", "a@b.fr\x00"),
    ("email", "a@\nb.fr"), ("email", "x" * 251 + "@b.fr"),
    ("display_name", "x" * 256), ("display_name", "A\x00B"), ("display_name", "A\nB"),
    ("display_name", "\u202eevil"),
])
def test_hostile_values_are_refused_and_change_nothing(core: Core, field: str, value: str) -> None:
    before = accounts.get_user(core, "alice")
    with pytest.raises(InvalidInput):
        accounts.set_profile(core, "alice", **{field: value})
    assert accounts.get_user(core, "alice") == before
    assert audit.query(core, event="user.updated") == []
    with pytest.raises(InvalidInput):
        accounts.create_user(core, "bob", "bob-secret-pw", **{field: value})
