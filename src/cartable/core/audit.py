# SPDX-License-Identifier: EUPL-1.2
"""The audit log: who did what security-relevant thing, from where, to what, and did it work.

Each event is one row (``store.meta.audit``): time, event, actor, address, object, outcome,
detail. Rows are appended and, after ``Limits.audit_retention_days``, purged (``purge_audit``);
never changed. ``cartable admin audit`` queries them.

How to record (the API shares, links, trash and versions call too):

- ``record_in(tx, core, event, actor, ...)`` inside the transaction that makes the change, so
  the event is committed with it or not at all. Prefer this.
- ``record(core, event, actor, ...)`` in a transaction of its own, for events that change
  nothing else (a refused attempt).

``actor`` is an ``Actor``: the account name as the request named it (a failed login keeps what
was typed), and the client address (``http.basic.client_address``; "" for the command line).
``object`` names what was acted on, as ``kind:identifier`` (``user:alice``, ``group:profs``,
``app_password:12``; later ``share:34``, ``link:TOKEN-ID``, ``node:5678``). ``outcome`` is
``success``, ``failure`` (wrong credentials, refused) or ``denied`` (not allowed). Text is cut to
the column's length and control characters are replaced, so a hostile login name can neither
grow the table without bound nor drive the terminal that prints it.

Which logins are recorded. A successful login is recorded when it creates lasting access: a
Login Flow v2 grant, an app password made from a password (``core/getapppassword``). Every
failed login is recorded (in the transaction that counts it for throttling, so it costs no
extra commit). A request that merely presents credentials that work is not: 80,000 desktop
clients polling every 30 s would write thousands of rows a second, and a request served from
the credential cache does no write at all. Requests refused by throttling (429) are not
recorded one by one either: the failures that led to the throttling are.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cartable.core.context import Core
from cartable.core.errors import InvalidInput
from cartable.store.meta import audit as repo
from cartable.store.meta.engine import Tx
from cartable.store.meta.records import AuditRecord

__all__ = ["Actor", "SYSTEM", "AuditEvent", "EVENTS", "OUTCOMES", "SUCCESS", "FAILURE", "DENIED", "record", "record_in",
           "query", "purge_audit", "actor_key", "MAX_QUERY"]

AuditEvent = AuditRecord

SUCCESS, FAILURE, DENIED = "success", "failure", "denied"
OUTCOMES = (SUCCESS, FAILURE, DENIED)

# The closed list of events; a new kind of event is added here (and to docs/operations.md).
EVENTS: frozenset[str] = frozenset({
    "login",  # a login that created lasting access (success), or wrong credentials (failure)
    "app_password.created", "app_password.revoked",
    "user.created", "user.deleted", "user.updated",  # updated: display name, e-mail, password, enabled
    "group.created", "group.deleted", "group.updated", "group.member_added", "group.member_removed",
    "share.created", "share.updated", "share.deleted",  # by the owner (core/shares.py)
    "link.access",  # a download through a link (success), a wrong password (failure), expired or over limit (denied)
})

MAX_QUERY = 100_000
_LIMITS = {"actor": 255, "address": 64, "object": 1024, "detail": 2048}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an account name ("" when anonymous; ``cli:<system user>`` for the command line)
    and the client's address ("" when local)."""

    name: str
    address: str = ""


# Changes made by the server itself (first start) or by code that names no actor.
SYSTEM = Actor("system")


def actor_key(name: str) -> str:
    """How actors are matched by ``query``: ASCII letters lowercased (as login names are)."""
    return name.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _clean(text: str, limit: int) -> str:
    """Control, line-break and direction-override characters become U+FFFD; cut to ``limit``."""
    out = "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")
                  or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" else c
                  for c in text[:limit])
    return out


def record_in(tx: Tx, core: Core, event: str, actor: Actor, *, object: str = "", outcome: str = SUCCESS,
              detail: str = "") -> None:
    """Append one event inside the caller's transaction (committed with the change it records)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}: add it to core.audit.EVENTS")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    name = _clean(actor.name, _LIMITS["actor"])
    repo.insert(tx, at=core.clock(), event=event, actor=name, actor_key=actor_key(name),
                address=_clean(actor.address, _LIMITS["address"]), object=_clean(object, _LIMITS["object"]),
                outcome=outcome, detail=_clean(detail, _LIMITS["detail"]))


def record(core: Core, event: str, actor: Actor, *, object: str = "", outcome: str = SUCCESS,
           detail: str = "") -> None:
    """Append one event in a transaction of its own (for events that change nothing else)."""
    with core.db.write() as tx:
        record_in(tx, core, event, actor, object=object, outcome=outcome, detail=detail)


def query(core: Core, *, user: str | None = None, event: str | None = None, outcome: str | None = None,
          since: float | None = None, until: float | None = None, limit: int = 100) -> list[AuditEvent]:
    """Events matching every filter given (``user`` without regard to ASCII case; ``since``
    inclusive, ``until`` exclusive, both in seconds since the epoch), newest first, at most
    ``limit`` (1 to MAX_QUERY). InvalidInput for an unknown event or outcome, or a bad range."""
    if event is not None and event not in EVENTS:
        raise InvalidInput(f"unknown event {event!r}; events are: {', '.join(sorted(EVENTS))}")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"unknown outcome {outcome!r}; outcomes are: {', '.join(OUTCOMES)}")
    if not 1 <= limit <= MAX_QUERY:
        raise InvalidInput(f"the limit must be between 1 and {MAX_QUERY}")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the end of the period must come after its start")
    with core.db.read() as tx:
        return repo.query(tx, actor_key=None if user is None else actor_key(user), event=event,
                          outcome=outcome, since=since, until=until, limit=limit)


def purge_audit(core: Core, now: float | None = None) -> int:
    """Delete the events older than ``core.limits.audit_retention_days`` (0: keep them all);
    returns how many. The server's periodic job calls it, and ``cartable admin audit purge``."""
    days = core.limits.audit_retention_days
    if days <= 0:
        return 0
    now = core.clock() if now is None else now
    with core.db.write() as tx:
        return repo.purge_before(tx, now - days * 86400.0)
