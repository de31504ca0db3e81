# SPDX-License-Identifier: EUPL-1.2
"""The fault pause a crash test arms in a server process (setting ``fault_pause``); the pause
itself is exercised end to end by tests/crash/test_kill9_chunked.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.common import faults
from cartable.config import ConfigError, load_settings


@pytest.mark.parametrize(("spec", "parsed"), [
    ("writes.after_put:/tmp/m", ("writes.after_put", 1, Path("/tmp/m"))),
    ("writes.commit.after_commit@3:/tmp/x y/m", ("writes.commit.after_commit", 3, Path("/tmp/x y/m"))),
])
def test_parse_pause(spec: str, parsed: tuple[str, int, Path]) -> None:
    assert faults.parse_pause(spec) == parsed


@pytest.mark.parametrize("spec", ["writes.after_put", "writes.after_put:relative", "no.such.point:/tmp/m",
                                  "writes.after_put@0:/tmp/m", "writes.after_put@x:/tmp/m"])
def test_a_bad_pause_is_refused_at_startup(spec: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        faults.parse_pause(spec)
    with pytest.raises(ConfigError, match="POINT"):
        load_settings(None, {"data": tmp_path}, environ={"CARTABLE_FAULT_PAUSE": spec})


def test_no_pause_by_default(tmp_path: Path) -> None:
    assert load_settings(None, {"data": tmp_path}, environ={}).fault_pause == ""
