# SPDX-License-Identifier: EUPL-1.2
"""`cartable admin group|user set|user show|audit` as an operator types them (in process, on a
real data folder): results, one-line errors with exit status 1, and the audit trail they leave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartable.cli.admin import admin_app, parse_when
from cartable.core import accounts
from cartable.server import open_core
from tests import backend
from tests.conftest import make_settings


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    core = open_core(make_settings(folder))
    for name in ("alice", "bob"):
        accounts.create_user(core, name, f"{name}-secret-pw")
    core.db.dispose()
    return folder


def admin(data: Path, *args: str) -> tuple[int, str, str]:
    # The instance's backend reaches the command as an operator gives it: CARTABLE_* variables.
    env = {"CARTABLE_" + name.upper(): value for name, value in backend.settings_for(data).items()}
    r = CliRunner().invoke(admin_app, [*args, "--data", str(data)], env=env)
    return r.exit_code, r.stdout, r.stderr


def test_groups_from_the_command_line(data: Path) -> None:
    assert admin(data, "group", "create", "profs", "--display-name", "Professeurs du lycée") == \
        (0, "created group 'profs' (Professeurs du lycée)\n", "")
    assert admin(data, "group", "create", "cdi")[0] == 0
    code, out, _ = admin(data, "group", "add", "profs", "alice", "BOB")
    assert code == 0 and out == "added 'alice' to 'profs'\nadded 'BOB' to 'profs'\n"
    assert admin(data, "group", "add", "profs", "alice")[1] == "'alice' was already in 'profs'\n"
    code, out, _ = admin(data, "group", "list")
    assert code == 0 and out.splitlines() == ["name                     members  display name",
                                              "cdi                            0  cdi",
                                              "profs                          2  Professeurs du lycée"]
    assert admin(data, "group", "list", "--search", "LYC")[1].splitlines()[1:] == [
        "profs                          2  Professeurs du lycée"]
    assert admin(data, "group", "members", "PROFS")[1].splitlines() == [
        "alice                    active    alice", "bob                      active    bob"]
    assert admin(data, "group", "remove", "profs", "bob")[1] == "removed 'bob' from 'profs'\n"
    assert admin(data, "group", "remove", "profs", "bob")[1] == "'bob' was not in 'profs'\n"
    assert admin(data, "group", "rename", "profs", "Les profs")[1] == "group 'profs' is now shown as 'Les profs'\n"
    assert admin(data, "user", "show", "alice")[1].splitlines()[-1] == "groups:       profs"
    assert admin(data, "group", "delete", "profs", "--yes") == (0, "group 'profs' deleted\n", "")
    assert admin(data, "group", "members", "profs")[0] == 1


@pytest.mark.parametrize(("args", "error"), [
    (("group", "create", "PROFS"), "error: a group named 'profs' already exists (group names are unique without "
                                   "regard to case)\n"),
    (("group", "create", "profs"), "error: a group named 'profs' already exists\n"),
    (("group", "create", "a" * 65), f"error: group name {'a' * 65!r} must be 1-64 letters, digits or . _ @ + - "
                                    "and start with a letter or digit\n"),
    (("group", "create", ""), "error: group name '' must be 1-64 letters, digits or . _ @ + - and start with a "
                              "letter or digit\n"),
    (("group", "create", "x\x00y"), "error: group name 'x\\x00y' must be 1-64 letters, digits or . _ @ + - and "
                                    "start with a letter or digit\n"),
    (("group", "create", "ok", "--display-name", "a\nb"), "error: the display name must not contain control "
                                                          "characters, line breaks or direction overrides\n"),
    (("group", "add", "nope", "alice"), "error: no group named 'nope'\n"),
    (("group", "add", "profs", "nobody"), "error: no user named 'nobody'\n"),
    (("group", "remove", "profs", "nobody"), "error: no user named 'nobody'\n"),
    (("group", "delete", "nope", "--yes"), "error: no group named 'nope'\n"),
    (("group", "members", "nope"), "error: no group named 'nope'\n"),
    (("user", "set", "alice", "--email", "not-an-address"), "error: 'not-an-address' is not an e-mail address "
                                                            "(name@example.org)\n"),
    (("user", "set", "nobody", "--email", "a@b.fr"), "error: no user named 'nobody'\n"),
    (("user", "set", "alice"), "error: give --display-name or --email (or both)\n"),
    (("audit", "--event", "nope"), "error: unknown event 'nope'; events are: "),
    (("audit", "--since", "yesterday"), "error: 'yesterday' is not a time: give an ISO date (2026-12-01, "
                                        "2026-12-01T08:30) or an age (30m, 12h, 7d, 2w)\n"),
    (("audit", "--limit", "0"), "error: the limit must be between 1 and 100000\n"),
])
def test_refusals_are_one_clear_line(data: Path, args: tuple[str, ...], error: str) -> None:
    assert admin(data, "group", "create", "profs")[0] == 0
    code, out, err = admin(data, *args)
    assert code == 1 and out == "" and err.startswith(error) and err.count("\n") == 1, err
    assert admin(data, "group", "list")[1].splitlines()[1:] == ["profs                          0  profs"]


def test_display_name_and_email(data: Path) -> None:
    code, out, _ = admin(data, "user", "set", "ALICE", "--display-name", "Alice Lefèvre", "--email", "a@ecole.fr")
    assert code == 0 and out == "user 'alice': display name 'Alice Lefèvre', e-mail a@ecole.fr\n"
    lines = admin(data, "user", "show", "alice")[1].splitlines()
    assert lines[:3] == ["name:         alice", "display name: Alice Lefèvre", "e-mail:       a@ecole.fr"]
    assert admin(data, "user", "set", "alice", "--email", "")[1] == \
        "user 'alice': display name 'Alice Lefèvre', e-mail (none)\n"


def test_audit_queries(data: Path) -> None:
    admin(data, "group", "create", "profs")
    admin(data, "group", "add", "profs", "alice")
    admin(data, "user", "set", "bob", "--display-name", "Bob")
    code, out, _ = admin(data, "audit")
    lines = out.splitlines()
    assert code == 0 and [line.split("  ")[1] for line in lines] == [
        "user.created", "user.created", "group.created", "group.member_added", "user.updated"]  # oldest first
    assert lines[3].split("  ")[2:] == ["success", lines[3].split("  ")[3], "-", "group:profs", "user:alice"]
    assert lines[3].split("  ")[3].startswith("cli")
    code, out, _ = admin(data, "audit", "--event", "group.member_added", "--json")
    record = json.loads(out)
    assert record["object"] == "group:profs" and record["detail"] == "user:alice" and record["outcome"] == "success"
    assert record["time"].endswith("Z") and record["actor"].startswith("cli")
    assert len(admin(data, "audit", "--limit", "2")[1].splitlines()) == 2
    assert admin(data, "audit", "--since", "1h")[1].count("\n") == 5
    assert admin(data, "audit", "--until", "2000-01-01")[1] == ""
    assert admin(data, "audit", "--user", "CLI:NOBODY")[1] == ""
    assert admin(data, "audit", "purge") == (0, "purged 0 audit events older than 365 days\n", "")


def test_times_for_since_and_until() -> None:
    now = 1_800_000_000.0
    assert parse_when("7d", now) == now - 7 * 86400 and parse_when("30m", now) == now - 1800
    assert parse_when("2026-12-01", now) == 1796083200.0  # midnight UTC
    assert parse_when("2026-12-01T01:00:00+01:00", now) == 1796083200.0
    for bad in ("", "7 days", "-1d", "99999999d", "2026-13-01"):
        with pytest.raises(ValueError):
            parse_when(bad, now)
