# SPDX-License-Identifier: EUPL-1.2
"""Real engines for the tests: PostgreSQL, Ceph RGW and Swift (s3api), started once per test
session by the project's own scripts (scripts/engines/*.sh) on loopback, stopped by PID at the end.

An engine that cannot start fails the tests that need it, loudly, naming the script to run; it is
never skipped. Tests isolate themselves inside one engine: a fresh database per test on PostgreSQL,
a fresh bucket per test on S3. For a quick inner loop, ``CARTABLE_TEST_POSTGRES_DIR`` (or
``_CEPH_DIR``, ``_SWIFT_DIR``) names the folder of an engine started by hand
(``bash scripts/engines/postgres.sh start``): it is used and left running.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "engines"

__all__ = ["Engine", "engine", "new_database", "new_bucket", "S3_ENGINES"]

S3_ENGINES = ("ceph", "swift")
_SCRIPT = {"postgres": "postgres.sh", "ceph": "s3-ceph.sh", "swift": "s3-swift.sh"}
_DIR_KEY = {"postgres": "CARTABLE_PG_DIR", "ceph": "CARTABLE_S3_DIR", "swift": "CARTABLE_S3_DIR"}


@dataclass
class Engine:
    name: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> str:
        return self.env[_DIR_KEY[self.name]]

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPTS / _SCRIPT[self.name]), "stop", self.dir],
                       capture_output=True, timeout=120, check=False)


_started: dict[str, Engine] = {}
_failed: dict[str, str] = {}
_lock = threading.Lock()


def engine(name: str) -> Engine:
    """The running engine `name` (postgres, ceph or swift), started on first use."""
    with _lock:
        if name in _started:
            return _started[name]
        if name in _failed:
            pytest.fail(_failed[name])
        running = os.environ.get(f"CARTABLE_TEST_{name.upper()}_DIR")
        if running:  # an engine the developer started and keeps (its start printed the folder)
            env = dict(line.split("=", 1) for line in Path(running, "env").read_text().splitlines() if "=" in line)
            _started[name] = Engine(name, env)
            return _started[name]
        script = SCRIPTS / _SCRIPT[name]
        try:
            proc = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            proc = None
        if proc is None or proc.returncode != 0:
            detail = "timed out" if proc is None else proc.stderr.strip().splitlines()[-3:]
            _failed[name] = (f"the {name} engine did not start ({detail}); install it with "
                             f"`bash scripts/install-deps.sh` (CI does) or `bash {script.relative_to(ROOT)} install`")
            pytest.fail(_failed[name])
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        eng = Engine(name, env)
        _started[name] = eng
        atexit.register(eng.stop)
        return eng


def new_database(pg: Engine) -> str:
    """A fresh, empty PostgreSQL database; returns its SQLAlchemy URL (psycopg 3 driver)."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    host, port = pg.env["PGHOST"], pg.env["PGPORT"]
    with psycopg.connect(f"host={host} port={port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@{host}:{port}/{name}"


def drop_database(pg: Engine, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[-1]
    host, port = pg.env["PGHOST"], pg.env["PGPORT"]
    with psycopg.connect(f"host={host} port={port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_bucket(s3: Engine) -> str:
    """A fresh bucket on an S3 engine; returns its name."""
    import obstore
    from obstore.store import S3Store

    name = "t-" + uuid.uuid4().hex[:20]
    _create_bucket(s3, name)
    # Fail here, with the engine named, if the bucket cannot be written.
    store = S3Store(name, endpoint=s3.env["S3_ENDPOINT_URL"], access_key_id=s3.env["AWS_ACCESS_KEY_ID"],
                    secret_access_key=s3.env["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
                    client_options={"allow_http": True})
    obstore.put(store, "probe", b"")
    obstore.delete(store, "probe")
    return name


def _create_bucket(s3: Engine, name: str) -> None:
    # obstore cannot create buckets: one signed PUT with botocore's signer would pull in boto; a
    # bare SigV4 request is a few lines with the standard library.
    import datetime
    import hashlib
    import hmac
    import urllib.request
    from urllib.parse import urlsplit

    endpoint = s3.env["S3_ENDPOINT_URL"].rstrip("/")
    host = urlsplit(endpoint).netloc
    key, secret, region = s3.env["AWS_ACCESS_KEY_ID"], s3.env["AWS_SECRET_ACCESS_KEY"], "us-east-1"
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    canonical = (f"PUT\n/{name}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\n"
                 f"host;x-amz-content-sha256;x-amz-date\n{payload}")
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"

    def mac(k: bytes, msg: str) -> bytes:
        return hmac.new(k, msg.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(mac(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{endpoint}/{name}", method="PUT", headers={
        "x-amz-date": amz_date, "x-amz-content-sha256": payload,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                         f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200, resp.status
