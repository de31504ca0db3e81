# SPDX-License-Identifier: EUPL-1.2
"""Composition root: Settings → stores → core → the ASGI app with its adapters mounted."""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from cartable import nextcloud, startup
from cartable.api.app import PREFIX as API_PREFIX
from cartable.api.app import ApiApp
from cartable.common import faults
from cartable.config import Settings
from cartable.core import jobs
from cartable.core.auth import Authenticator, ThrottlePolicy
from cartable.core.context import Core, Limits
from cartable.dav.context import DavConfig
from cartable.dav.routes import FILES_PREFIX, LEGACY_PREFIX, DavApp
from cartable.http.accesslog import AccessLog
from cartable.nextcloud.login_flow import LOGIN_PREFIX
from cartable.nextcloud.public_dav import PUBLIC_FILES_PREFIX
from cartable.nextcloud.public_download import SHARE_PREFIX
from cartable.store.blobs.base import ChunkStore, StoreUnavailable
from cartable.store.blobs.local import LocalChunkStore
from cartable.store.meta import journal
from cartable.web.home import WELL_KNOWN_PREFIX, home_app, well_known_app

__all__ = ["open_core", "open_blobs", "build_app", "CartableApp", "BackgroundJobs", "job_policy"]

log = logging.getLogger("cartable")


def open_core(settings: Settings, *, check_store: bool = True) -> Core:
    """Open (creating and migrating if needed) the stores named by the settings. Folders and the
    database file are made private to this user (startup.prepare_folders). StartupError, with
    one line for the operator, if something is wrong with them. ``check_store=False`` opens the
    chunk store without the request that checks it (see open_blobs)."""
    startup.prepare_folders(settings)
    db = startup.open_database(settings)
    with db.write() as tx:
        # A random id of this journal: a client that sees it change knows the server was
        # restored from a backup and must not apply deletions blindly.
        journal.kv_once(tx, "epoch", secrets.token_hex(16))
        # Part of every oc:id (Nextcloud's shape: "oc" + 10 alphanumerics).
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        journal.kv_once(tx, "instance_id", "oc" + "".join(secrets.choice(alphabet) for _ in range(10)))
    try:
        blobs = open_blobs(settings, check=check_store)
    except StoreUnavailable as exc:
        db.dispose()
        raise startup.StartupError(f"cannot start: {exc}") from None
    limits = Limits(default_quota=settings.default_quota, inline_max=settings.inline_max,
                    gc_grace_seconds=settings.gc_grace_seconds,
                    audit_retention_days=settings.audit_retention_days,
                    trash_retention_days=settings.trash_retention_days,
                    versions_max_age_days=settings.versions_max_age_days,
                    versions_quota_share=settings.versions_quota_share,
                    journal_retention_days=settings.journal_retention_days,
                    share_folder=settings.share_folder)
    return Core(db, blobs, limits, names=settings.name_policy)


def open_blobs(settings: Settings, *, check: bool = True) -> ChunkStore:
    """The chunk store the settings name (a closed list: local, s3). An S3 store is checked with
    one request unless ``check`` is false: that request starts obstore's runtime (Rust threads),
    which a process that forks workers must not have (cli/workers.py)."""
    if settings.blob_store == "s3":
        from cartable.store.blobs.s3 import S3ChunkStore, S3Config

        store = S3ChunkStore(S3Config(settings.s3_endpoint, settings.s3_bucket, settings.s3_access_key,
                                      settings.s3_secret_key, region=settings.s3_region, prefix=settings.s3_prefix))
        if check:
            store.check()
        return store
    return LocalChunkStore(settings.chunk_path)


ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class CartableApp:
    """Dispatches on the path prefix to each adapter (one table, first match wins)."""

    core: Core
    routes: list[tuple[str, ASGIApp]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        # Prefixes match the raw path, the one adapters parse: "/remote.php/dav%2Ffiles/..." must
        # not reach an adapter that then reads a shifted path from it.
        raw = scope.get("raw_path")
        path: str = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
        for prefix, app in self.routes:
            if path == prefix.rstrip("/") or path.startswith(prefix):
                await app(scope, receive, send)
                return
        if path == "/":
            await home_app(scope, receive, send)
            return
        response: Response
        if path == "/_cartable/health":
            response = PlainTextResponse("ok\n")
        else:
            response = PlainTextResponse(
                "Not found. WebDAV lives at /remote.php/dav/files/USER/\n", status_code=404)
        await response(scope, receive, send)


def build_app(settings: Settings, core: Core | None = None) -> AccessLog:
    """The whole ASGI app: the adapters behind the request log (http.accesslog)."""
    core = core or open_core(settings)
    if settings.fault_pause:
        faults.arm_pause(settings.fault_pause)  # crash tests: freeze at that step, to be killed there
    policy = ThrottlePolicy(failure_cost=settings.login_failure_decay_seconds,
                            max_per_user=settings.login_max_failures_per_user,
                            max_per_address=settings.login_max_failures_per_address,
                            max_delay=settings.login_max_delay_seconds,
                            flow_starts_per_address=settings.login_flow_starts_per_address)
    auth = Authenticator(core, ttl=settings.auth_cache_seconds, policy=policy)
    dav = DavApp(core, auth, DavConfig(max_xml_body=settings.max_xml_body))
    nc = nextcloud.build(core, auth, dav, bulk_upload=settings.bulk_upload)
    routes: list[tuple[str, ASGIApp]] = [
        (FILES_PREFIX, dav), (LEGACY_PREFIX + "/", dav), (LEGACY_PREFIX, dav), *nc.routes,
        (API_PREFIX, ApiApp(core, auth)), (WELL_KNOWN_PREFIX, well_known_app)]
    # Login Flow v2 browser URLs carry the flow's login token: it never reaches the log.
    # ... and public links' tokens neither.
    return AccessLog(CartableApp(core, routes),
                     secret_prefixes=(LOGIN_PREFIX + "v2/flow/", PUBLIC_FILES_PREFIX, SHARE_PREFIX))


def job_policy(settings: Settings) -> jobs.JobPolicy:
    """The background jobs' intervals and limits from the settings."""
    return jobs.JobPolicy(lease_seconds=settings.job_lease_seconds, gc_interval=settings.gc_interval_seconds,
                          maintenance_interval=settings.maintenance_interval_seconds,
                          sweep_objects_per_run=settings.gc_sweep_objects_per_run,
                          sweep_pause=settings.gc_sweep_pause_seconds)


class BackgroundJobs:
    """One thread per background job (core/jobs.py) in this serving process. Every node of a
    fleet runs them all; the leases in the database make each job run on one node at a time,
    and another node takes a job over when its holder dies. A thread sleeps until its job is
    due or the holder's lease runs out (``jobs.wake_in``), then tries to take it."""

    MIN_WAIT = 0.5  # never poll the lease row faster than this

    def __init__(self, core: Core, policy: jobs.JobPolicy, node: str | None = None) -> None:
        self.core, self.policy = core, policy
        self.node = node or jobs.new_node_id()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(job,), name=f"cartable-job-{job.name}",
                                         daemon=True) for job in jobs.fleet_jobs(policy)]

    def start(self) -> None:
        log.info("background jobs on node %s: %s", self.node, ", ".join(t.name[13:] for t in self.threads))
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopped.set()
        for t in self.threads:
            t.join()

    def _loop(self, job: jobs.Job) -> None:
        ttl = self.policy.lease_seconds
        while not self.stopped.is_set():
            try:
                stats = jobs.run(self.core, job, self.node, ttl)
                if stats is not None:
                    log.info("job %s done on node %s: %s", job.name, self.node, stats.summary())
            except jobs.LeaseLost as exc:
                log.warning("%s; another node goes on with it", exc)
            except Exception:
                log.exception("job %s failed on node %s; it runs again in %.0f s", job.name, self.node,
                              job.interval)
            try:
                wait = jobs.wake_in(self.core, job)
            except Exception:
                log.warning("job %s: cannot read its lease; will retry", job.name, exc_info=True)
                wait = ttl
            # A little jitter so that nodes woken by the same expiry do not all ask at once.
            wait = min(max(wait, self.MIN_WAIT), job.interval) + random.uniform(0, min(1.0, ttl / 10))
            if self.stopped.wait(wait):
                return
