# SPDX-License-Identifier: EUPL-1.2
"""What a principal may do, checked once, in core, for every protocol.

An account's own principal holds every permission on its whole space. A principal that reaches
files through a public link (core/shares.py) is scoped: its ``root_id`` is the shared node (paths
resolve from there, so nothing above it can be named), and ``permissions`` is the link's mask,
numbered as Nextcloud numbers them:

| bit | value | allows |
| --- | --- | --- |
| READ | 1 | stat, list, download, PROPFIND, zip, COPY's source, LOCK |
| UPDATE | 2 | overwrite a file, PROPPATCH, LOCK an existing file |
| CREATE | 4 | a new file or folder (PUT, MKCOL, COPY or MOVE destination) |
| DELETE | 8 | DELETE, MOVE's source |
| SHARE | 16 | reshare (not for links) |

A principal with CREATE but neither READ nor UPDATE (an upload-only "file drop") never learns
whether a name exists: a PUT onto a taken name is stored under a free one ("name (2).ext"), as
Nextcloud does. Features that belong to an account (search, favorites, trash, versions, chunked
and bulk uploads, shares) refuse link principals (``require_account``).
"""

from __future__ import annotations

from cartable.core.errors import Forbidden
from cartable.core.model import Principal

__all__ = ["READ", "UPDATE", "CREATE", "DELETE", "SHARE", "ALL", "can", "require", "require_account",
           "is_drop", "NAMES"]

READ, UPDATE, CREATE, DELETE, SHARE = 1, 2, 4, 8, 16
ALL = READ | UPDATE | CREATE | DELETE | SHARE
NAMES = {READ: "read", UPDATE: "update", CREATE: "create", DELETE: "delete", SHARE: "share"}


def can(principal: Principal, perm: int) -> bool:
    return principal.permissions & perm == perm


def require(principal: Principal, perm: int, what: str) -> None:
    """Forbidden, naming what is refused and the missing permission, unless the principal has
    every bit of ``perm``."""
    if not can(principal, perm):
        missing = ", ".join(name for bit, name in NAMES.items() if perm & bit and not principal.permissions & bit)
        through = "share" if principal.share_id is not None else "link"
        raise Forbidden(f"{what} is not allowed: this {through} does not give the {missing} permission")


def require_account(principal: Principal, what: str) -> None:
    """Forbidden for a principal that came through a public link: ``what`` belongs to accounts."""
    if principal.link_id is not None:
        raise Forbidden(f"{what} is not available through a public link")
    if principal.share_id is not None:
        raise Forbidden(f"{what} is not available inside a folder shared with you: use your own files")


def is_drop(principal: Principal) -> bool:
    """An upload-only principal: may create, may neither read nor overwrite."""
    return can(principal, CREATE) and not principal.permissions & (READ | UPDATE)
