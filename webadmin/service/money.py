"""Accounts, credit limits, the ledger and payments, through the service layer.

Amounts cross this layer as integer minor units; the faces parse and format
them (``billing.money``) in the configured currency. A payment is exactly
once per reference: the API passes the ``Idempotency-Key`` as the reference
when the body has none, so a retried request returns the first result and
posts nothing (``billing.payments`` keys the ledger entry on it, under the
account's row lock, so concurrent duplicates serialise and the second finds
the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import accounts, ledger, payments
from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.money import format_amount
from billing.quote import thd_quote
from core.db.models import Subscriber
from core.errors import InvalidInput, NotFound
from webadmin.roles import Caller
from webadmin.service import audit, scope

PAYMENT_KINDS = (EntryKind.PAYMENT.value, EntryKind.REFUND.value, EntryKind.ADJUSTMENT.value)


def account_dict(a: accounts.AccountView) -> dict[str, Any]:
    c = a.currency
    return {"login": a.login, "plan": a.plan, "currency": c,
            "balance": format_amount(a.balance, c), "reserved": format_amount(a.reserved, c),
            "credit_limit": format_amount(a.credit_limit, c),
            "available": format_amount(a.available, c), "status": a.status,
            "status_reason": a.status_reason or None, "status_changed_at": a.status_changed_at}


def entry_dict(e: ledger.Entry, currency: str, login: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": e.id}
    if login is not None:
        out["login"] = login
    out.update({"created_at": e.created_at, "kind": e.kind,
                "amount": format_amount(e.amount, currency), "reference": e.reference,
                "source_id": e.source_id, "description": e.description})
    return out


@dataclass(frozen=True)
class AccountDetail:
    account: accounts.AccountView
    charges: list[ledger.Entry]
    events: list[accounts.EventView]

    def as_dict(self) -> dict[str, Any]:
        c = self.account.currency
        out = account_dict(self.account)
        out["last_charges"] = [entry_dict(e, c) for e in self.charges]
        out["events"] = [{"created_at": e.created_at, "kind": e.kind, "detail": e.detail}
                         for e in self.events]
        return out


def thd_account(session: Session, caller: Caller, login: str, currency: str,
                last: int = 10) -> AccountDetail:
    caller.require("account.read")
    scope.subscriber(session, caller, login)
    acct = accounts.thd_account(session, login, currency)
    return AccountDetail(acct, ledger.thd_entries(session, acct.id, last, ["charge", "fee"]),
                         accounts.thd_events(session, acct.id, last))


def thd_set_credit_limit(session: Session, caller: Caller, login: str, limit: int | None,
                         currency: str) -> accounts.AccountView:
    caller.require("account.credit")
    scope.subscriber(session, caller, login)
    before = account_dict(accounts.thd_account(session, login, currency))
    acct = accounts.thd_set_credit_limit(session, login, limit, currency)
    audit.record(session, caller, "account.limit", "account", login,
                 {"credit_limit": before["credit_limit"], "status": before["status"]},
                 {"credit_limit": format_amount(acct.credit_limit, currency),
                  "status": acct.status})
    return acct


def thd_ledger(session: Session, caller: Caller, login: str, currency: str,
               limit: int = 50) -> tuple[accounts.AccountView, list[ledger.Entry]]:
    caller.require("account.read")
    scope.subscriber(session, caller, login)
    acct = accounts.thd_account(session, login, currency)
    return acct, ledger.thd_entries(session, acct.id, limit)


def thd_ledger_check(session: Session, caller: Caller) -> ledger.CheckResult:
    caller.require("billing.read")
    return ledger.thd_check(session)


def thd_add_payment(session: Session, caller: Caller, login: str, amount: int, currency: str,
                    reference: str | None = None, kind: str = "payment",
                    description: str = "") -> payments.PaymentResult:
    """Exactly once per reference; only a payment that was recorded now is audited."""
    caller.require("payment.write")
    if kind not in PAYMENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(PAYMENT_KINDS)}", field="kind")
    scope.subscriber(session, caller, login)
    result = payments.thd_add_payment(session, login, amount, currency, reference,
                                      EntryKind(kind), description)
    if result.created:
        audit.record(session, caller, f"payment.{kind}", "account", login, None,
                     {"entry_id": result.entry.id,
                      "amount": format_amount(result.entry.amount, currency),
                      "reference": reference, "balance": account_dict(result.account)["balance"]})
    return result


@dataclass(frozen=True)
class PaymentRow:
    entry: ledger.Entry
    login: str
    currency: str

    def as_dict(self) -> dict[str, Any]:
        return entry_dict(self.entry, self.currency, self.login)


def thd_list_payments(session: Session, caller: Caller, login: str | None = None,
                      kind: str | None = None, since: datetime | None = None,
                      limit: int = 50, offset: int = 0) -> list[PaymentRow]:
    """Payments, refunds and adjustments, newest first (stable: by entry id)."""
    caller.require("payment.read")
    if limit < 0 or offset < 0:
        raise InvalidInput("limit and offset must be 0 or greater")
    q = (select(LedgerEntry, Subscriber.login, BillingAccount.currency)
         .join(BillingAccount, LedgerEntry.account_id == BillingAccount.id)
         .join(Subscriber, BillingAccount.subscriber_id == Subscriber.id))
    kinds = [kind] if kind else list(PAYMENT_KINDS)
    if kind is not None and kind not in PAYMENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(PAYMENT_KINDS)}", field="kind")
    q = q.where(LedgerEntry.kind.in_(kinds))
    if login is not None:
        sub_id, _ = scope.subscriber(session, caller, login)
        if sub_id is None:
            raise NotFound(f"no subscriber with login {login!r}")
        q = q.where(BillingAccount.subscriber_id == sub_id)
    elif caller.scoped:
        q = q.where(Subscriber.reseller_id == caller.reseller_id)
    if since is not None:
        q = q.where(LedgerEntry.created_at >= since)
    q = q.order_by(LedgerEntry.id.desc()).offset(offset).limit(limit)
    return [PaymentRow(ledger._entry(row), name, currency)
            for row, name, currency in session.execute(q).all()]


def thd_rate(session: Session, caller: Caller, login: str | None, plan: str | None,
             duration: int, octets_in: int, octets_out: int, called: str | None,
             at: datetime, currency: str) -> dict[str, Any]:
    """A rating dry run for a subscriber's plan or a named plan."""
    caller.require("rating.read")
    if (login is None) == (plan is None):
        raise InvalidInput("give either a subscriber or a plan", field="subscriber")
    if login is not None:
        scope.subscriber(session, caller, login)
    else:
        scope.plan(session, caller, plan)
    return thd_quote(session, login, plan, duration, octets_in, octets_out, called, at,
                     currency)
