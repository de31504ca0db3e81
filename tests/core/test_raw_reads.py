# SPDX-License-Identifier: EUPL-1.2
"""The hot path's raw-driver reads (store/meta/raw.py) on the test backend: the repository's
functions give the same records through ``fast_read()`` as through ``read()``, see every commit
made before the snapshot began and none made during it."""

from __future__ import annotations

import threading

from cartable.core import accounts, files, locks
from cartable.core.auth import Authenticator, Credentials
from cartable.core.context import Core
from cartable.core.model import Principal
from cartable.core.tree import Op
from cartable.store.meta import accounts as accounts_repo
from cartable.store.meta import locks as locks_repo
from cartable.store.meta import nodes as nodes_repo
from tests.conftest import PASSWORD
from tests.core.conftest import principal as _principal


def test_the_same_records_on_both_paths(core: Core) -> None:
    me = _principal(core)
    op = Op(me)
    files.mkdir(core, op, ("Cours",))
    files.mkdir(core, op, ("Cours", "Été 2026"))
    token = accounts.create_app_password(core, "alice", "portable")
    app_id = accounts.list_app_passwords(core, "alice")[0].id
    assert token
    user = accounts.get_user(core, "alice")
    with core.db.read() as tx, core.db.fast_read() as raw:
        for fn, args in [(accounts_repo.user_by_name, ("alice",)), (accounts_repo.user_by_id, (user.id,)),
                         (accounts_repo.user_by_name, ("nobody",)), (accounts_repo.app_password_exists, (app_id,)),
                         (accounts_repo.app_password_exists, (app_id + 1000,)),
                         (nodes_repo.get, (me.root_id,)), (nodes_repo.children, (me.root_id,)),
                         (locks_repo.any_active, (core.clock(),))]:
            assert fn(raw, *args) == fn(tx, *args), fn.__name__
        cours = nodes_repo.child(tx, me.root_id, "Cours")
        assert cours is not None and nodes_repo.child(raw, me.root_id, "Cours") == cours
        assert nodes_repo.child(raw, cours.id, "Été 2026") == nodes_repo.child(tx, cours.id, "Été 2026")
        assert isinstance(accounts_repo.user_by_name(raw, "alice").disabled, bool)  # type: ignore[union-attr]
    accounts.set_disabled(core, "alice", True)
    with core.db.fast_read() as raw:
        assert accounts_repo.user_by_name(raw, "alice").disabled is True  # type: ignore[union-attr]


def test_a_snapshot_sees_what_was_committed_before_it_and_nothing_during_it(core: Core) -> None:
    me = _principal(core)
    op = Op(me)
    with core.db.fast_read() as raw:
        assert nodes_repo.child(raw, me.root_id, "new") is None
    files.mkdir(core, op, ("new",))  # committed: the next snapshot of this thread sees it
    with core.db.fast_read() as raw:
        assert nodes_repo.child(raw, me.root_id, "new") is not None
        # Another thread commits while this snapshot is open: this snapshot does not see it.
        t = threading.Thread(target=files.mkdir, args=(core, op, ("later",)))
        t.start()
        t.join()
        assert nodes_repo.child(raw, me.root_id, "later") is None
    with core.db.fast_read() as raw:
        assert nodes_repo.child(raw, me.root_id, "later") is not None


def test_credentials_changed_are_seen_at_once(core: Core) -> None:
    """A password changed: the cached credential's next check on the raw driver sees it."""
    assert locks.any_active(core) is False
    auth = Authenticator(core)
    cred = Credentials("alice", PASSWORD)
    attempt = auth.check(cred, "192.0.2.1")
    assert not isinstance(attempt, Principal)
    assert auth.verify(cred, "192.0.2.1", attempt).name == "alice"
    assert auth.cached(cred) is not None
    accounts.set_password(core, "alice", "another-secret-pw")
    assert auth.cached(cred) is None
    assert not isinstance(auth.check(cred, "192.0.2.1"), Principal)


def test_many_threads_each_with_its_own_connection(core: Core) -> None:
    n = 3
    me = _principal(core)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                with core.db.fast_read() as raw:
                    assert nodes_repo.get(raw, me.root_id) is not None
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
