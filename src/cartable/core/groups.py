# SPDX-License-Identifier: EUPL-1.2
"""Groups of users and who is in them: the recipients of group shares, and what the sharee
search offers.

Names. A group's name is its id everywhere (the OCS ``shareWith``, ``cloud/groups``, the admin
command): 1 to 64 characters among ASCII letters, digits and ``. _ @ + -``, starting with a
letter or a digit (the rule of login names). Names are unique without regard to case: ``profs``
and ``Profs`` cannot both exist, and every function finds ``PROFS`` as ``profs``. The display
name is free text (any script, NFC, no control characters, at most 255), the name by default.
Groups and users are separate namespaces (a group may be called like a user).

Contracts (``core`` is the Core; ``actor`` the audit.Actor recorded with each change):

- ``create_group(core, name, display_name="", actor=)`` → GroupInfo; InvalidInput for a bad name
  or display name, AlreadyExists if the name is taken (whatever its case).
- ``delete_group(core, name, actor=)``: the group and its memberships; NotFound if unknown.
- ``set_display_name(core, name, display_name, actor=)``.
- ``add_member(core, group, user, actor=)`` → True if added, False if the user already was a
  member (nothing changes: provisioning scripts may run it again). NotFound for an unknown group
  or user. Concurrent adds of the same member make one row (INSERT ... ON CONFLICT DO NOTHING).
- ``remove_member(core, group, user, actor=)`` → True if removed, False if not a member.
- ``get_group``, ``list_groups`` (name order, paged), ``search_groups`` (name or display name
  contains the text, without regard to case), ``groups_of(core, user)``, ``members(core, group)``.
- Inside another transaction (shares will need them; they take no lock): ``group_ids_of_user(tx,
  user_id)`` and ``member_ids(tx, group_id)``, ``group_named(tx, name)``.

Every change is recorded in the audit log in the transaction that makes it (core/audit.py). Deleting a
user removes their memberships (ON DELETE CASCADE and store.meta.accounts.delete_user).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from cartable.core import audit, usershares
from cartable.core.accounts import check_display_name, name_key
from cartable.core.audit import SYSTEM, Actor
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, InvalidInput, NotFound
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import groups as repo
from cartable.store.meta import shares as shares_repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import GroupRecord, UserRecord

__all__ = ["GroupInfo", "Member", "NAME_RULE", "SYSTEM", "create_group", "delete_group", "set_display_name",
           "add_member", "remove_member", "get_group", "list_groups", "search_groups", "groups_of", "members",
           "group_ids_of_user", "member_ids", "group_named", "check_group_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
NAME_RULE = "1-64 letters, digits or . _ @ + - and start with a letter or digit"
MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    display_name: str

    @classmethod
    def of(cls, rec: GroupRecord) -> GroupInfo:
        return cls(rec.id, rec.name, rec.display_name)


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str
    display_name: str
    email: str
    disabled: bool

    @classmethod
    def of(cls, rec: UserRecord) -> Member:
        return cls(rec.id, rec.name, rec.display_name, rec.email, rec.disabled)


def check_group_name(name: str) -> None:
    """InvalidInput unless ``name`` follows NAME_RULE (the message shows it safely quoted)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"group name {name[:80]!r} must be {NAME_RULE}")


def group_named(tx: Tx, name: str) -> GroupRecord | None:
    """The group called ``name`` (without regard to ASCII case), or None."""
    if not _NAME.fullmatch(name):
        return None
    return repo.group_by_key(tx, name_key(name))


def _group(tx: Tx, name: str) -> GroupRecord:
    rec = group_named(tx, name)
    if rec is None:
        raise NotFound(f"no group named {name[:80]!r}")
    return rec


def _user(tx: Tx, name: str) -> UserRecord:
    rec = accounts_repo.user_by_name(tx, name_key(name))
    if rec is None:
        raise NotFound(f"no user named {name[:80]!r}")
    return rec


def create_group(core: Core, name: str, display_name: str = "", *, actor: Actor = SYSTEM) -> GroupInfo:
    check_group_name(name)
    shown = check_display_name(display_name) or name
    with core.db.write() as tx:
        try:
            gid = repo.insert_group(tx, name=name, name_key=name_key(name), display_name=shown,
                                    created_at=core.clock())
        except RowConflict:
            existing = repo.group_by_key(tx, name_key(name))
            if existing is not None and existing.name != name:
                raise AlreadyExists(f"a group named {existing.name!r} already exists (group names are unique "
                                    "without regard to case)") from None
            raise AlreadyExists(f"a group named {name!r} already exists") from None
        audit.record_in(tx, core, "group.created", actor, object=f"group:{name}", detail=shown)
    return GroupInfo(gid, name, shown)


def delete_group(core: Core, name: str, *, actor: Actor = SYSTEM) -> None:
    with core.db.write() as tx:
        rec = _group(tx, name)
        former = repo.member_ids(tx, rec.id)
        repo.delete_group(tx, rec.id)
        for uid in former:  # the group's shares reach them no more: their mount points go
            usershares.refresh_user(core, tx, uid, core.clock())
        shares_repo.delete_group_shares(tx, rec.name)  # a new group of that name inherits nothing
        audit.record_in(tx, core, "group.deleted", actor, object=f"group:{rec.name}")


def set_display_name(core: Core, name: str, display_name: str, *, actor: Actor = SYSTEM) -> GroupInfo:
    with core.db.write() as tx:
        rec = _group(tx, name)
        shown = check_display_name(display_name) or rec.name
        repo.update_group(tx, rec.id, display_name=shown)
        audit.record_in(tx, core, "group.updated", actor, object=f"group:{rec.name}", detail=f"display name: {shown}")
    return GroupInfo(rec.id, rec.name, shown)


def add_member(core: Core, group: str, user: str, *, actor: Actor = SYSTEM) -> bool:
    with core.db.write() as tx:
        g, u = _group(tx, group), _user(tx, user)
        added = repo.add_member(tx, g.id, u.id, core.clock())
        if added:
            usershares.refresh_user(core, tx, u.id, core.clock())  # the group's shares reach them now
            audit.record_in(tx, core, "group.member_added", actor, object=f"group:{g.name}", detail=f"user:{u.name}")
    return added


def remove_member(core: Core, group: str, user: str, *, actor: Actor = SYSTEM) -> bool:
    with core.db.write() as tx:
        g, u = _group(tx, group), _user(tx, user)
        removed = repo.remove_member(tx, g.id, u.id)
        if removed:
            usershares.refresh_user(core, tx, u.id, core.clock())  # its shares' mounts disappear
            audit.record_in(tx, core, "group.member_removed", actor, object=f"group:{g.name}",
                            detail=f"user:{u.name}")
    return removed


def get_group(core: Core, name: str) -> GroupInfo:
    with core.db.read() as tx:
        return GroupInfo.of(_group(tx, name))


def _page(limit: int | None, offset: int) -> None:
    if limit is not None and not 0 <= limit <= MAX_PAGE:
        raise InvalidInput(f"the limit must be between 0 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidInput("the offset must be zero or more")


def list_groups(core: Core, *, limit: int | None = None, offset: int = 0) -> list[GroupInfo]:
    """Every group in name order (without regard to case), paged."""
    _page(limit, offset)
    with core.db.read() as tx:
        return [GroupInfo.of(r) for r in repo.list_groups(tx, limit=limit, offset=offset)]


def search_groups(core: Core, text: str, *, limit: int | None = None, offset: int = 0) -> list[GroupInfo]:
    """Groups whose name or display name contains ``text`` (case and Unicode case ignored, spaces
    around it trimmed), in name order; every group for an empty text."""
    _page(limit, offset)
    folded = text.strip().lower()
    if not folded:
        return list_groups(core, limit=limit, offset=offset)
    if len(folded) > 255 or any(unicodedata.category(c) == "Cc" for c in folded):
        return []  # no name or display name holds a control character (a NUL would end LIKE's pattern)
    with core.db.read() as tx:
        return [GroupInfo.of(r) for r in repo.search_groups(tx, folded, limit=limit, offset=offset)]


def groups_of(core: Core, user: str) -> list[GroupInfo]:
    """The user's groups in name order; NotFound for an unknown user."""
    with core.db.read() as tx:
        return [GroupInfo.of(r) for r in repo.groups_of(tx, _user(tx, user).id)]


def members(core: Core, group: str) -> list[Member]:
    """The group's members in name order; NotFound for an unknown group."""
    with core.db.read() as tx:
        return [Member.of(r) for r in repo.members_of(tx, _group(tx, group).id)]


def group_ids_of_user(tx: Tx, user_id: int) -> list[int]:
    """Ids of the user's groups, read in the caller's transaction."""
    return repo.group_ids_of(tx, user_id)


def member_ids(tx: Tx, group_id: int) -> list[int]:
    """User ids of the group's members, read in the caller's transaction."""
    return repo.member_ids(tx, group_id)
