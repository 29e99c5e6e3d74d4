"""Billing's exceptions: user-facing ones derive from RadbillError (one line, exit 1)."""

from __future__ import annotations

from core.errors import InvalidInput, NotFound, RadbillError


class BillingError(RadbillError):
    """Base of billing errors a user or operator sees."""


class InvalidAmount(InvalidInput):
    """An amount or price that is not a plain decimal number in range."""


class InvalidTariff(InvalidInput):
    """A plan price, band, allowance or voice rate that makes no sense; names the field."""


class NoAccount(NotFound):
    """The subscriber has no billing account (or no such subscriber)."""


class NoTariff(NotFound):
    """The plan has no prices set."""


class NoVoiceRate(NotFound):
    """No voice rate prefix of the plan matches the dialled number."""


class LedgerMismatch(BillingError):
    """`ledger check` found an account whose cached balance differs from its entries."""


class CurrencyMismatch(BillingError):
    """An amount in one currency was applied to an account kept in another."""


class PackedResultTruncated(BillingError):
    """A packed (GROUP_CONCAT) read came back short: never act on part of a batch."""
