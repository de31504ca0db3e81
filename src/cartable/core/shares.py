# SPDX-License-Identifier: EUPL-1.2
"""Public links: their owner makes, lists, changes and removes them; anyone with the token
reaches the shared file or folder through a scoped principal (core/permissions.py).

A link is a row of ``shares`` with share_type 3 (store/meta/shares.py). Rules:

- Only the owner of a node links it, never the root folder of a space, never through a link.
  An item may have several links, each with its own token, permissions, password, expiry and
  download limit. A file link may read, or read and update; never create or delete.
- The token is ``secrets.token_urlsafe(24)``: 192 random bits, 32 URL-safe characters.
- ``enter`` turns a token (and a password, when the link has one) into a Principal whose root
  is the shared node, whose permissions are the link's, and whose writes are charged to the
  owner's space. It reads the row on every request, so a revoked link, a new password or a
  shorter expiry count at once, on every node. An unknown token, a link whose item is gone (in
  the trash or deleted) or whose owner is disabled, is NotFound; an expired link is LinkExpired
  ("this link expired on DATE": 410 in the link adapters); a wrong password is Unauthenticated,
  counted and throttled as failed logins are (core/auth.py).
- ``count_download`` counts one download of a file through a link (a GET of a file, a zip),
  in one SQL statement; once the limit is reached, Forbidden.
- Audit (core/audit.py): ``share.created``, ``share.updated``, ``share.deleted`` in the
  transaction that makes the change; ``link.access`` for a counted download (success) and for
  refused attempts (wrong password: failure; expired or over its limit: denied). A request that
  merely browses a link is not recorded, as a request that merely presents working credentials
  is not.
- Creating or removing a link appends a "props" entry for its node to the change journal (a
  sync client sees the node's sharing state change; its etag does not move).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cartable.core import audit, permissions, tree
from cartable.core.accounts import HASHER
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.errors import Forbidden, InvalidInput, LinkExpired, NotFound, Unauthenticated
from cartable.core.model import Node, Principal
from cartable.core.tree import Op, display
from cartable.core.units import unit_of_work
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import search as search_repo
from cartable.store.meta import shares as repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import ShareRecord, SpaceRecord

__all__ = ["LINK", "USER", "GROUP", "LinkInfo", "create_link", "links", "link", "update_link", "delete_link",
           "enter", "password_delay", "count_download", "new_token", "KEEP", "Keep", "READ_ONLY", "READ_WRITE",
           "UPLOAD_ONLY"]

USER, GROUP, LINK = 0, 1, 3  # share types, as Nextcloud numbers them
READ_ONLY = permissions.READ
READ_WRITE = permissions.READ | permissions.UPDATE | permissions.CREATE | permissions.DELETE
UPLOAD_ONLY = permissions.CREATE
MAX_PASSWORD, MAX_LABEL, MAX_NOTE = 1024, 255, 4096


class Keep:
    """The value of an update argument the caller does not change."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A link as its owner sees it: the row, the node, its path from the owner's root, the owner."""

    share: ShareRecord
    node: Node
    path: tuple[str, ...]
    owner: str
    owner_display: str

    @property
    def has_password(self) -> bool:
        return self.share.password_hash is not None


def new_token() -> str:
    """192 random bits, URL-safe (letters, digits, '-' and '_'), 32 characters."""
    return secrets.token_urlsafe(24)


def _actor(principal: Principal, address: str) -> audit.Actor:
    return audit.Actor(principal.name, address)


def _check_owner(principal: Principal) -> None:
    permissions.require_account(principal, "sharing")


def _check_permissions(mask: int, node: Node) -> int:
    """The mask stored for a link on node: the share bit dropped (links do not reshare);
    InvalidInput for a mask no link kind has."""
    if not 0 < mask <= permissions.ALL:
        raise InvalidInput(f"permissions {mask} are not a combination of read 1, update 2, create 4, "
                           "delete 8 and share 16")
    mask &= ~permissions.SHARE
    if not node.is_dir and mask & (permissions.CREATE | permissions.DELETE):
        raise InvalidInput(f"{node.name!r} is a file: a link to it can read or update it, not create or "
                           "delete (upload links are for folders)")
    if not mask & permissions.READ and mask != permissions.CREATE:
        raise InvalidInput(f"permissions {mask}: a link reads (1, with 2, 4, 8 to write) or only "
                           "receives uploads (4)")
    return mask


def _check_text(label: str, note: str) -> None:
    if len(label) > MAX_LABEL:
        raise InvalidInput(f"the label is longer than {MAX_LABEL} characters")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters")


def _password_hash(password: str | None) -> str | None:
    if not password:
        return None
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is longer than {MAX_PASSWORD} characters")
    return HASHER.hash(password)


def _check_expiry(core: Core, expires_at: float | None) -> None:
    if expires_at is not None and expires_at <= core.clock():
        raise InvalidInput(f"the expiry date {_day(expires_at)} is in the past: choose a later one")


def _check_limit(limit: int | None) -> None:
    if limit is not None and not 0 < limit < 2**31:
        raise InvalidInput(f"the download limit {limit} must be a positive number")


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _live_path(tx: Tx, space_root: int, node: Node) -> tuple[str, ...] | None:
    """The node's path from its space's root, or None if it is not in the tree (in the trash)."""
    if node.id == space_root:
        return ()
    return search_repo.paths_of(tx, [node.id], space_root).get(node.id)


def _info(tx: Tx, rec: ShareRecord) -> LinkInfo | None:
    node = nodes_repo.get(tx, rec.node_id)
    space = accounts_repo.space(tx, rec.space_id)
    owner = accounts_repo.user_by_id(tx, rec.owner_id)
    if node is None or space is None or owner is None:
        return None
    path = _live_path(tx, space.root_id, node)
    if path is None:
        return None
    return LinkInfo(rec, node, path, owner.name, owner.display_name)


def shareable(tx: Tx, principal: Principal, parts: Sequence[str], how: str = "") -> tuple[SpaceRecord, Node]:
    """The principal's space and the item at parts, which may be shared (any item but the
    space's root); ``how`` completes the refusal ("... cannot be shared by link")."""
    space = tree.space_of(tx, principal)
    node = tree.resolve(tx, principal.root_id, parts)
    if node.id == space.root_id:
        raise Forbidden(f"your whole space cannot be shared{how}: share a folder inside it")
    return space, node


@unit_of_work
def create_link(core: Core, op: Op, parts: Sequence[str], *, perms: int = READ_ONLY, password: str | None = None,
                expires_at: float | None = None, label: str = "", note: str = "", hide_download: bool = False,
                download_limit: int | None = None, address: str = "") -> LinkInfo:
    """A new link on the caller's item at parts. Forbidden for the root folder or through a
    link; InvalidInput for bad permissions, a past expiry or over-long text."""
    principal = op.principal
    _check_owner(principal)
    _check_text(label, note)
    _check_expiry(core, expires_at)
    _check_limit(download_limit)
    pw_hash = _password_hash(password)  # argon2 outside the transaction
    now = core.clock()
    with core.db.write() as tx:
        space, node = shareable(tx, principal, parts, " by link")
        mask = _check_permissions(perms, node)
        for _ in range(3):
            try:
                share_id = repo.insert(tx, node_id=node.id, space_id=space.id, owner_id=principal.user_id,
                                       share_type=LINK, share_with=None, token=new_token(), permissions=mask,
                                       password_hash=pw_hash, expires_at=expires_at, download_limit=download_limit,
                                       download_count=0, label=label, note=note, hide_download=hide_download,
                                       created_at=now)
                break
            except RowConflict:  # a token drawn twice: 2^-192, but a retry costs nothing
                continue
        else:
            raise RowConflict("could not draw a unique link token")
        tree.record(tx, op, "props", [node], now)
        audit.record_in(tx, core, "share.created", _actor(principal, address), object=f"share:{share_id}",
                        detail=f"link on {display(parts)}, permissions {mask}"
                               + (", password" if pw_hash else "")
                               + (f", expires {_day(expires_at)}" if expires_at else ""))
        rec = repo.by_id(tx, share_id)
        assert rec is not None
        info = _info(tx, rec)
        assert info is not None
        return info


def links(core: Core, principal: Principal, parts: Sequence[str] | None = None, *,
          subfiles: bool = False) -> list[LinkInfo]:
    """The caller's links, oldest first: all of them, or those on the item at parts, or (with
    subfiles) those on the direct children of the folder at parts. Links whose item is in the
    trash are left out (they work again if it is restored)."""
    _check_owner(principal)
    with core.db.read() as tx:
        node_ids: list[int] | None = None
        if parts is not None:
            node = tree.resolve(tx, principal.root_id, parts)
            node_ids = [c.id for c in nodes_repo.children(tx, node.id)] if subfiles else [node.id]
        found = [_info(tx, rec) for rec in repo.of_owner(tx, principal.user_id, node_ids)]
    return [i for i in found if i is not None and i.share.share_type == LINK]


def _own(tx: Tx, principal: Principal, share_id: int) -> ShareRecord:
    rec = repo.by_id(tx, share_id)
    if rec is None or rec.owner_id != principal.user_id or rec.share_type != LINK:
        raise NotFound(f"you have no share {share_id}")
    return rec


def link(core: Core, principal: Principal, share_id: int) -> LinkInfo:
    _check_owner(principal)
    with core.db.read() as tx:
        info = _info(tx, _own(tx, principal, share_id))
    if info is None:
        raise NotFound(f"the item of share {share_id} is in the trash")
    return info


@unit_of_work
def update_link(core: Core, op: Op, share_id: int, *, perms: int | Keep = KEEP,
                password: str | None | Keep = KEEP, expires_at: float | None | Keep = KEEP,
                label: str | Keep = KEEP, note: str | Keep = KEEP, hide_download: bool | Keep = KEEP,
                download_limit: int | None | Keep = KEEP, address: str = "") -> LinkInfo:
    """Change what is given (password None or "": no password; expires_at None: never;
    download_limit None: no limit, a new limit also starts the count again)."""
    principal = op.principal
    _check_owner(principal)
    _check_text("" if isinstance(label, Keep) else label, "" if isinstance(note, Keep) else note)
    if not isinstance(expires_at, Keep):
        _check_expiry(core, expires_at)
    values: dict[str, object] = {}
    if not isinstance(password, Keep):
        values["password_hash"] = _password_hash(password)
    if not isinstance(download_limit, Keep):
        _check_limit(download_limit)
        values["download_limit"], values["download_count"] = download_limit, 0
    for key, value in (("expires_at", expires_at), ("label", label), ("note", note),
                       ("hide_download", hide_download)):
        if not isinstance(value, Keep):
            values[key] = value
    with core.db.write() as tx:
        rec = _own(tx, principal, share_id)
        before = _info(tx, rec)
        if before is None:
            raise NotFound(f"the item of share {share_id} is in the trash or gone; nothing was changed")
        if not isinstance(perms, Keep):
            values["permissions"] = _check_permissions(perms, before.node)
        if values:
            repo.update(tx, share_id, **values)
            changed = ", ".join(sorted(k.replace("_hash", "") for k in values))
            audit.record_in(tx, core, "share.updated", _actor(principal, address), object=f"share:{share_id}",
                            detail=f"changed: {changed}")
        new = repo.by_id(tx, share_id)
        assert new is not None
        return LinkInfo(new, before.node, before.path, before.owner, before.owner_display)


@unit_of_work
def delete_link(core: Core, op: Op, share_id: int, *, address: str = "") -> None:
    """Remove a link: its token stops working at once."""
    _check_owner(op.principal)
    now = core.clock()
    with core.db.write() as tx:
        rec = _own(tx, op.principal, share_id)
        repo.delete(tx, share_id)
        node = nodes_repo.get(tx, rec.node_id)
        if node is not None:
            tree.record(tx, op, "props", [node], now)
        audit.record_in(tx, core, "share.deleted", _actor(op.principal, address), object=f"share:{share_id}",
                        detail=f"link on node {rec.node_id}")


def _refuse(core: Core, rec: ShareRecord | None, address: str, outcome: str, detail: str) -> None:
    audit.record(core, "link.access", audit.Actor("", address),
                 object=f"share:{rec.id}" if rec is not None else "", outcome=outcome, detail=detail)


def password_delay(core: Core, auth: Authenticator, token: str, address: str = "") -> float:
    """Seconds to wait before ``enter`` checks a password for this link from this address (0
    for an unknown link or one without a password); Throttled at the cap. Lets an adapter wait
    without holding a thread, then call ``enter(..., sleep=False)``."""
    with core.db.read() as tx:
        rec = repo.by_token(tx, token) if 0 < len(token) <= 64 else None
    if rec is None or rec.password_hash is None:
        return 0.0
    return auth.secret_delay(f"link:{rec.id}", address)


def enter(core: Core, auth: Authenticator, token: str, password: str | None, address: str = "", *,
          sleep: bool = True) -> Principal:
    """The scoped principal of a link (see the module docstring). ``password``: what the visitor
    sent (None: nothing). Waits the throttling delay before checking a password (``sleep``), in
    the calling thread: adapters call this in a worker thread."""
    with core.db.read() as tx:
        rec = repo.by_token(tx, token) if 0 < len(token) <= 64 else None
        info = _info(tx, rec) if rec is not None and rec.share_type == LINK else None
        owner = accounts_repo.user_by_id(tx, rec.owner_id) if rec is not None else None
    if rec is None or info is None or owner is None or owner.disabled:
        raise NotFound("this link does not exist, or it was removed")
    if rec.expires_at is not None and rec.expires_at <= core.clock():
        _refuse(core, rec, address, audit.DENIED, "expired")
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(rec.expires_at))
        raise LinkExpired(f"this link expired on {when}; ask its owner for a new one")
    if rec.password_hash is not None:
        subject = f"link:{rec.id}"
        if not password:
            raise Unauthenticated("this link is protected by a password: send it (HTTP Basic, any user name)")
        delay = auth.secret_delay(subject, address)
        if delay and sleep:
            time.sleep(delay)
        if not auth.secret_holds(subject, address, rec.password_hash, password):
            _refuse(core, rec, address, audit.FAILURE, "wrong password")
            raise Unauthenticated("wrong password for this link")
    return Principal(owner.id, owner.name, owner.display_name, False, rec.space_id, rec.node_id,
                     permissions=rec.permissions, link_id=rec.id)


@unit_of_work
def count_download(core: Core, principal: Principal, what: str, address: str = "") -> None:
    """Count one download through the principal's link (nothing for an account's own
    principal); Forbidden once the link's download limit is reached."""
    if principal.link_id is None:
        return
    share_id = principal.link_id
    with core.db.write() as tx:
        if repo.count_download(tx, share_id):
            audit.record_in(tx, core, "link.access", audit.Actor("", address), object=f"share:{share_id}",
                            detail=f"download of {what}")
            return
        rec = repo.by_id(tx, share_id)
    if rec is None:
        raise NotFound("this link was removed")
    _refuse(core, rec, address, audit.DENIED, "download limit reached")
    raise Forbidden(f"this link's download limit ({rec.download_limit}) is reached; ask its owner for a new link")
