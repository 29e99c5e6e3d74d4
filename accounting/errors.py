"""Exceptions of the accounting package."""

from __future__ import annotations

from core.errors import RadbillError


class AccountingError(RadbillError):
    """Base of accounting's user-facing errors."""


class SpoolError(AccountingError):
    """The local spool file cannot be opened, written or read (disk full, permissions...)."""


class SpoolCorrupt(SpoolError):
    """The spool file is not radbill's spool (bad header), so replaying it would be a guess."""


class RecordRejected(AccountingError):
    """One accounting record the database refuses on its own (not an outage): it is logged
    and set aside, never retried forever."""


class CommitTimeout(AccountingError):
    """The database did not finish a group commit in time; its records went to the spool."""
