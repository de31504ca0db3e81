# SPDX-License-Identifier: EUPL-1.2
"""Units of work: every core entry point that writes may be run again, whole.

On PostgreSQL two transactions may collide (a serialisation failure, a deadlock: the database
rolls one back; store.meta raises TransientConflict for all of them). The rule of the house is to
run the whole unit of work again, a bounded number of times with jittered backoff
(store.meta.engine.retrying), and only then to give up with StorageUnavailable (a 503: the client
retries later), so that a deadlock never reaches a client as a 500.

``unit_of_work`` marks such an entry point. Its contract: the function changes nothing outside its
own transactions before they commit (no Python-side state of record, no bytes deleted that a
rolled-back transaction still references), so running it again is the same as running it once.
Units call each other freely: only the outermost one retries (the inner ones let the conflict
through to it, since their caller's transaction is gone too).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from cartable.core.errors import StorageUnavailable
from cartable.store.meta.engine import retrying
from cartable.store.meta.errors import TransientConflict

__all__ = ["unit_of_work"]

F = TypeVar("F", bound=Callable[..., Any])
_inside = threading.local()


def unit_of_work(fn: F) -> F:
    """Decorate a core entry point that writes (see the module doc)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "depth", 0):
            return fn(*args, **kwargs)
        _inside.depth = 1
        try:
            return retrying(lambda: fn(*args, **kwargs))
        except TransientConflict:
            raise StorageUnavailable("the database was too busy with concurrent changes to this data; "
                                     "nothing was changed, retry") from None
        finally:
            _inside.depth = 0

    return cast(F, run)
