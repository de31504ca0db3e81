# SPDX-License-Identifier: EUPL-1.2
"""Options shared by every command: the data folder and the configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cartable.config import ConfigError, Settings, load_settings

# readable=False: the commands check these paths themselves and say what is wrong in one line.
DataOpt = Annotated[Optional[Path], typer.Option("--data", readable=False, help="Data folder (default "
                                                  "./cartable-data, or CARTABLE_DATA).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", readable=False, help="TOML configuration file "
                                                    "(or CARTABLE_CONFIG).")]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
