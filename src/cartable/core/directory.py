# SPDX-License-Identifier: EUPL-1.2
"""Who is who, as users may see it: an account's profile and the search that a share dialog
uses to pick recipients (users and groups). Read-only; the rights are checked here, once.

- ``profile(core, viewer, name)`` → Profile of the account ``name`` (found without regard to
  ASCII case): the viewer's own, or anyone's for an administrator. Anyone else's raises
  errors.NotVisible, whether the account exists or not (an ordinary user cannot probe for names here).
  NotFound when an administrator names an unknown account.
- ``search_sharees(core, viewer, text, limit=, offset=, users=, groups=)`` → Sharees: enabled
  accounts other than the viewer whose name, display name or e-mail contains ``text``, and
  groups whose name or display name contains it (case ignored; spaces around ``text`` trimmed).
  A match whose name, display name (or, for users, e-mail) equals ``text`` goes in the ``exact``
  lists, the others in the partial ones. A text longer than 255 characters or holding a control
  character matches nothing. On the first page an account or group *named*
  ``text`` is an exact match even when the partial search's page did not reach it. Every user
  may search every user and group, as on a default Nextcloud.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cartable.core import accounts
from cartable.core.accounts import UserInfo, name_key
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, NotFound, NotVisible
from cartable.core.groups import GroupInfo
from cartable.core.model import Principal
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import groups as groups_repo
from cartable.store.meta.records import GroupRecord, UserRecord

__all__ = ["Profile", "Sharee", "Sharees", "profile", "search_sharees", "MAX_SHAREES"]

MAX_SHAREES = 200
MAX_TEXT = 255  # longer than any name, display name or e-mail address: matches nothing


def printable(text: str) -> bool:
    """False if ``text`` holds a control character, which no name, display name or e-mail
    address does (and a NUL would end SQLite's LIKE pattern early, matching everything)."""
    return not any(unicodedata.category(c) == "Cc" for c in text)


@dataclass(frozen=True, slots=True)
class Profile:
    user: UserInfo
    groups: list[GroupInfo]
    own: bool  # the viewer's own account
    full: bool  # seen by an administrator (administrative fields such as "enabled")


@dataclass(frozen=True, slots=True)
class Sharee:
    name: str
    display_name: str
    email: str = ""  # users only


@dataclass(frozen=True, slots=True)
class Sharees:
    exact_users: list[Sharee]
    users: list[Sharee]
    exact_groups: list[Sharee]
    groups: list[Sharee]
    more: bool  # a list filled its page: the next page may hold more


def profile(core: Core, viewer: Principal, name: str) -> Profile:
    with core.db.read() as tx:
        rec = accounts_repo.user_by_name(tx, name_key(name))
        own = rec is not None and rec.id == viewer.user_id
        if not (own or viewer.is_admin):
            raise NotVisible("you may only read your own account")
        if rec is None:
            raise NotFound(f"no user named {name[:80]!r}")
        groups = [GroupInfo.of(g) for g in groups_repo.groups_of(tx, rec.id)]
    return Profile(accounts.get_user(core, rec.name), groups, own, viewer.is_admin)


def _user_sharee(rec: UserRecord) -> Sharee:
    return Sharee(rec.name, rec.display_name, rec.email)


def _group_sharee(rec: GroupRecord) -> Sharee:
    return Sharee(rec.name, rec.display_name)


def search_sharees(core: Core, viewer: Principal, text: str, *, limit: int = 25, offset: int = 0,
                   users: bool = True, groups: bool = True) -> Sharees:
    if not 1 <= limit <= MAX_SHAREES:
        raise InvalidInput(f"the page size must be between 1 and {MAX_SHAREES}")
    if offset < 0:
        raise InvalidInput("the page must be 1 or more")
    text = text.strip()
    folded = text.lower()
    exact_u: list[Sharee] = []
    wide_u: list[Sharee] = []
    exact_g: list[Sharee] = []
    wide_g: list[Sharee] = []
    more = False
    if len(text) > MAX_TEXT or not printable(text):
        return Sharees(exact_u, wide_u, exact_g, wide_g, more)  # no name, display name or e-mail holds it
    with core.db.read() as tx:
        if users:
            found = accounts_repo.search_users(tx, folded, limit=limit, offset=offset, exclude_id=viewer.user_id)
            more = more or len(found) == limit
            for rec in found:
                exact = folded != "" and folded in (rec.name.lower(), rec.display_name.lower(), rec.email.lower())
                (exact_u if exact else wide_u).append(_user_sharee(rec))
            if offset == 0 and text and not any(s.name.lower() == folded for s in exact_u):
                named = accounts_repo.user_by_name(tx, name_key(text))
                if named is not None and not named.disabled and named.id != viewer.user_id:
                    exact_u.insert(0, _user_sharee(named))
                    wide_u = [s for s in wide_u if s.name != named.name]
        if groups:
            found_g = (groups_repo.search_groups(tx, folded, limit=limit, offset=offset) if folded
                       else groups_repo.list_groups(tx, limit=limit, offset=offset))
            more = more or len(found_g) == limit
            for g in found_g:
                exact = folded != "" and folded in (g.name.lower(), g.display_name.lower())
                (exact_g if exact else wide_g).append(_group_sharee(g))
            if offset == 0 and text and not exact_g:
                named_g = groups_repo.group_by_key(tx, name_key(text))
                if named_g is not None:
                    exact_g.append(_group_sharee(named_g))
                    wide_g = [s for s in wide_g if s.name != named_g.name]
    return Sharees(exact_u, wide_u, exact_g, wide_g, more)
