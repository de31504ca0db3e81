# SPDX-License-Identifier: EUPL-1.2
"""The Nextcloud/ownCloud dialect: status.php, OCS (with the share API), oc:/nc: properties, chunked
uploads, the login flow, the trashbin and versions collections, public links (/public.php, /s/),
so that unmodified Nextcloud clients work.
May import dav (to extend it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from cartable.core import files
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.dav.routes import DavApp
from cartable.nextcloud import props
from cartable.nextcloud.bulk import BULK_PATH, BulkApp
from cartable.nextcloud.dav_root import DAV_ROOT, DavRootApp
from cartable.nextcloud.login_flow import LOGIN_PREFIX, LoginFlowApp
from cartable.nextcloud.ocs import OcsApp
from cartable.nextcloud.public_dav import PUBLIC_FILES_PREFIX, PUBLIC_LEGACY_PREFIX, PublicDavApp
from cartable.nextcloud.public_download import SHARE_PREFIX, LinkDownloadApp
from cartable.nextcloud.status import status_app
from cartable.nextcloud.trashbin import TRASHBIN_PREFIX, TrashbinApp
from cartable.nextcloud.uploads import UPLOADS_PREFIX, UploadsApp
from cartable.nextcloud.versions_dav import VERSIONS_PREFIX, VersionsApp

__all__ = ["NextcloudAdapter", "build"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class NextcloudAdapter:
    routes: list[tuple[str, ASGIApp]]


def build(core: Core, auth: Authenticator, dav: DavApp, *, bulk_upload: str = "auto") -> NextcloudAdapter:
    """The adapter's routes. bulk_upload ("auto", "true", "false"): serve POST /remote.php/dav/bulk
    unless "false"; which clients it is advertised to is nextcloud/ocs.py offers_bulk."""
    instance = files.instance_id(core)
    props.install(dav.dialect, instance, core)
    ocs = OcsApp(core, auth, bulk_upload=bulk_upload)
    routes: list[tuple[str, ASGIApp]] = [
        ("/status.php", status_app),
        ("/ocs/v1.php/", ocs),
        ("/ocs/v2.php/", ocs),
        (UPLOADS_PREFIX, UploadsApp(core, auth, dav)),
        (LOGIN_PREFIX, LoginFlowApp(core, auth)),
        (TRASHBIN_PREFIX, TrashbinApp(core, auth, instance, dav.config)),
        (VERSIONS_PREFIX, VersionsApp(core, auth, dav.config)),
    ]
    public = PublicDavApp(core, auth, dav)  # after props.install: it speaks the same properties
    routes += [(PUBLIC_FILES_PREFIX, public), (PUBLIC_LEGACY_PREFIX + "/", public), (PUBLIC_LEGACY_PREFIX, public),
               (SHARE_PREFIX, LinkDownloadApp(core, auth))]
    if bulk_upload != "false":
        routes.append((BULK_PATH, BulkApp(core, auth, instance)))
    routes.append((DAV_ROOT, DavRootApp(core, auth, dav)))
    return NextcloudAdapter(routes)
