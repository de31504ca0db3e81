# SPDX-License-Identifier: EUPL-1.2
"""`cartable admin ...`: accounts, groups, app passwords, the audit log, fsck, gc, jobs, migrate.
Safe while the server runs (SQLite WAL lets both processes work; writers wait for each other).

Changes made here are recorded in the audit log with the actor ``cli:<system user>`` and no
address."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from cartable.cli.common import ConfigOpt, DataOpt, settings_from
from cartable.config import ConfigError, Settings, parse_size
from cartable.core import accounts, audit, fsck, gc, groups
from cartable.core.audit import Actor
from cartable.core.context import Core
from cartable.core.errors import CartableError

admin_app = typer.Typer(help="Administration commands.", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
apppw_app = typer.Typer(help="Manage app passwords (one per device).", no_args_is_help=True)
group_app = typer.Typer(help="Manage groups of users.", no_args_is_help=True)
audit_app = typer.Typer(help="Read the audit log (logins, credentials, accounts, groups...).",
                        invoke_without_command=True)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(group_app, name="group")
admin_app.add_typer(apppw_app, name="apppassword")
admin_app.add_typer(audit_app, name="audit")


def _actor() -> Actor:
    """Who runs this command, for the audit log: cli:<system user>."""
    import getpass

    try:
        return Actor(f"cli:{getpass.getuser()}")
    except (OSError, KeyError):
        return Actor("cli")


def _core(config: object, data: object) -> Core:
    """The core on the configured data folder; a startup problem is one line and exit status 2."""
    import os

    settings = settings_from(config, data=data)  # type: ignore[arg-type]
    os.umask(0o077)  # files this command creates are private to this user, as the server's
    return _open(settings)


def _open(settings: Settings) -> Core:
    from cartable.server import open_core
    from cartable.startup import StartupError

    try:
        return open_core(settings)
    except StartupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@contextmanager
def _reported() -> Iterator[None]:
    """A refused command prints the core's message and exits 1 (no traceback)."""
    try:
        yield
    except (CartableError, ConfigError) as exc:
        raise _fail(exc) from None


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


@user_app.command("add")
def user_add(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    quota: Annotated[Optional[str], typer.Option(help="Quota, e.g. 50GB (default: the configured one).")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown to other people.")] = "",
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Create an account (and its home folder)."""
    core = _core(config, data)
    with _reported():
        q = parse_size(quota) if quota is not None else None
        password = _read_password(password_stdin)
        accounts.create_user(core, name, password, is_admin=admin, quota=q, display_name=display_name,
                             email=email, actor=_actor())
    typer.echo(f"created user {name!r}")


@user_app.command("list")
def user_list(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """List accounts with their usage and quota."""
    core = _core(config, data)
    typer.echo(f"{'name':<24} {'admin':<6} {'state':<9} {'used':>10} {'quota':>10}")
    for u in accounts.list_users(core):
        typer.echo(f"{u.name:<24} {'yes' if u.is_admin else 'no':<6} "
                   f"{'disabled' if u.disabled else 'active':<9} {_human(u.used):>10} {_human(u.quota):>10}")


@user_app.command("passwd")
def user_passwd(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Change a password (cached logins with the old one stop working at once)."""
    core = _core(config, data)
    with _reported():
        accounts.set_password(core, name, _read_password(password_stdin), actor=_actor())
    typer.echo(f"password of {name!r} changed")


@user_app.command("disable")
def user_disable(name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Disable an account: it can no longer log in; its files are kept."""
    with _reported():
        accounts.set_disabled(_core(config, data), name, True, actor=_actor())
    typer.echo(f"user {name!r} disabled")


@user_app.command("enable")
def user_enable(name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Enable a disabled account."""
    with _reported():
        accounts.set_disabled(_core(config, data), name, False, actor=_actor())
    typer.echo(f"user {name!r} enabled")


@user_app.command("delete")
def user_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Delete an account and all its files."""
    if not yes and not typer.confirm(f"Delete user {name!r} and all their files?"):
        raise typer.Exit(1)
    with _reported():
        accounts.delete_user(_core(config, data), name, actor=_actor())
    typer.echo(f"user {name!r} deleted")


@user_app.command("quota")
def user_quota(
    name: str,
    size: Annotated[str, typer.Argument(help="New quota (e.g. 200GB), or 'default'.")],
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Set an account's quota."""
    with _reported():
        q = None if size == "default" else parse_size(size)
        accounts.set_quota(_core(config, data), name, q)
    typer.echo(f"quota of {name!r} set to {size}")


@user_app.command("set")
def user_set(
    name: str,
    display_name: Annotated[Optional[str], typer.Option(help="Name shown to other people ('' gives back the "
                                                             "login name).")] = None,
    email: Annotated[Optional[str], typer.Option(help="E-mail address ('' clears it).")] = None,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Change an account's display name or e-mail address."""
    if display_name is None and email is None:
        raise _fail(ValueError("give --display-name or --email (or both)"))
    with _reported():
        info = accounts.set_profile(_core(config, data), name, display_name=display_name, email=email,
                                    actor=_actor())
    typer.echo(f"user {info.name!r}: display name {info.display_name!r}, e-mail {info.email or '(none)'}")


@user_app.command("show")
def user_show(name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Show an account: display name, e-mail, state, usage, quota and groups."""
    core = _core(config, data)
    with _reported():
        info = accounts.get_user(core, name)
        its_groups = groups.groups_of(core, name)
    typer.echo(f"name:         {info.name}")
    typer.echo(f"display name: {info.display_name}")
    typer.echo(f"e-mail:       {info.email or '(none)'}")
    typer.echo(f"admin:        {'yes' if info.is_admin else 'no'}")
    typer.echo(f"state:        {'disabled' if info.disabled else 'active'}")
    typer.echo(f"used / quota: {_human(info.used)} / {_human(info.quota)}")
    typer.echo(f"groups:       {', '.join(g.name for g in its_groups) or '(none)'}")


@group_app.command("create")
def group_create(
    name: str,
    display_name: Annotated[str, typer.Option(help="Name shown to people (default: the name).")] = "",
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Create a group (its name is unique without regard to case)."""
    with _reported():
        info = groups.create_group(_core(config, data), name, display_name, actor=_actor())
    typer.echo(f"created group {info.name!r} ({info.display_name})")


@group_app.command("rename")
def group_rename(name: str, display_name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Change a group's display name (its name, which shares refer to, stays)."""
    with _reported():
        info = groups.set_display_name(_core(config, data), name, display_name, actor=_actor())
    typer.echo(f"group {info.name!r} is now shown as {info.display_name!r}")


@group_app.command("delete")
def group_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Delete a group and its memberships (the accounts stay)."""
    if not yes and not typer.confirm(f"Delete group {name!r}?"):
        raise typer.Exit(1)
    with _reported():
        groups.delete_group(_core(config, data), name, actor=_actor())
    typer.echo(f"group {name!r} deleted")


@group_app.command("add")
def group_add(group: str, users: Annotated[list[str], typer.Argument(help="One or more user names.")],
              data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Add users to a group (a user already in it is left as is)."""
    core = _core(config, data)
    with _reported():
        for user in users:
            added = groups.add_member(core, group, user, actor=_actor())
            typer.echo(f"added {user!r} to {group!r}" if added else f"{user!r} was already in {group!r}")


@group_app.command("remove")
def group_remove(group: str, users: Annotated[list[str], typer.Argument(help="One or more user names.")],
                 data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Remove users from a group (a user not in it is left as is)."""
    core = _core(config, data)
    with _reported():
        for user in users:
            removed = groups.remove_member(core, group, user, actor=_actor())
            typer.echo(f"removed {user!r} from {group!r}" if removed else f"{user!r} was not in {group!r}")


@group_app.command("list")
def group_list(
    search: Annotated[str, typer.Option(help="Only groups whose name or display name contains this.")] = "",
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """List groups: name, number of members, display name."""
    core = _core(config, data)
    with _reported():
        found = groups.search_groups(core, search)
        typer.echo(f"{'name':<24} {'members':>7}  display name")
        for g in found:
            typer.echo(f"{g.name:<24} {len(groups.members(core, g.name)):>7}  {g.display_name}")


@group_app.command("members")
def group_members(group: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """List a group's members: name, state, display name."""
    core = _core(config, data)
    with _reported():
        found = groups.members(core, group)
    for m in found:
        typer.echo(f"{m.name:<24} {'disabled' if m.disabled else 'active':<9} {m.display_name}")


@apppw_app.command("add")
def apppw_add(user: str, device: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Create an app password for a device; it is printed once."""
    with _reported():
        token = accounts.create_app_password(_core(config, data), user, device, actor=_actor())
    typer.echo(token)


@apppw_app.command("list")
def apppw_list(user: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """List a user's app passwords."""
    with _reported():
        for rec in accounts.list_app_passwords(_core(config, data), user):
            typer.echo(f"{rec.id}\t{rec.name}")


@apppw_app.command("revoke")
def apppw_revoke(user: str, app_id: int, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Revoke an app password: it stops working at once."""
    with _reported():
        accounts.revoke_app_password(_core(config, data), user, app_id, actor=_actor())
    typer.echo(f"app password {app_id} of {user!r} revoked")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: float) -> float:
    """A time for --since/--until: an ISO 8601 date or date-time (UTC unless it says otherwise),
    or an age such as 30m, 12h, 7d, 2w (that long before ``now``). ValueError otherwise."""
    import re

    text = text.strip()
    age = re.fullmatch(r"(\d{1,6})([smhdw])", text)
    if age:
        return now - int(age.group(1)) * _UNITS[age.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a time: give an ISO date (2026-12-01, 2026-12-01T08:30) "
                         "or an age (30m, 12h, 7d, 2w)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_lines(events: list[audit.AuditEvent], as_json: bool) -> list[str]:
    """What ``cartable admin audit`` prints: oldest first, one line per event (docs/operations.md)."""
    import json

    lines = []
    for e in reversed(events):
        if as_json:
            lines.append(json.dumps({"time": _iso(e.at), "event": e.event, "actor": e.actor, "address": e.address,
                                     "object": e.object, "outcome": e.outcome, "detail": e.detail},
                                    ensure_ascii=False))
        else:
            fields = (_iso(e.at), e.event, e.outcome, e.actor or "-", e.address or "-", e.object or "-", e.detail)
            lines.append("  ".join(fields).rstrip())
    return lines


@audit_app.callback()
def audit_cmd(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option(help="Only events whose actor is this user (any case).")] = None,
    event: Annotated[Optional[str], typer.Option(help="Only this event (login, group.created...).")] = None,
    outcome: Annotated[Optional[str], typer.Option(help="Only this outcome: success, failure or denied.")] = None,
    since: Annotated[Optional[str], typer.Option(help="From this time: ISO date or age (7d, 12h).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Before this time: ISO date or age.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events (the most recent).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Show audit events, oldest first (the most recent LIMIT matching the filters)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = (data, config)
        return
    core = _core(config, data)
    with _reported():
        try:
            start = None if since is None else parse_when(since, core.clock())
            end = None if until is None else parse_when(until, core.clock())
        except ValueError as exc:
            raise _fail(exc) from None
        events = audit.query(core, user=user, event=event, outcome=outcome, since=start, until=end, limit=limit)
    for line in audit_lines(events, as_json):
        typer.echo(line)


@audit_app.command("purge")
def audit_purge(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Delete the events older than audit_retention_days now (the server does it every
    gc_interval_seconds)."""
    core = _core(config, data)
    purged = audit.purge_audit(core)
    days = core.limits.audit_retention_days
    if days <= 0:
        typer.echo("audit_retention_days is 0: events are kept forever; nothing purged")
    else:
        typer.echo(f"purged {purged} audit events older than {days:g} days")


@admin_app.command("fsck")
def fsck_cmd(
    deep: Annotated[bool, typer.Option("--deep", help="Also re-hash every chunk's bytes.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Check manifests against the chunk store, reference counts and sizes. Exit 1 on problems."""
    report = fsck.check(_core(config, data), deep=deep)
    for p in report.problems:
        typer.echo(f"PROBLEM: {p}")
    typer.echo(f"{report.files} files, {report.folders} folders, {report.chunks} chunks, "
               f"{report.orphan_blobs} unreferenced blobs and {report.dying_chunks} dying chunks "
               "(the GC reclaims them): "
               f"{'OK' if report.ok else f'{len(report.problems)} problem(s)'}")
    if not report.ok:
        raise typer.Exit(1)


@admin_app.command("gc")
def gc_cmd(
    grace: Annotated[Optional[float], typer.Option(help="Grace period in seconds (default: configured).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="If a node is running a GC job, wait for it to finish "
                                                      "instead of giving up.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Collect garbage now: the same jobs, under the same leases, as the serving nodes run
    (abandoned uploads, expired locks, unreferenced chunks, one slice of the orphan sweep); say
    what is still waiting. Refused (exit 1) while a node is running one of them, unless --wait."""
    from cartable.core import jobs
    from cartable.server import job_policy

    if grace is not None and grace < 60:
        raise _fail(ValueError("a grace period under 60 s could delete chunks an upload is about to use"))
    settings = settings_from(config, data=data)
    core = _core(config, data)
    told: set[str] = set()

    def wait_for(held: jobs.LeaseHeld) -> None:
        if held.job not in told:
            told.add(held.job)
            typer.echo(f"waiting: the background job {held.job} is running on node {held.holder}", err=True)
        time.sleep(1.0)

    try:
        stats = jobs.run_gc(core, job_policy(settings), jobs.new_node_id("admin"), grace=grace,
                            on_held=wait_for if wait else None)
    except jobs.LeaseHeld as held:
        typer.echo(f"error: the background job {held.job} is running on node {held.holder} (its lease runs "
                   f"until {_utc(held.until)} UTC and is renewed while it works); it logs what it does there. "
                   "Run `cartable admin jobs` to follow it, and this command again once it is done, or "
                   "with --wait.", err=True)
        raise typer.Exit(1) from None
    except jobs.LeaseLost as exc:
        typer.echo(f"error: {exc}; the node that took it over finishes the collection", err=True)
        raise typer.Exit(1) from None
    for line in gc_report(stats):
        typer.echo(line)


def _utc(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def gc_report(stats: gc.GcStats) -> list[str]:
    """What ``cartable admin gc`` prints (docs/operations.md shows it)."""
    lines = [f"deleted {stats.chunks_deleted} chunks, {stats.orphans_deleted} orphan blobs, "
             f"{stats.temps_deleted} temporary files; released {stats.uploads_expired} abandoned uploads "
             f"and {stats.locks_purged} expired locks; purged {stats.trash_expired} trash items and "
             f"{stats.versions_expired} old versions for their age"]
    if stats.chunks_waiting == 0 or stats.next_collectible_at is None:
        lines.append("no chunk is waiting out the grace period")
    else:
        lines.append(f"{stats.chunks_waiting} chunks ({_human(stats.bytes_waiting)}) are waiting out the "
                     f"grace period; the first can be collected at {_utc(stats.next_collectible_at)} UTC")
    if stats.sweep_complete:
        lines.append(f"orphan sweep: listed {stats.sweep_listed} chunk objects, completing a pass over the store")
    else:
        where = stats.sweep_cursor.hex()[:16] if stats.sweep_cursor else "the start"
        lines.append(f"orphan sweep: listed {stats.sweep_listed} chunk objects (gc_sweep_objects_per_run); the "
                     f"next run goes on after {where}")
    return lines


@admin_app.command("migrate-to")
def migrate_to_cmd(
    to: Annotated[Path, typer.Option("--to", help="TOML file naming the target stores (database_url, "
                                                  "blob_store, s3_*...), in the configuration's format.")],
    deep: Annotated[bool, typer.Option("--deep", help="Verify by re-reading every chunk from the target.")] = False,
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Move this instance to other stores (e.g. SQLite + folder to PostgreSQL + S3) while the server
    is stopped: bytes first, then every row with its ids, then a check of every file. Run it again
    after an interruption: it resumes."""
    from cartable.config import load_settings
    from cartable.core import transfer

    source = _core(config, data)
    try:
        # The target comes from its file alone: the environment describes the source.
        wanted = load_settings(to, environ={})
    except ConfigError as exc:
        typer.echo(f"configuration error in {to}: {exc}", err=True)
        raise typer.Exit(2) from None
    src = settings_from(config, data=data)
    if wanted.db_url == src.db_url or (wanted.blob_store == src.blob_store == "local"
                                       and wanted.chunk_path.resolve() == src.chunk_path.resolve()):
        typer.echo(f"error: {to} names the same stores as the source; give the target's database_url and "
                   "chunk store", err=True)
        raise typer.Exit(2)
    target = _open(wanted)
    last = [0.0]

    def say(line: str) -> None:
        # Progress at most every few seconds: a big instance has millions of rows.
        if line.startswith("progress: "):
            if time.monotonic() - last[0] < 5:
                return
            last[0] = time.monotonic()
        typer.echo(line)

    with _reported(), source.db.frozen():
        report = transfer.transfer(source, target, deep=deep, say=say)
    rows = sum(report.rows_copied.values())
    typer.echo(f"copied {report.chunks_copied} chunks and {rows} rows; checked {report.files_checked} file "
               f"versions: {'OK' if report.ok else f'{len(report.problems)} problem(s)'}")
    for problem in report.problems[:100]:
        typer.echo(f"PROBLEM: {problem}")
    if not report.ok:
        raise typer.Exit(1)
    typer.echo("point the servers' configuration at the target stores, then start them")


@admin_app.command("jobs")
def jobs_cmd(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Show the background jobs: which node runs each now, the last run and its outcome, the next."""
    from cartable.core import jobs

    core = _core(config, data)
    now = jobs.now(core)  # the database's clock, which the leases run on
    rows = {r.name: r for r in jobs.status(core)}
    names = sorted(set(rows) | {j.name for j in jobs.fleet_jobs(jobs.JobPolicy())})
    for name in names:
        rec = rows.get(name)
        if rec is None:
            typer.echo(f"{name}: never ran")
            continue
        state = (f"running on {rec.holder} (lease until {_utc(rec.expires_at)} UTC)" if rec.held_at(now)
                 else "idle")
        typer.echo(f"{name}: {state}")
        if rec.finished_at is not None:
            by = "" if rec.held_at(now) else f" on {rec.holder}"  # the holder of the lease ran it last
            typer.echo(f"  last run: finished {_utc(rec.finished_at)} UTC{by}: {rec.outcome}")
        if not rec.held_at(now):
            due = "now" if rec.next_run_at <= now else f"at {_utc(rec.next_run_at)} UTC"
            typer.echo(f"  next run: {due}")
        if rec.cursor:
            typer.echo(f"  resumes after: {rec.cursor[:16]}")


@admin_app.command("migrate")
def migrate_cmd(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Bring the database schema up to date (serve does it too)."""
    _core(config, data)
    typer.echo("schema is up to date")
