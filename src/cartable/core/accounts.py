# SPDX-License-Identifier: EUPL-1.2
"""Accounts: users with argon2id password hashes, their home space, quotas and app passwords.

Login names: 1 to 64 characters among ASCII letters, digits and ``. _ @ + -``, starting with a
letter or a digit. They are unique without regard to case: ``alice`` and ``Alice`` cannot both
exist, and ``ALICE`` logs in as ``alice``; the spelling given at creation is the account's name
everywhere else (URLs, the principal). Display names are free text (accented letters and any
script), NFC-normalised, without control characters, up to 255 characters.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass

from argon2 import PasswordHasher

from cartable.common.hashing import new_etag
from cartable.core import audit, files, trash, uploads
from cartable.core.audit import SYSTEM, Actor
from cartable.core.context import Core
from cartable.core.errors import AlreadyExists, InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.core.quota import quota_of
from cartable.core.units import unit_of_work
from cartable.store.meta import accounts as repo
from cartable.store.meta import content
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta.errors import RowConflict
from cartable.store.meta.records import AppPasswordRecord, UserRecord

__all__ = ["UserInfo", "create_user", "bootstrap_admin", "list_users", "get_user", "set_password",
           "set_disabled", "delete_user", "set_quota", "principal_for", "create_app_password",
           "list_app_passwords", "revoke_app_password", "app_token_hash", "HASHER", "random_password",
           "name_key", "NAME_RULE", "check_display_name", "check_email", "set_profile"]

HASHER = PasswordHasher()  # argon2id, library defaults (RFC 9106 second recommendation)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
NAME_RULE = "1-64 letters, digits or . _ @ + - and start with a letter or digit"
MIN_PASSWORD = 8
DISPLAY_NAME_MAX = 255
EMAIL_MAX = 255
DEVICE_NAME_MAX = 255  # app_passwords.name
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # spoof names
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def name_key(name: str) -> str:
    """What a login name is looked up and kept unique by: ASCII letters lowercased, nothing else
    changed (so a non-ASCII spelling such as the Kelvin sign never folds onto an ASCII name)."""
    return name.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    display_name: str
    email: str
    is_admin: bool
    disabled: bool
    used: int
    quota: int


def random_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def app_token_hash(token: str) -> bytes:
    # App passwords are 72 random characters: a fast hash is enough, and lookups are by hash.
    return hashlib.sha256(token.encode()).digest()


def check_display_name(display_name: str) -> str:
    """The display name as stored (trimmed, NFC); InvalidInput if too long or holding control
    characters, line breaks or direction overrides."""
    value = unicodedata.normalize("NFC", display_name.strip())
    if len(value) > DISPLAY_NAME_MAX:
        raise InvalidInput(f"the display name must have at most {DISPLAY_NAME_MAX} characters")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS for c in value):
        raise InvalidInput("the display name must not contain control characters, line breaks or "
                           "direction overrides")
    return value


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def check_email(email: str) -> str:
    """The e-mail address as stored (trimmed; "" clears it); InvalidInput unless it is one
    ``local@domain`` without spaces or control characters, at most 255 characters."""
    value = email.strip()
    if not value:
        return ""
    if len(value) > EMAIL_MAX:
        raise InvalidInput(f"the e-mail address must have at most {EMAIL_MAX} characters")
    if not _EMAIL.fullmatch(value) or any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInput(f"{value[:80]!r} is not an e-mail address (name@example.org)")
    return value


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters")


@unit_of_work
def create_user(core: Core, name: str, password: str, *, is_admin: bool = False,
                quota: int | None = None, display_name: str = "", email: str = "",
                actor: Actor = SYSTEM) -> UserInfo:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"user name {name[:80]!r} must be {NAME_RULE}")
    display_name = check_display_name(display_name) or name
    email = check_email(email)
    _check_password(password)
    if quota is not None and quota < 0:
        raise InvalidInput("the quota must be zero or more bytes")
    now = core.clock()
    pw_hash = HASHER.hash(password)
    with core.db.write() as tx:
        try:
            uid = repo.insert_user(tx, name=name, name_key=name_key(name), display_name=display_name,
                                   email=email, password_hash=pw_hash, is_admin=is_admin, disabled=False,
                                   auth_version=1, created_at=now)
        except RowConflict:
            existing = repo.user_by_name(tx, name_key(name))
            if existing is not None and existing.name != name:
                raise AlreadyExists(f"a user named {existing.name!r} already exists (user names are unique "
                                    "without regard to case)") from None
            raise AlreadyExists(f"a user named {name!r} already exists") from None
        sid = repo.insert_space(tx, kind="home", owner_id=uid, quota=quota)
        root = nodes_repo.insert(tx, space_id=sid, parent_id=None, name="", kind="d", size=0,
                                 mtime=now, ctime=now, etag=new_etag())
        repo.update_space(tx, sid, root_id=root)
        audit.record_in(tx, core, "user.created", actor, object=f"user:{name}",
                        detail="admin" if is_admin else "")
    return get_user(core, name)


@unit_of_work
def bootstrap_admin(core: Core, name: str, password: str | None) -> str | None:
    """Create the first admin if there is no user yet. Returns the generated password, if any."""
    with core.db.read() as tx:
        if repo.any_user(tx):  # not list_users: 600,000 accounts took 50 s to read at each start
            return None
    generated = None
    if not password:
        password = generated = random_password()
    try:
        create_user(core, name, password, is_admin=True)
    except AlreadyExists:
        return None
    return generated


def _user(tx: object, name: str) -> UserRecord:
    rec = repo.user_by_name(tx, name_key(name))  # type: ignore[arg-type]
    if rec is None:
        raise NotFound(f"no user named {name!r}")
    return rec


def get_user(core: Core, name: str) -> UserInfo:
    with core.db.read() as tx:
        rec = _user(tx, name)
        space = repo.home_space(tx, rec.id)
        used = 0
        quota = core.limits.default_quota
        if space is not None:
            root = nodes_repo.get(tx, space.root_id)
            used = root.size if root is not None else 0
            quota = quota_of(core, space)
    return UserInfo(rec.id, rec.name, rec.display_name, rec.email, rec.is_admin, rec.disabled, used, quota)


def list_users(core: Core) -> list[UserInfo]:
    with core.db.read() as tx:
        names = [u.name for u in repo.list_users(tx)]
    return [get_user(core, n) for n in names]


@unit_of_work
def set_password(core: Core, name: str, password: str, *, actor: Actor = SYSTEM) -> None:
    _check_password(password)
    pw_hash = HASHER.hash(password)
    with core.db.write() as tx:
        rec = _user(tx, name)
        repo.revoke_credentials(tx, rec.id, password_hash=pw_hash)
        audit.record_in(tx, core, "user.updated", actor, object=f"user:{rec.name}", detail="password")


@unit_of_work
def set_disabled(core: Core, name: str, disabled: bool, *, actor: Actor = SYSTEM) -> None:
    with core.db.write() as tx:
        rec = _user(tx, name)
        repo.revoke_credentials(tx, rec.id, disabled=disabled)
        audit.record_in(tx, core, "user.updated", actor, object=f"user:{rec.name}",
                        detail="disabled" if disabled else "enabled")


@unit_of_work
def set_profile(core: Core, name: str, *, display_name: str | None = None, email: str | None = None,
                actor: Actor = SYSTEM) -> UserInfo:
    """Change what others see of the account: its display name ("" gives back the login name)
    and e-mail address ("" clears it); None leaves a field as it is. InvalidInput for a bad
    value (nothing changes), NotFound for an unknown user."""
    values: dict[str, str] = {}
    if display_name is not None:
        values["display_name"] = check_display_name(display_name)
    if email is not None:
        values["email"] = check_email(email)
    with core.db.write() as tx:
        rec = _user(tx, name)
        if values.get("display_name") == "":
            values["display_name"] = rec.name
        if values:
            repo.update_user(tx, rec.id, **values)
            audit.record_in(tx, core, "user.updated", actor, object=f"user:{rec.name}",
                            detail=", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in values.items()))
    return get_user(core, rec.name)


@unit_of_work
def set_quota(core: Core, name: str, quota: int | None) -> None:
    if quota is not None and quota < 0:
        raise InvalidInput("the quota must be zero or more bytes")
    with core.db.write() as tx:
        rec = _user(tx, name)
        space = repo.home_space(tx, rec.id)
        if space is None:
            raise NotFound(f"user {name!r} has no home space")
        repo.update_space(tx, space.id, quota=quota)


@unit_of_work
def delete_user(core: Core, name: str, *, actor: Actor = SYSTEM) -> None:
    """Delete the account, its files, its trash and its versions (their chunks are released to
    the GC)."""
    now = core.clock()
    with core.db.write() as tx:
        rec = _user(tx, name)
        space = repo.home_space(tx, rec.id)
        held: Counter[bytes] = Counter()
        if space is not None:
            trash.purge_space(tx, space.id, now)
            root = nodes_repo.get(tx, space.root_id)
            if root is not None:
                held.update(files.detach_subtree(tx, root)[1])
        held.update(uploads.detach_user(tx, rec.id))
        content.unref_chunks(tx, held, now)  # one sorted pass over the chunk rows
        repo.delete_user(tx, rec.id)
        audit.record_in(tx, core, "user.deleted", actor, object=f"user:{rec.name}")


def principal_for(core: Core, rec: UserRecord, app_password_id: int | None = None) -> Principal:
    with core.db.read() as tx:
        space = repo.home_space(tx, rec.id)
    if space is None:
        raise NotFound(f"user {rec.name!r} has no home space")
    return Principal(rec.id, rec.name, rec.display_name, rec.is_admin, space.id, space.root_id,
                     app_password_id)


@unit_of_work
def create_app_password(core: Core, name: str, device: str, *, actor: Actor = SYSTEM,
                        login: bool = False) -> str:
    """A new 72-character app password for the user, shown once. ``login``: it was made from
    the account's password (Nextcloud's getapppassword), which the audit log also records as a
    successful login, in the same transaction. ``device`` names it (at most DEVICE_NAME_MAX
    characters, the column's length: InvalidInput beyond, on every backend)."""
    if len(device) > DEVICE_NAME_MAX:
        raise InvalidInput(f"the device name must have at most {DEVICE_NAME_MAX} characters")
    token = random_password(72)
    with core.db.write() as tx:
        rec = _user(tx, name)
        app_id = repo.insert_app_password(tx, user_id=rec.id, name=device, token_hash=app_token_hash(token),
                                          created_at=core.clock())
        if login:
            audit.record_in(tx, core, "login", actor, object=f"user:{rec.name}", detail="app password from password")
        audit.record_in(tx, core, "app_password.created", actor, object=f"app_password:{app_id}",
                        detail=f"user:{rec.name} device:{device}")
    return token


def list_app_passwords(core: Core, name: str) -> list[AppPasswordRecord]:
    with core.db.read() as tx:
        return repo.list_app_passwords(tx, _user(tx, name).id)


@unit_of_work
def revoke_app_password(core: Core, name: str, app_id: int, *, actor: Actor = SYSTEM) -> None:
    with core.db.write() as tx:
        rec = _user(tx, name)
        if not repo.delete_app_password(tx, rec.id, app_id):
            raise NotFound(f"user {name!r} has no app password with id {app_id}")
        audit.record_in(tx, core, "app_password.revoked", actor, object=f"app_password:{app_id}",
                        detail=f"user:{rec.name}")

