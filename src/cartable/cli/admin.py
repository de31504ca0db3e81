# SPDX-License-Identifier: EUPL-1.2
"""`cartable admin ...`: accounts, app passwords, fsck, gc, migrate. Safe while the server runs
(SQLite WAL lets both processes work; writers wait for each other)."""

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
from cartable.core import accounts, fsck, gc
from cartable.core.context import Core
from cartable.core.errors import CartableError

admin_app = typer.Typer(help="Administration commands.", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
apppw_app = typer.Typer(help="Manage app passwords (one per device).", no_args_is_help=True)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(apppw_app, name="apppassword")


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
                             email=email)
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
        accounts.set_password(core, name, _read_password(password_stdin))
    typer.echo(f"password of {name!r} changed")


@user_app.command("disable")
def user_disable(name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Disable an account: it can no longer log in; its files are kept."""
    with _reported():
        accounts.set_disabled(_core(config, data), name, True)
    typer.echo(f"user {name!r} disabled")


@user_app.command("enable")
def user_enable(name: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Enable a disabled account."""
    with _reported():
        accounts.set_disabled(_core(config, data), name, False)
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
        accounts.delete_user(_core(config, data), name)
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


@apppw_app.command("add")
def apppw_add(user: str, device: str, data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Create an app password for a device; it is printed once."""
    with _reported():
        token = accounts.create_app_password(_core(config, data), user, device)
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
        accounts.revoke_app_password(_core(config, data), user, app_id)
    typer.echo(f"app password {app_id} of {user!r} revoked")


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
    data: DataOpt = None, config: ConfigOpt = None,
) -> None:
    """Delete chunks that nothing has referenced for the grace period; say what is still waiting."""
    core = _core(config, data)
    if grace is not None and grace < 60:
        raise _fail(ValueError("a grace period under 60 s could delete chunks an upload is about to use"))
    stats = gc.collect(core, grace=grace)
    for line in gc_report(stats):
        typer.echo(line)


def gc_report(stats: gc.GcStats) -> list[str]:
    """What ``cartable admin gc`` prints (docs/operations.md shows it)."""
    lines = [f"deleted {stats.chunks_deleted} chunks, {stats.orphans_deleted} orphan blobs, "
             f"{stats.temps_deleted} temporary files; released {stats.uploads_expired} abandoned uploads "
             f"and {stats.locks_purged} expired locks; purged {stats.trash_expired} trash items and "
             f"{stats.versions_expired} old versions for their age"]
    if stats.chunks_waiting == 0 or stats.next_collectible_at is None:
        lines.append("no chunk is waiting out the grace period")
    else:
        when = datetime.fromtimestamp(stats.next_collectible_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stats.chunks_waiting} chunks ({_human(stats.bytes_waiting)}) are waiting out the "
                     f"grace period; the first can be collected at {when} UTC")
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


@admin_app.command("migrate")
def migrate_cmd(data: DataOpt = None, config: ConfigOpt = None) -> None:
    """Bring the database schema up to date (serve does it too)."""
    _core(config, data)
    typer.echo("schema is up to date")
