# SPDX-License-Identifier: EUPL-1.2
"""Core error → HTTP status for the Nextcloud endpoints (OCS, uploads, login flow)."""

from __future__ import annotations

from cartable.dav.errors import STATUS as DAV_STATUS
from cartable.http.errormap import ErrorMap

__all__ = ["STATUS"]

# The Nextcloud dialect answers like WebDAV does (the desktop client reacts to 412, 423, 507...).
STATUS: ErrorMap = dict(DAV_STATUS)
