# SPDX-License-Identifier: EUPL-1.2
from cartable.cli.main import app

app()
