# SPDX-License-Identifier: EUPL-1.2
"""The `cartable` command: serve, and admin commands on the same data folder."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

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
) -> None:
    """Run the server (WebDAV at /remote.php/dav/files/USER/)."""
    import logging

    import uvicorn

    from cartable.core import accounts
    from cartable.server import GcThread, build_app, open_core

    settings = settings_from(config, data=data, host=host, port=port)
    _keep_freed_memory()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations report through our own line
    core = open_core(settings)
    generated = accounts.bootstrap_admin(core, settings.admin_user, settings.admin_password or None)
    if generated:
        print(f"Created admin account {settings.admin_user!r} with password: {generated}", flush=True)
        print("Store it now: it is not shown again (change it with `cartable admin user passwd`).", flush=True)
    app_ = build_app(settings, core)
    if settings.gc_interval_seconds > 0:
        GcThread(core, settings.gc_interval_seconds).start()
    print(f"cartable serving {settings.data.resolve()} on http://{settings.host}:{settings.port}/ "
          f"(WebDAV: /remote.php/dav/files/USER/)", flush=True)
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, timeout_keep_alive=30, h11_max_incomplete_event_size=64 * 1024)


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
