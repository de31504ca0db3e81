# SPDX-License-Identifier: EUPL-1.2
"""A pytest plugin (loaded from pyproject's addopts) that ends every run with the time each test
group took: the power-loss group, the crash tests, the interop tests with real clients, and the
rest. CI's log then says what each group costs, as the power-loss issue asks."""

from __future__ import annotations

from collections import defaultdict

import pytest

GROUPS = ("powerloss", "crash", "interop")
_seconds: defaultdict[str, float] = defaultdict(float)
_counts: defaultdict[str, int] = defaultdict(int)
_group_of: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _group_of[item.nodeid] = next((g for g in GROUPS if item.get_closest_marker(g)), "other")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    group = _group_of.get(report.nodeid, "other")
    _seconds[group] += report.duration  # setup, call and teardown each report their share
    if report.when == "call":
        _counts[group] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _counts:
        return
    terminalreporter.section("time per test group")
    for group in (*GROUPS, "other"):
        if _counts[group]:
            terminalreporter.write_line(f"{group:<10} {_counts[group]:>5} tests  {_seconds[group]:>8.1f} s")
