"""Errors of the pools package; each is a one-line message for the operator."""

from __future__ import annotations

from core.errors import InvalidInput, RadbillError


class PoolError(RadbillError):
    """Base of pool errors."""


class BadRange(InvalidInput):
    """A range, prefix, number, pattern or file that does not parse, or does not fit the kind."""


class PoolTooLarge(InvalidInput):
    """The ranges would expand into more identifiers than a pool may hold."""


class PoolOverlap(PoolError):
    """The new pool's ranges overlap those of an existing pool of the same address family."""


class PoolInUse(PoolError):
    """The pool still has live leases or static assignments, so it cannot be removed."""


class ItemUnavailable(PoolError):
    """The identifier asked for is not in the pool or is held by someone else."""


class PoolExhausted(PoolError):
    """No free identifier left in any of the pools that could serve a request."""

    def __init__(self, pool: str, kind: str) -> None:
        super().__init__(f"pool {pool} ({kind}) is full")
        self.pool = pool
        self.kind = kind


class LoginSpaceExhausted(PoolError):
    """A login pattern cannot produce as many unused logins as asked for."""
