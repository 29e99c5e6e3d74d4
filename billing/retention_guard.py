"""What accounting's retention must keep for billing: open periods and unpaid invoices.

Statements and invoices are computed from the ledger, so archiving a session
does not change a number; but the sessions and calls behind a bill are what an
operator shows a subscriber who disputes it. So billing answers, for the
retention run (accounting.retention, given this function at wiring time):

* ``floor``: the start of the last closed month (in ``[statements]
  time_zone``). That month's statements may still be issued or re-rendered,
  and everything after it is the open period; nothing that ended at or after
  this moment moves.
* ``subscribers``: per subscriber with an unpaid invoice, the start of the
  oldest unpaid invoice's month; their rows that ended at or after it stay.

An invoice is unpaid while the account still owes money for it: a postpaid
account that owes ``-balance`` has paid its invoices oldest first, so its
unpaid invoices are the newest ones whose totals add up to what it owes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import BillingAccount
from billing.statement_models import Invoice, Statement
from billing.statements import StatementSettings, closed_period, month_bounds


@dataclass(frozen=True)
class RetentionGuard:
    floor: datetime | None
    subscribers: dict[int, datetime] = field(default_factory=dict)


def open_period_floor(now: datetime, settings: StatementSettings) -> datetime:
    """Start of the last closed month: it and every later moment are still billing's."""
    start, _end = month_bounds(closed_period(now, settings), settings.zone)
    return start.astimezone(UTC)


def thd_unpaid_invoice_floors(session: Session) -> dict[int, datetime]:
    """subscriber id -> start of the month of its oldest unpaid invoice."""
    rows = session.execute(
        select(BillingAccount.subscriber_id, BillingAccount.balance, Invoice.total,
               Statement.period_start)
        .join(Invoice, Invoice.account_id == BillingAccount.id)
        .join(Statement, Statement.id == Invoice.statement_id)
        .where(BillingAccount.balance < 0)
        .order_by(BillingAccount.id, Invoice.issued_at.desc(), Invoice.id.desc())).all()
    floors: dict[int, datetime] = {}
    owed_left: dict[int, int] = {}
    for subscriber_id, balance, total, period_start in rows:
        left = owed_left.setdefault(subscriber_id, -int(balance))
        if left <= 0:
            continue  # older invoices: paid by what came in after them
        floors[subscriber_id] = period_start
        owed_left[subscriber_id] = left - int(total)
    return floors


def make_retention_guard(settings: StatementSettings):  # type: ignore[no-untyped-def]
    """``thd_guard(session, now)`` for accounting.retention, bound to the statement zone."""

    def thd_guard(session: Session, now: datetime) -> RetentionGuard:
        return RetentionGuard(floor=open_period_floor(now, settings),
                              subscribers=thd_unpaid_invoice_floors(session))

    return thd_guard
