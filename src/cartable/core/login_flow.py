# SPDX-License-Identifier: EUPL-1.2
"""Login Flow v2 (no HTTP): a device asks for access, a user grants it in a browser, the device
polls once for a new app password.

Contracts:
- ``start`` returns (login token, poll token): each 96 random bytes, URL-safe (128 characters).
  The database keeps the login token (it is in the browser URL) and only SHA-256 of the poll
  token. A flow expires ``FLOW_LIFETIME`` seconds after it started (by ``core.clock``).
- The device's app password is made at ``start``, while the poll token is at hand: the flow keeps
  it sealed for the poller (XOR with a BLAKE3 keyed-XOF keystream and a BLAKE3 tag, under
  ``sha256(b"seal" + poll_token)``) and its hash. ``grant`` only creates the app_passwords row from
  that hash. Neither the poll token, the key nor the password is written anywhere, so a database
  dump alone does not reveal it, and no state lives in a process (any app node can grant).
- ``grant``/``grant_existing``/``deny``/``client_of``: unknown, expired or already granted login
  tokens raise NotFound. ``poll`` returns the credentials once and deletes the flow; unknown,
  expired, denied or not yet granted flows give None.
- Grant state tokens (CSRF protection of the grant and deny forms) are MACs under one key kept in
  the database (``state_key``), made once by whichever node starts first: a restart or another
  node checks a token this node issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from blake3 import blake3

from cartable.core import audit
from cartable.core.accounts import app_token_hash, name_key, principal_for, random_password
from cartable.core.context import Core
from cartable.core.errors import Forbidden, NotFound
from cartable.core.model import Principal
from cartable.core.units import unit_of_work
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import journal
from cartable.store.meta import login_flows as repo
from cartable.store.meta.login_flows import LoginFlowRecord

__all__ = ["FLOW_LIFETIME", "start", "client_of", "grant", "grant_existing", "deny", "poll", "purge_expired",
           "state_key", "issue_state", "check_state", "seal", "unseal"]

FLOW_LIFETIME = 20 * 60.0
TOKEN_BYTES = 96  # 128 URL-safe characters, like Nextcloud's tokens
CLIENT_NAME_MAX = 255
_SEAL_VERSION = b"\x01"
_TAG_LEN = 16


def _poll_hash(poll_token: str) -> bytes:
    return hashlib.sha256(poll_token.encode()).digest()


def _seal_key(poll_token: str) -> bytes:
    return hashlib.sha256(b"seal" + poll_token.encode()).digest()


def _keystream(key: bytes, length: int) -> bytes:
    return blake3(b"cartable login flow v2: keystream", key=key).digest(length=length)


def _tag(key: bytes, ciphertext: bytes) -> bytes:
    return blake3(b"cartable login flow v2: tag\0" + ciphertext, key=key).digest(length=_TAG_LEN)


def seal(key: bytes, secret: str) -> bytes:
    """Encrypt and authenticate ``secret`` under a 32-byte key used for this one value only."""
    plain = secret.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, len(plain)), strict=True))
    return _SEAL_VERSION + cipher + _tag(key, cipher)


def unseal(key: bytes, sealed: bytes) -> str | None:
    """The secret, or None if ``sealed`` was not made by ``seal`` with this key."""
    if len(sealed) < 1 + _TAG_LEN or sealed[:1] != _SEAL_VERSION:
        return None
    cipher, tag = sealed[1:-_TAG_LEN], sealed[-_TAG_LEN:]
    if not hmac.compare_digest(tag, _tag(key, cipher)):
        return None
    return bytes(a ^ b for a, b in zip(cipher, _keystream(key, len(cipher)), strict=True)).decode()


@unit_of_work
def start(core: Core, client_name: str) -> tuple[str, str]:
    """Open a flow for a device; returns (login token, poll token). Expired flows are purged."""
    login_token = secrets.token_urlsafe(TOKEN_BYTES)
    poll_token = secrets.token_urlsafe(TOKEN_BYTES)
    app_password = random_password(72)
    now = core.clock()
    name = (client_name.strip() or "client")[:CLIENT_NAME_MAX]
    with core.db.write() as tx:
        repo.delete_expired(tx, now)  # keeps the table small without a separate job
        repo.insert(tx, login_token=login_token, poll_token_hash=_poll_hash(poll_token), client_name=name,
                    created_at=now, expires_at=now + FLOW_LIFETIME,
                    sealed_password=seal(_seal_key(poll_token), app_password),
                    password_hash=app_token_hash(app_password))
    return login_token, poll_token


def _pending(flow: LoginFlowRecord | None, now: float) -> LoginFlowRecord:
    if flow is None or flow.expires_at <= now or flow.granted:
        raise NotFound("this login link is unknown, expired or already used; start again from the client")
    return flow


def client_of(core: Core, login_token: str) -> str:
    """The client name of a pending flow (NotFound otherwise)."""
    with core.db.read() as tx:
        return _pending(repo.get(tx, login_token), core.clock()).client_name


@unit_of_work
def grant(core: Core, login_token: str, principal: Principal, address: str = "") -> None:
    """Give the device its app password (made at start), named after the client, for
    ``principal``. The app password, the grant and their audit events (a successful ``login``
    and ``app_password.created``, from ``address``) are committed together."""
    now = core.clock()
    with core.db.write() as tx:
        flow = _pending(repo.get(tx, login_token, for_update=True), now)
        user = accounts_repo.user_by_id(tx, principal.user_id)
        if user is None or user.disabled:
            raise Forbidden(f"the account {principal.name!r} cannot log in")
        if flow.password_hash is None:
            raise NotFound("this login flow is incomplete; start again from the client")
        if not repo.mark_granted(tx, login_token, user_id=user.id, login_name=user.name):
            raise NotFound("this login flow was already granted")
        app_id = accounts_repo.insert_app_password(tx, user_id=user.id, name=flow.client_name,
                                                   token_hash=flow.password_hash, created_at=now)
        actor = audit.Actor(user.name, address)
        audit.record_in(tx, core, "login", actor, object=f"user:{user.name}", detail="login flow v2")
        audit.record_in(tx, core, "app_password.created", actor, object=f"app_password:{app_id}",
                        detail=f"user:{user.name} device:{flow.client_name}")


def grant_existing(core: Core, login_token: str, principal: Principal, address: str = "") -> None:
    """The user proved themselves with an app password they already have (``principal``'s
    app_password_id is set): the device still gets its own app password, so that each device can
    be revoked on its own."""
    if principal.app_password_id is None:
        raise Forbidden("this is not an app password")
    grant(core, login_token, principal, address)


@unit_of_work
def deny(core: Core, login_token: str) -> None:
    """End a pending flow without granting it: the device's polls find nothing from now on."""
    now = core.clock()
    with core.db.write() as tx:
        flow = _pending(repo.get(tx, login_token, for_update=True), now)
        if not repo.delete(tx, flow.login_token):
            raise NotFound("this login flow has already ended")


@unit_of_work
def poll(core: Core, poll_token: str) -> tuple[str, str] | None:
    """(login name, app password) once the flow was granted, then the flow is gone; else None."""
    if not poll_token:
        return None
    now = core.clock()
    with core.db.write() as tx:
        flow = repo.by_poll_hash(tx, _poll_hash(poll_token))
        if flow is None:
            return None
        if flow.expires_at <= now:
            repo.delete(tx, flow.login_token)
            return None
        if not flow.granted or flow.sealed_password is None or flow.login_name is None:
            return None
        if not repo.delete(tx, flow.login_token):
            return None
    secret = unseal(_seal_key(poll_token), flow.sealed_password)
    return None if secret is None else (flow.login_name, secret)


@unit_of_work
def purge_expired(core: Core) -> int:
    """Delete expired flows (granted or not); returns how many."""
    now = core.clock()
    with core.db.write() as tx:
        return repo.delete_expired(tx, now)


STATE_LIFETIME = 10 * 60.0
_STATE_KEY = "login_flow_state_key"


@unit_of_work
def state_key(core: Core) -> bytes:
    """The key of grant state tokens, shared by every node through the database (created once,
    ``INSERT ... ON CONFLICT DO NOTHING``, so nodes starting together agree on one)."""
    with core.db.write() as tx:
        return bytes.fromhex(journal.kv_once(tx, _STATE_KEY, secrets.token_hex(32)))


def _state_mac(secret: bytes, login_token: str, user_id: int, auth_version: int, issued: int) -> str:
    message = f"grant\0{login_token}\0{user_id}\0{auth_version}\0{issued}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def issue_state(core: Core, secret: bytes, login_token: str, principal: Principal) -> str:
    """A grant state token for a user who just logged in on this flow's page (CSRF protection):
    bound to the flow, the user and their credentials' version, valid ``STATE_LIFETIME`` seconds."""
    with core.db.read() as tx:
        user = accounts_repo.user_by_id(tx, principal.user_id)
    if user is None:
        raise Forbidden(f"the account {principal.name!r} cannot log in")
    issued = int(core.clock())
    return f"{issued}.{_state_mac(secret, login_token, user.id, user.auth_version, issued)}"


def check_state(core: Core, secret: bytes, login_token: str, user_name: str, state: str) -> Principal:
    """The principal a grant state token was issued to; Forbidden if it is missing, forged, for
    another flow or user, older than ``STATE_LIFETIME``, or the user's password changed since."""
    issued_text, _, mac = state.partition(".")
    with core.db.read() as tx:
        user = accounts_repo.user_by_name(tx, name_key(user_name))
    if not issued_text.isdigit() or user is None or user.disabled:
        raise Forbidden("the grant request is not valid; log in again")
    issued = int(issued_text)
    expected = _state_mac(secret, login_token, user.id, user.auth_version, issued)
    if not hmac.compare_digest(mac.encode(), expected.encode()) or not 0 <= core.clock() - issued < STATE_LIFETIME:
        raise Forbidden("the grant request is not valid or has expired; log in again")
    return principal_for(core, user)
