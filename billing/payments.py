"""Payments, refunds and adjustments: idempotent on the external reference, unblocking at once.

A payment with ``--ref`` has the idempotency key ``pay:<ref>``: the same
reference posted again (a gateway retry, a re-run import) changes nothing;
the same reference with a different amount or account is refused as a
conflict rather than silently ignored. A payment that lifts the account
above its limit unblocks it in the same transaction, so the very next
Access-Request is accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from billing.accounts import (
    AccountView,
    block,
    ensure_account,
    find_subscriber,
    settle_status,
    view,
)
from billing.errors import BillingError
from billing.ledger import Entry, post
from billing.models import EntryKind
from billing.tariff_store import thd_load_tariff
from core.db.base import utcnow

MAX_REFERENCE = 128


@dataclass(frozen=True)
class PaymentResult:
    entry: Entry
    created: bool
    unblocked: bool
    account: AccountView


def thd_add_payment(session: Session, login: str, amount: int, currency: str,
                    reference: str | None = None, kind: EntryKind = EntryKind.PAYMENT,
                    description: str = "", now: datetime | None = None,
                    method: str = "manual", key: str | None = None) -> PaymentResult:
    """Post a payment (or refund/adjustment) of ``amount`` minor units to ``login``'s account.

    ``method`` says how the money came (manual, card, import, gateway:<name>);
    ``key`` overrides the idempotency key derived from the reference.
    """
    if reference is not None:
        reference = reference.strip()
        if not reference or len(reference) > MAX_REFERENCE:
            raise BillingError(f"--ref must be 1..{MAX_REFERENCE} characters")
    if kind is not EntryKind.ADJUSTMENT and amount <= 0:
        raise BillingError(f"a {kind.value} must be greater than 0")
    now = now or utcnow()
    sub = find_subscriber(session, login)
    account = ensure_account(session, sub.id, currency)
    if account.currency != currency:
        raise BillingError(f"account of {login} is kept in {account.currency}, not {currency}")
    if key is None:
        key = (f"{kind.value}:{reference}" if reference
               else f"{kind.value}:auto:{uuid.uuid4().hex}")
    posted = post(session, account, kind, amount, key, reference=reference,
                  description=description or f"{kind.value} {reference or ''}".strip(), now=now,
                  method=method if kind is not EntryKind.ADJUSTMENT else None)
    if not posted.created:
        e = posted.entry
        expected = amount if kind is EntryKind.ADJUSTMENT else abs(amount)
        if e.account_id != account.id or abs(e.amount) != abs(expected):
            raise BillingError(f"reference {reference!r} was already used for a different "
                               f"{'account' if e.account_id != account.id else 'amount'}")
    tariff = thd_load_tariff(session, sub.plan_id) if sub.plan_id else None
    change = settle_status(session, account, tariff, f"{kind.value} {reference or ''}".strip(),
                           now)
    session.flush()
    if posted.created and kind is EntryKind.PAYMENT:
        from billing.resellers import draw_for_payment

        draw_for_payment(session, sub.id, amount, currency, key, login, now)
    if posted.created and kind is EntryKind.PAYMENT:
        from billing.money import format_amount
        from billing.notify import enqueue_account

        enqueue_account(session, "payment_received", account.id, {
            "amount": format_amount(amount, currency), "currency": currency,
            "reference": reference, "method": method,
            "balance": format_amount(account.balance, currency)}, now)
    if change == "unblocked":
        from billing.notify import enqueue_account

        enqueue_account(session, "restored", account.id, {"reason": kind.value}, now)
    return PaymentResult(entry=posted.entry, created=posted.created,
                         unblocked=change == "unblocked", account=view(session, account, tariff))


__all__ = ["PaymentResult", "block", "settle_status", "thd_add_payment"]
