# SPDX-License-Identifier: EUPL-1.2
"""Settings: one declared schema, read once (TOML file, then CARTABLE_* environment, then the
command line), then frozen. The only module that reads os.environ."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cartable.common import faults
from cartable.common.paths import InvalidPath, NamePolicy, split_path

__all__ = ["Settings", "SETTINGS", "load_settings", "parse_size", "parse_bool", "parse_list", "ConfigError"]


class ConfigError(ValueError):
    """A setting is missing, malformed or would weaken a guarantee."""


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: str | int) -> int:
    """'100GB' → 100_000_000_000; '2GiB', '512k' and plain byte counts accepted."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{value!r} is not a size (examples: 5000000, 100GB, 2GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_bool(value: str | bool) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{value!r} is not true or false")


def parse_tristate(value: str | bool) -> str:
    """'auto', or a boolean (true/false, yes/no, on/off, 1/0) given back as 'true' or 'false'."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return "true" if parse_bool(value) else "false"
    except ConfigError:
        raise ConfigError(f"{value!r} is not auto, true or false") from None


def parse_list(value: str | list[str]) -> tuple[str, ...]:
    """A TOML list of strings, or a comma-separated string (the environment's form)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{value!r} is not a list of strings")
        return tuple(value)
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def parse_chars(value: str | list[str]) -> str:
    """Characters refused in names: a string of them, or a TOML list of one-character strings."""
    if isinstance(value, list):
        if not all(isinstance(v, str) and len(v) == 1 for v in value):
            raise ConfigError(f"{value!r} is not a list of single characters")
        return "".join(value)
    return str(value)


def parse_fault_pause(value: str) -> str:
    """'' or a fault pause as common/faults.py parse_pause reads it (checked now)."""
    value = str(value).strip()
    if value:
        try:
            faults.parse_pause(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    convert: Callable[[Any], Any]
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "CARTABLE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data", Path, Path("cartable-data"), "Data folder: the SQLite database and the chunk store."),
    Setting("host", str, "127.0.0.1", "Address to listen on."),
    Setting("port", int, 8080, "TCP port to listen on."),
    Setting("workers", int, 0, "Worker processes serving requests; 0 means one per core."),
    Setting("database_url", str, "",
            "Metadata database URL: empty means SQLite in the data folder; postgresql://user@host/dbname "
            "(or postgres://) means PostgreSQL."),
    Setting("database_pool_size", int, 10,
            "PostgreSQL: connections each cartable process keeps open, and the most it opens."),
    Setting("blob_store", str, "local", "Chunk store backend: local (a folder) or s3 (an S3-compatible object store)."),
    Setting("blob_path", str, "", "Folder of the local chunk store; empty means DATA/chunks."),
    Setting("s3_endpoint", str, "", "S3 endpoint URL (https://s3.example.org), for blob_store = s3."),
    Setting("s3_bucket", str, "", "S3 bucket holding the chunks (it must exist)."),
    Setting("s3_region", str, "us-east-1", "S3 region (Ceph RGW and Swift accept any)."),
    Setting("s3_access_key", str, "", "S3 access key id."),
    Setting("s3_secret_key", str, "", "S3 secret access key."),
    Setting("s3_prefix", str, "chunks/", "Key prefix of the chunk objects inside the bucket."),
    Setting("admin_user", str, "admin", "Name of the admin account created on first start."),
    Setting("admin_password", str, "", "Its password; empty means generate one and print it once."),
    Setting("default_quota", parse_size, 100 * 10**9, "Quota of accounts without their own (bytes, or 100GB)."),
    Setting("inline_max", parse_size, 8192, "Files up to this size are stored in the database itself."),
    Setting("gc_grace_seconds", float, 86400.0, "Unreferenced chunks are deleted only after this long."),
    Setting("gc_interval_seconds", float, 3600.0,
            "How often the fleet collects garbage and sweeps a slice of the chunk store (0: never on this node)."),
    Setting("gc_sweep_objects_per_run", int, 1_000_000,
            "Chunk objects one orphan-sweep run lists at most; the next run resumes where it stopped."),
    Setting("gc_sweep_pause_seconds", float, 0.05,
            "Pause of the orphan sweep after each batch of 200 objects it lists (eases the load on the store)."),
    Setting("maintenance_interval_seconds", float, 600.0,
            "How often the fleet expires abandoned uploads and purges expired locks, login counters and "
            "login flows (0: never on this node)."),
    Setting("job_lease_seconds", float, 60.0,
            "Time to live of a background job's lease; its holder renews it every third of that, and "
            "another node takes the job over this long after its holder died."),
    Setting("max_xml_body", parse_size, 1024 * 1024, "Largest XML request body accepted (PROPFIND, LOCK...)."),
    Setting("auth_cache_seconds", float, 60.0, "How long a verified credential is trusted without argon2."),
    Setting("login_failure_decay_seconds", float, 60.0,
            "Each failed-login counter forgets one failure per this many seconds."),
    Setting("login_max_failures_per_user", int, 200,
            "Failures counted for one account from one address before its logins from there get 429."),
    Setting("login_max_failures_per_address", int, 2000,
            "Failures counted from one address (all accounts) before its logins get 429."),
    Setting("login_max_delay_seconds", float, 25.0,
            "Longest wait before a password is checked after failures (0.1 s doubled per failure)."),
    Setting("login_flow_starts_per_address", int, 100,
            "Login Flow v2 starts one address may make at once (one more per decay period)."),
    Setting("audit_retention_days", float, 365.0,
            "Audit events older than this many days are purged (0: keep them forever)."),
    Setting("log_level", str, "info", "Log level: debug, info, warning, error."),
    Setting("log_format", str, "text", "Log format: text (one line per record) or json (JSON lines)."),
    Setting("forbidden_filenames", parse_list, (".htaccess",),
            "Names refused for new files and folders, whatever their case."),
    Setting("forbidden_filename_basenames", parse_list, (),
            "Refused as the part of a new name before its first dot (e.g. con refuses con.txt)."),
    Setting("forbidden_filename_characters", parse_chars, "",
            "More characters refused in new names (\\, / and control characters always are)."),
    Setting("forbidden_filename_extensions", parse_list, (".part", ".filepart"),
            "Endings refused for new names, whatever their case."),
    Setting("windows_compatible_names", parse_bool, False,
            "Also refuse what Windows cannot store: CON, PRN, AUX, NUL, COM0-9, LPT0-9, <>:\"|?* "
            "and trailing spaces or dots."),
    Setting("trash_retention_days", float, 30.0,
            "Deleted files stay in their owner's trash this many days, then are purged for good."),
    Setting("versions_max_age_days", float, 365.0,
            "Old versions of a file are thinned with age (Nextcloud's schedule) and none is kept longer than this."),
    Setting("versions_quota_share", float, 0.5,
            "Old versions may hold at most this share of their owner's quota (0 to 1); the oldest go first."),
    Setting("journal_retention_days", float, 90.0,
            "Entries of the change journal older than this are trimmed; a sync client whose cursor is older "
            "is told to start over (list its files again). 0 keeps the whole journal."),
    Setting("share_folder", str, "/Shared",
            "The folder of each user's tree where files and folders shared with them appear (made when "
            "the first share arrives); / puts them at the root."),
    Setting("bulk_upload", parse_tristate, "auto",
            "Nextcloud's bulk upload (many small files per request): auto offers it to every client but "
            "desktop clients older than 3.9, which abort on empty files; true offers it to all; false serves "
            "and offers none."),
    Setting("fault_pause", parse_fault_pause, "",
            "Crash tests only: POINT[@N]:/path: at the N-th hit of that fault point, write /path and stop."),
)


@dataclass(frozen=True)
class Settings:
    data: Path
    host: str
    port: int
    database_url: str
    database_pool_size: int
    workers: int
    blob_store: str
    blob_path: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str
    s3_prefix: str
    admin_user: str
    admin_password: str
    default_quota: int
    inline_max: int
    gc_grace_seconds: float
    gc_interval_seconds: float
    gc_sweep_objects_per_run: int
    gc_sweep_pause_seconds: float
    maintenance_interval_seconds: float
    job_lease_seconds: float
    max_xml_body: int
    auth_cache_seconds: float
    login_failure_decay_seconds: float
    login_max_failures_per_user: int
    login_max_failures_per_address: int
    login_max_delay_seconds: float
    login_flow_starts_per_address: int
    audit_retention_days: float
    log_level: str
    log_format: str
    forbidden_filenames: tuple[str, ...]
    forbidden_filename_basenames: tuple[str, ...]
    forbidden_filename_characters: str
    forbidden_filename_extensions: tuple[str, ...]
    windows_compatible_names: bool
    trash_retention_days: float
    versions_max_age_days: float
    versions_quota_share: float
    journal_retention_days: float
    share_folder: str
    bulk_upload: str
    fault_pause: str

    @property
    def name_policy(self) -> NamePolicy:
        """Which names new files and folders may take (existing names stay usable)."""
        policy = NamePolicy(frozenset(self.forbidden_filenames), frozenset(self.forbidden_filename_basenames),
                            self.forbidden_filename_characters, self.forbidden_filename_extensions)
        return policy.windows_compatible() if self.windows_compatible_names else policy

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data / 'cartable.db').resolve()}"

    @property
    def chunk_path(self) -> Path:
        return Path(self.blob_path) if self.blob_path else self.data / "chunks"


def load_settings(config_file: Path | None = None, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """File < environment < overrides (command-line values that are not None)."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get("CARTABLE_CONFIG"):
        config_file = Path(environ["CARTABLE_CONFIG"])
    from_file: dict[str, Any] = {}
    if config_file is not None:
        try:
            from_file = tomllib.loads(config_file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file {config_file} ({exc.strerror or exc}); "
                              "check its path and permissions") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the configuration file {config_file} is not valid TOML ({exc})") from None
    known = {s.name for s in SETTINGS}
    unknown = set(from_file) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in {config_file}: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw: Any = s.default
        if s.name in from_file:
            raw = from_file[s.name]
        if s.env in environ:
            raw = environ[s.env]
        if overrides and overrides.get(s.name) is not None:
            raw = overrides[s.name]
        try:
            values[s.name] = s.convert(raw) if raw is not s.default else raw
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"setting {s.name} ({s.env}): {exc}") from None
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.blob_store not in ("local", "s3"):
        raise ConfigError(f"blob_store {s.blob_store!r} is not one of: local, s3")
    if s.blob_store == "s3":
        missing = [n for n in ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key") if not getattr(s, n)]
        if missing:
            raise ConfigError(f"blob_store = s3 needs {', '.join(missing)} "
                              f"({', '.join('CARTABLE_' + n.upper() for n in missing)})")
        if not s.s3_endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"s3_endpoint {s.s3_endpoint!r} is not an http:// or https:// URL")
    if not 0 <= s.workers <= 256:
        raise ConfigError("workers must be between 0 (one per core) and 256")
    if not 1 <= s.database_pool_size <= 1000:
        raise ConfigError("database_pool_size must be between 1 and 1000")
    if not (0 < s.port < 65536):
        raise ConfigError(f"port {s.port} is out of range")
    if s.inline_max > 1024 * 1024:
        raise ConfigError("inline_max above 1 MiB would bloat the database; keep it small")
    if s.gc_grace_seconds < 60:
        raise ConfigError("gc_grace_seconds below 60 would let the GC race uploads; use at least 60")
    for name in ("gc_interval_seconds", "maintenance_interval_seconds", "gc_sweep_pause_seconds"):
        if getattr(s, name) < 0:
            raise ConfigError(f"{name} must be zero or more")
    if s.gc_sweep_objects_per_run < 200:
        raise ConfigError("gc_sweep_objects_per_run must be at least 200 (one batch)")
    if s.job_lease_seconds < 2:
        raise ConfigError("job_lease_seconds below 2 would let a busy node lose its lease between two renewals; "
                          "use at least 2")
    if s.default_quota < 0:
        raise ConfigError("default_quota must be zero or more")
    if s.login_failure_decay_seconds < 1:
        raise ConfigError("login_failure_decay_seconds below 1 would forget failed logins at once; use at least 1")
    for name in ("login_max_failures_per_user", "login_max_failures_per_address", "login_flow_starts_per_address"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if not 0 <= s.login_max_delay_seconds <= 600:
        raise ConfigError("login_max_delay_seconds must be between 0 and 600")
    if not 0 <= s.audit_retention_days <= 36500:
        raise ConfigError("audit_retention_days must be between 0 (keep forever) and 36500")
    if not 0 <= s.journal_retention_days <= 36500:
        raise ConfigError("journal_retention_days must be between 0 (keep the whole journal) and 36500")
    if s.trash_retention_days < 0 or s.versions_max_age_days < 0:
        raise ConfigError("trash_retention_days and versions_max_age_days must be zero or more")
    if not 0 <= s.versions_quota_share <= 1:
        raise ConfigError("versions_quota_share must be between 0 and 1 (a share of the quota)")
    try:
        split_path(s.share_folder)
    except InvalidPath as exc:
        raise ConfigError(f"share_folder {s.share_folder!r} is not a valid folder path: {exc}") from None
    if not s.share_folder.startswith("/"):
        raise ConfigError(f"share_folder {s.share_folder!r} must start with / (it is a path in each user's tree)")
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level {s.log_level!r} is not one of: debug, info, warning, error")
    if s.log_format not in ("text", "json"):
        raise ConfigError(f"log_format {s.log_format!r} is not one of: text, json")
    assert {f.name for f in fields(Settings)} == {x.name for x in SETTINGS}
