# SPDX-License-Identifier: EUPL-1.2
"""Errors the domain raises; each adapter maps them to its protocol in one table.

CartableError
 ├── NotFound             the path or id names nothing (or nothing the caller may see)
 │    ├── NotVisible      an account or object the caller may not see, whether it exists or not
 │    └── LinkExpired     a public link past its expiry date (410 in the link adapters)
 ├── InvalidName          a name or path is unacceptable (NUL, '..', too long, bad UTF-8)
 ├── InvalidInput         a request value is malformed (depth, timeout, checksum syntax)
 ├── Conflict             the tree is not in a state that allows it (missing parent, file as parent)
 │    └── AlreadyExists   the target exists and the caller asked not to replace it
 ├── PreconditionFailed   If-Match / If-None-Match / If header / Overwrite: F did not hold
 ├── Gone                 it existed and is no longer available (a change cursor older than the
 │                        journal's retention, or from another copy of the database): start over
 ├── Forbidden            the caller may not do this (other user's space, disabled account)
 ├── Unauthenticated      no or wrong credentials
 ├── Throttled            too many failed logins; retry after .retry_after seconds
 ├── Locked               a lock is held and its token was not submitted
 ├── QuotaExceeded        the space's quota would be exceeded
 ├── TooLarge             a body or value is over a configured limit
 ├── ChecksumMismatch     the content does not match the checksum the client sent
 └── StorageUnavailable   the chunk store or database failed; retrying later may work
      └── DataMissing     a row or chunk that must exist does not (damage or a bug, not a race):
                          logged on the "cartable.core" logger, reported by fsck; a 500, never
                          an empty answer
"""

from __future__ import annotations

__all__ = ["CartableError", "NotFound", "NotVisible", "LinkExpired", "InvalidName", "InvalidInput", "Conflict",
           "AlreadyExists", "PreconditionFailed", "Gone", "Forbidden", "Unauthenticated", "Throttled", "Locked",
           "QuotaExceeded", "TooLarge", "ChecksumMismatch", "StorageUnavailable", "DataMissing"]


class CartableError(Exception):
    """Base class; str(exc) is a message a person can act on."""


class NotFound(CartableError):
    pass


class NotVisible(NotFound):
    pass


class LinkExpired(NotFound):
    pass


class InvalidName(CartableError):
    pass


class InvalidInput(CartableError):
    pass


class Conflict(CartableError):
    pass


class AlreadyExists(Conflict):
    pass


class Gone(CartableError):
    pass


class PreconditionFailed(CartableError):
    pass


class Forbidden(CartableError):
    pass


class Unauthenticated(CartableError):
    pass


class Throttled(CartableError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Locked(CartableError):
    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class QuotaExceeded(CartableError):
    pass


class TooLarge(CartableError):
    pass


class ChecksumMismatch(CartableError):
    pass


class StorageUnavailable(CartableError):
    pass


class DataMissing(StorageUnavailable):
    pass
