# SPDX-License-Identifier: EUPL-1.2
"""Settings that are not about the server process: the naming policy, from a file or the
environment, as an operator writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.common.paths import NamePolicy
from cartable.config import ConfigError, load_settings
from cartable.core import jobs
from cartable.server import job_policy


def test_default_policy_is_nextclouds() -> None:
    policy = load_settings(None, environ={}).name_policy
    assert policy == NamePolicy()
    assert policy.forbidden_names == frozenset({".htaccess"})
    assert policy.forbidden_extensions == (".part", ".filepart")
    assert policy.characters == "\\/"


def test_lists_from_the_environment() -> None:
    policy = load_settings(None, environ={
        "CARTABLE_FORBIDDEN_FILENAMES": ".htaccess, desktop.ini",
        "CARTABLE_FORBIDDEN_FILENAME_BASENAMES": "thumbs",
        "CARTABLE_FORBIDDEN_FILENAME_CHARACTERS": "#%",
        "CARTABLE_FORBIDDEN_FILENAME_EXTENSIONS": ".tmp,.part",
    }).name_policy
    assert policy.forbidden_names == frozenset({".htaccess", "desktop.ini"})
    assert policy.forbidden_basenames == frozenset({"thumbs"})
    assert policy.characters == "\\/#%"
    assert policy.forbidden_extensions == (".tmp", ".part")


def test_lists_from_a_file_and_the_windows_switch(tmp_path: Path) -> None:
    cfg = tmp_path / "cartable.toml"
    cfg.write_text('forbidden_filenames = []\nforbidden_filename_characters = ["#"]\n'
                   "windows_compatible_names = true\n")
    policy = load_settings(cfg, environ={}).name_policy
    assert policy.forbidden_names == frozenset()
    assert "con" in policy.forbidden_basenames and "lpt1" in policy.forbidden_basenames
    assert policy.characters == "\\/#" + '<>:"|?*'
    assert policy.forbidden_extensions[-2:] == (" ", ".")
    env = load_settings(None, environ={"CARTABLE_WINDOWS_COMPATIBLE_NAMES": "yes"}).name_policy
    assert env == NamePolicy().windows_compatible()


@pytest.mark.parametrize(("env", "value"), [("CARTABLE_WINDOWS_COMPATIBLE_NAMES", "maybe")])
def test_malformed_values_are_refused_with_the_setting_named(env: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={env: value})
    assert "windows_compatible_names" in str(info.value)


def test_malformed_lists_in_a_file_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "cartable.toml"
    cfg.write_text("forbidden_filename_characters = [\"ab\"]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert "forbidden_filename_characters" in str(info.value)
    cfg.write_text("forbidden_filenames = [1, 2]\n")
    with pytest.raises(ConfigError):
        load_settings(cfg, environ={})


@pytest.mark.parametrize(("env", "value", "said"), [
    ("CARTABLE_JOB_LEASE_SECONDS", "1", "job_lease_seconds below 2"),
    ("CARTABLE_JOB_LEASE_SECONDS", "soon", "job_lease_seconds"),
    ("CARTABLE_GC_SWEEP_OBJECTS_PER_RUN", "199", "gc_sweep_objects_per_run must be at least 200"),
    ("CARTABLE_GC_SWEEP_OBJECTS_PER_RUN", "1e6", "gc_sweep_objects_per_run"),
    ("CARTABLE_GC_SWEEP_PAUSE_SECONDS", "-0.1", "gc_sweep_pause_seconds must be zero or more"),
    ("CARTABLE_MAINTENANCE_INTERVAL_SECONDS", "-1", "maintenance_interval_seconds must be zero or more"),
    ("CARTABLE_GC_INTERVAL_SECONDS", "-1", "gc_interval_seconds must be zero or more"),
])
def test_background_job_settings_out_of_range_are_refused(env: str, value: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={env: value})
    assert said in str(info.value)


def test_background_job_settings_accept_zero_to_keep_jobs_off_a_node() -> None:
    s = load_settings(None, environ={"CARTABLE_GC_INTERVAL_SECONDS": "0", "CARTABLE_MAINTENANCE_INTERVAL_SECONDS": "0"})
    assert jobs.fleet_jobs(job_policy(s)) == []


def test_audit_retention(tmp_path: Path) -> None:
    from cartable.server import open_core

    assert load_settings(None, environ={}).audit_retention_days == 365.0
    settings = load_settings(None, {"data": tmp_path / "d"}, environ={"CARTABLE_AUDIT_RETENTION_DAYS": "30"})
    core = open_core(settings)
    try:
        assert core.limits.audit_retention_days == 30.0
    finally:
        core.db.dispose()
    for bad in ("-1", "40000", "a year"):
        with pytest.raises(ConfigError, match="audit_retention_days"):
            load_settings(None, environ={"CARTABLE_AUDIT_RETENTION_DAYS": bad})
