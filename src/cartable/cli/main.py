# SPDX-License-Identifier: EUPL-1.2
"""The `cartable` command: serve, and admin commands on the same data folder."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from cartable.cli import workers
from cartable.cli.admin import admin_app
from cartable.cli.common import ConfigOpt, DataOpt, settings_from

app = typer.Typer(help="cartable: sovereign file storage, sync and share.", no_args_is_help=True,
                  add_completion=False)
app.add_typer(admin_app, name="admin")


@app.command()
def serve(
    data: DataOpt = None,
    config: ConfigOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on (default 8080).")] = None,
    workers_: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes (default: one per core; the workers setting).")] = None,
) -> None:
    """Run the server (WebDAV at /remote.php/dav/files/USER/)."""
    import logging

    import uvicorn

    from cartable.core import accounts, jobs
    from cartable.core.errors import CartableError
    from cartable.server import BackgroundJobs, build_app, job_policy, open_blobs, open_core
    from cartable.startup import StartupError, listen

    settings = settings_from(config, data=data, host=host, port=port, workers=workers_)
    _keep_freed_memory()
    configure_logging(settings.log_level, settings.log_format)
    count = settings.workers or workers.default_count()
    try:
        # The port first: a server that cannot listen creates nothing and prints no password.
        sock = listen(settings.host, settings.port)
        os.umask(0o077)  # everything created from now on is private to this user
        # With workers, the S3 store's check runs in a child of its own: the request starts
        # obstore's runtime, which must never run in the process the workers are forked from.
        core = open_core(settings, check_store=count == 1)
        if count > 1 and settings.blob_store == "s3" and (
                problem := workers.check_apart(lambda: open_blobs(settings))):
            core.db.dispose()
            raise StartupError(f"cannot start: {problem}")
        generated = accounts.bootstrap_admin(core, settings.admin_user, settings.admin_password or None)
        app_ = build_app(settings, core) if count == 1 else None
    except StartupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except CartableError as exc:  # the admin account of the settings cannot be made
        typer.echo(f"cannot start: cannot create the admin account {settings.admin_user!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a bug: still one line, the traceback in the debug log
        logging.getLogger("cartable").debug("startup failed", exc_info=True)
        typer.echo(f"cannot start: unexpected error: {exc!r}; run with CARTABLE_LOG_LEVEL=debug for details",
                   err=True)
        raise typer.Exit(2) from None
    if generated:
        print(f"Created admin account {settings.admin_user!r} with password: {generated}", flush=True)
        print("Store it now: it is not shown again (change it with `cartable admin user passwd`).", flush=True)
    print(f"cartable serving {settings.data.resolve()} on http://{settings.host}:{settings.port}/ "
          f"(WebDAV: /remote.php/dav/files/USER/) with {count} worker{'s' if count > 1 else ''}", flush=True)

    # The fleet knows this server by the pid an operator sees (the parent's): a restarted worker 0
    # takes its jobs' leases back at once instead of waiting for them to expire.
    node = jobs.new_node_id()

    def serve_one(index: int) -> None:
        """One worker: its own core and event loop; the background jobs run in worker 0 (the
        leases in the database would keep them to one at a time anyway)."""
        mine = core if count == 1 else open_core(settings)
        if index == 0:
            BackgroundJobs(mine, job_policy(settings), node=node).start()
        server = uvicorn.Server(uvicorn.Config(
            app_ or build_app(settings, mine), host=settings.host, port=settings.port,
            log_level=settings.log_level.lower(), log_config=None, access_log=False, timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 * 1024))
        server.run(sockets=[sock])

    if count == 1:
        serve_one(0)
        return
    # The parent's connections are not shared with the workers: each opens its own database
    # engine and chunk store after the fork (the parent never started obstore's runtime).
    core.db.dispose()
    raise typer.Exit(workers.supervise(count, serve_one))


def configure_logging(level: str, fmt: str) -> None:
    """Every log record (cartable's and uvicorn's) to stderr, as text lines or JSON lines."""
    import logging

    from cartable.http.accesslog import JsonFormatter, TextFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations report through our own line


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed buffers instead of returning them to the system: uploads reuse
    the same few MiB over and over, and on VMs that hand freed pages back to their host every
    re-touch costs kernel time (measured: ~2 s per GiB uploaded)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1024 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
