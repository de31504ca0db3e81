# SPDX-License-Identifier: EUPL-1.2
"""Public links in core (core/shares.py, core/permissions.py): each kind's permissions, the
token, passwords (right, wrong, throttled), expiry on a fake clock, the download limit,
revocation at once, several links per item, the owner's quota, and paths that try to leave the
shared folder."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from cartable.core import accounts, audit, files, reads, shares
from cartable.core.auth import Authenticator, ThrottlePolicy
from cartable.core.context import Core
from cartable.core.errors import (
    CartableError,
    Forbidden,
    InvalidInput,
    LinkExpired,
    NotFound,
    QuotaExceeded,
    Throttled,
    Unauthenticated,
)
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.core.writes import Upload
from tests.core.conftest import FakeClock, op_for

DAY = 86400.0


def put(core: Core, op: Op, parts: tuple[str, ...], data: bytes) -> str:
    up = Upload(core, op, parts, length=len(data))
    up.write(data)
    return up.commit().node.name


def read(core: Core, p: Principal, parts: tuple[str, ...]) -> bytes:
    return reads.open_content(core, p, parts).read_all()


@pytest.fixture
def owner(small_core: Core) -> Op:
    op = op_for(small_core)
    files.mkdir(small_core, op, ("class",))
    files.mkdir(small_core, op, ("class", "sub"))
    files.mkdir(small_core, op, ("private",))
    put(small_core, op, ("class", "a.txt"), b"lesson")
    put(small_core, op, ("private", "secret.txt"), b"secret")
    return op


def visit(core: Core, owner: Op, perms: int, parts: tuple[str, ...] = ("class",), **kw: object) -> Principal:
    info = shares.create_link(core, owner, parts, perms=perms, **kw)  # type: ignore[arg-type]
    return shares.enter(core, Authenticator(core), info.share.token or "", kw.get("password"),  # type: ignore[arg-type]
                        "198.51.100.7", sleep=False)


def refused(fn: Callable[[], object], exc: type[CartableError] = Forbidden) -> None:
    with pytest.raises(exc):
        fn()


def test_the_token_is_unguessable_and_url_safe(small_core: Core, owner: Op) -> None:
    tokens = {shares.create_link(small_core, owner, ("class",)).share.token for _ in range(20)}
    assert len(tokens) == 20
    for t in tokens:
        assert t is not None and re.fullmatch(r"[A-Za-z0-9_-]{32}", t)  # 32 × 6 = 192 bits


def test_read_only_link_reads_and_changes_nothing(small_core: Core, owner: Op) -> None:
    p = visit(small_core, owner, shares.READ_ONLY)
    op = Op(p)
    node, kids = files.listing(small_core, p, ())
    assert node.name == "class" and sorted(k.name for k in kids) == ["a.txt", "sub"]
    assert read(small_core, p, ("a.txt",)) == b"lesson"
    refused(lambda: put(small_core, op, ("new.txt",), b"x"))
    refused(lambda: put(small_core, op, ("a.txt",), b"x"))
    refused(lambda: files.mkdir(small_core, op, ("d",)))
    refused(lambda: files.delete(small_core, op, ("a.txt",)))
    refused(lambda: files.move(small_core, op, ("a.txt",), ("b.txt",)))
    refused(lambda: files.copy(small_core, op, ("a.txt",), ("b.txt",)))
    assert read(small_core, owner.principal, ("class", "a.txt")) == b"lesson"
    assert sorted(k.name for k in files.listing(small_core, owner.principal, ("class",))[1]) == ["a.txt", "sub"]


def test_read_write_link_writes_inside_only(small_core: Core, owner: Op) -> None:
    p = visit(small_core, owner, shares.READ_WRITE)
    op = Op(p)
    put(small_core, op, ("new.txt",), b"hello")
    put(small_core, op, ("a.txt",), b"changed")
    files.mkdir(small_core, op, ("d",))
    files.move(small_core, op, ("new.txt",), ("d", "moved.txt"))
    files.copy(small_core, op, ("a.txt",), ("sub", "copy.txt"))
    files.delete(small_core, op, ("sub",))
    assert read(small_core, owner.principal, ("class", "d", "moved.txt")) == b"hello"
    assert read(small_core, owner.principal, ("class", "a.txt")) == b"changed"
    # Nothing above or beside the link can be named.
    for hostile in (("..", "private", "secret.txt"), ("private", "secret.txt"), ("..",)):
        refused(lambda h=hostile: read(small_core, p, h), NotFound)  # type: ignore[misc]
    refused(lambda: files.delete(small_core, op, ()))


def test_upload_only_link_adds_without_seeing_or_replacing(small_core: Core, owner: Op) -> None:
    p = visit(small_core, owner, shares.UPLOAD_ONLY)
    op = Op(p)
    refused(lambda: files.listing(small_core, p, ()))
    refused(lambda: files.stat(small_core, p, ("a.txt",)))
    refused(lambda: read(small_core, p, ("a.txt",)))
    refused(lambda: files.delete(small_core, op, ("a.txt",)))
    assert put(small_core, op, ("homework.pdf",), b"mine") == "homework.pdf"
    # A taken name is neither revealed nor replaced: the upload gets a free one.
    assert put(small_core, op, ("a.txt",), b"theirs") == "a (2).txt"
    assert put(small_core, op, ("a.txt",), b"again") == "a (3).txt"
    assert read(small_core, owner.principal, ("class", "a.txt")) == b"lesson"
    assert read(small_core, owner.principal, ("class", "a (2).txt")) == b"theirs"


def test_file_link_reaches_only_its_file(small_core: Core, owner: Op) -> None:
    p = visit(small_core, owner, shares.READ_ONLY, ("class", "a.txt"))
    assert read(small_core, p, ()) == b"lesson"
    refused(lambda: read(small_core, p, ("..", "sub")), NotFound)
    refused(lambda: shares.create_link(small_core, owner, ("class", "a.txt"), perms=shares.READ_WRITE),
            InvalidInput)


def test_links_are_the_owners_business(small_core: Core, owner: Op) -> None:
    refused(lambda: shares.create_link(small_core, owner, ()))  # the whole space
    refused(lambda: shares.create_link(small_core, owner, ("nope",)), NotFound)
    p = visit(small_core, owner, shares.READ_WRITE)
    refused(lambda: shares.create_link(small_core, Op(p), ("sub",)))  # no resharing through a link
    accounts.create_user(small_core, "bob", "bob-secret-pw")
    bob = op_for(small_core, "bob")
    mine = shares.create_link(small_core, owner, ("class",))
    refused(lambda: shares.link(small_core, bob.principal, mine.share.id), NotFound)
    refused(lambda: shares.delete_link(small_core, bob, mine.share.id), NotFound)
    assert shares.links(small_core, bob.principal) == []
    for bad in (0, 2, 8, 64, shares.READ_ONLY | 128):
        refused(lambda b=bad: shares.create_link(small_core, owner, ("class",), perms=b), InvalidInput)  # type: ignore[misc]


def test_several_links_and_revocation_at_once(small_core: Core, owner: Op) -> None:
    one = shares.create_link(small_core, owner, ("class",), perms=shares.READ_ONLY, label="parents")
    two = shares.create_link(small_core, owner, ("class",), perms=shares.UPLOAD_ONLY, label="homework")
    assert [i.share.label for i in shares.links(small_core, owner.principal, ("class",))] == ["parents", "homework"]
    assert one.share.token != two.share.token
    auth = Authenticator(small_core)
    shares.enter(small_core, auth, one.share.token or "", None)
    shares.delete_link(small_core, owner, one.share.id)
    refused(lambda: shares.enter(small_core, auth, one.share.token or "", None), NotFound)
    assert shares.enter(small_core, auth, two.share.token or "", None).permissions == shares.UPLOAD_ONLY
    events = [e.event for e in audit.query(small_core, event=None)]
    assert events.count("share.created") >= 2 and "share.deleted" in events


def test_password_right_wrong_and_throttled(small_core: Core, owner: Op) -> None:
    info = shares.create_link(small_core, owner, ("class",), password="parents-2026")
    token = info.share.token or ""
    assert info.share.password_hash is not None and info.share.password_hash.startswith("$argon2id$")
    auth = Authenticator(small_core, policy=ThrottlePolicy(max_per_user=3))
    refused(lambda: shares.enter(small_core, auth, token, None, "203.0.113.9", sleep=False), Unauthenticated)
    for _ in range(3):
        refused(lambda: shares.enter(small_core, auth, token, "guess", "203.0.113.9", sleep=False), Unauthenticated)
    refused(lambda: shares.enter(small_core, auth, token, "parents-2026", "203.0.113.9", sleep=False), Throttled)
    assert shares.enter(small_core, auth, token, "parents-2026", "192.0.2.1", sleep=False).link_id == info.share.id
    failures = audit.query(small_core, event="link.access", outcome=audit.FAILURE)
    assert len(failures) == 3
    # A new password counts at once; "" removes it.
    shares.update_link(small_core, owner, info.share.id, password="new-one")
    refused(lambda: shares.enter(small_core, auth, token, "parents-2026", "192.0.2.1", sleep=False), Unauthenticated)
    shares.update_link(small_core, owner, info.share.id, password="")
    assert shares.enter(small_core, auth, token, None).link_id == info.share.id


def test_expiry_on_the_clock(small_core: Core, owner: Op, clock: FakeClock) -> None:
    refused(lambda: shares.create_link(small_core, owner, ("class",), expires_at=clock.now - 1), InvalidInput)
    info = shares.create_link(small_core, owner, ("class",), expires_at=clock.now + DAY)
    auth = Authenticator(small_core)
    shares.enter(small_core, auth, info.share.token or "", None)
    clock.advance(DAY)
    with pytest.raises(LinkExpired, match="expired on"):
        shares.enter(small_core, auth, info.share.token or "", None)
    shares.update_link(small_core, owner, info.share.id, expires_at=None)
    shares.enter(small_core, auth, info.share.token or "", None)


def test_download_limit(small_core: Core, owner: Op) -> None:
    info = shares.create_link(small_core, owner, ("class",), download_limit=2)
    p = shares.enter(small_core, Authenticator(small_core), info.share.token or "", None)
    shares.count_download(small_core, p, "/a.txt")
    shares.count_download(small_core, p, "/a.txt")
    with pytest.raises(Forbidden, match="download limit"):
        shares.count_download(small_core, p, "/a.txt")
    assert shares.link(small_core, owner.principal, info.share.id).share.download_count == 2
    shares.count_download(small_core, owner.principal, "/class/a.txt")  # the owner is never counted


def test_writes_are_charged_to_the_owners_quota(tmp_path: object, owner: Op, small_core: Core) -> None:
    p = visit(small_core, owner, shares.READ_WRITE)
    used = files.usage(small_core, owner.principal).used
    accounts.set_quota(small_core, "alice", used + 10)
    with pytest.raises(QuotaExceeded):
        put(small_core, Op(p), ("big.bin",), b"x" * 100)
    refused(lambda: files.stat(small_core, owner.principal, ("class", "big.bin")), NotFound)
    assert files.usage(small_core, owner.principal).used == used
    put(small_core, Op(p), ("small.bin",), b"x" * 5)
    assert files.usage(small_core, owner.principal).used == used + 5


def test_a_trashed_item_stops_its_links(small_core: Core, owner: Op) -> None:
    info = shares.create_link(small_core, owner, ("class",))
    files.delete(small_core, owner, ("class",))
    refused(lambda: shares.enter(small_core, Authenticator(small_core), info.share.token or "", None), NotFound)
    assert shares.links(small_core, owner.principal) == []


def test_account_features_refuse_links(small_core: Core, owner: Op) -> None:
    from cartable.core import favorites, search

    p = visit(small_core, owner, shares.READ_WRITE)
    refused(lambda: search.search(small_core, p, (), where=None))
    refused(lambda: favorites.set_favorite(small_core, Op(p), ("a.txt",), True))
    assert favorites.favorite_ids(small_core, p) == set()


def test_trash_versions_uploads_and_bulk_refuse_links(small_core: Core, owner: Op) -> None:
    from cartable.core import bulk, trash, uploads, versions

    p = visit(small_core, owner, shares.READ_WRITE)
    refused(lambda: trash.items(small_core, p))
    refused(lambda: trash.empty(small_core, Op(p)))
    refused(lambda: versions.listing(small_core, p, 1))
    refused(lambda: uploads.begin(small_core, p, "up-1"))
    refused(lambda: bulk.BulkWriter(small_core, Op(p)))
