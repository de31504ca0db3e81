# SPDX-License-Identifier: EUPL-1.2
"""cartable's ASGI app for another ASGI server (bench/servers_bench.py runs it under granian):
the settings from CARTABLE_* variables, the admin account created, no background jobs."""

from __future__ import annotations

from cartable.config import load_settings
from cartable.core import accounts
from cartable.server import build_app, open_core


def app():  # type: ignore[no-untyped-def]
    settings = load_settings(None, {})
    core = open_core(settings)
    accounts.bootstrap_admin(core, settings.admin_user, settings.admin_password or None)
    return build_app(settings, core)
