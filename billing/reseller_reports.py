"""What a reseller sees of its money: its own statement, and revenue split by reseller.

* A reseller's statement covers one month (``[statements] time_zone``) of its
  prepaid balance with the operator: the opening balance (every entry before
  the month), each top-up, draw (the wholesale share of a subscriber payment)
  and adjustment of the month, and the closing balance = opening + the month,
  so one month's closing is the next one's opening. Read from
  ``reseller_entry``, the reseller's immutable ledger.
* Revenue by reseller: per period and reseller (``(operator)`` for subscribers
  no reseller owns), what its subscribers were billed (charges and fees, net
  of refunds), what they paid, and the wholesale the reseller's balance paid
  the operator for those payments; ``margin`` = payments - wholesale is what
  the reseller kept. Same rules as billing.reports (minor units per currency,
  days and months in the given zone).

Scoping (a reseller's caller reads only its own) is the service layer's
(webadmin.service.reseller_reports); these functions read what they are asked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.reports import PAYMENT_KINDS, REVENUE_KINDS, period_key
from billing.reseller_models import ResellerAccount, ResellerEntry
from billing.statements import month_bounds
from core.db.models import Reseller, Subscriber
from core.errors import InvalidInput, NotFound

OPERATOR = "(operator)"


@dataclass(frozen=True)
class ResellerLine:
    at: datetime
    kind: str  # topup | draw | adjustment
    amount: int  # minor units; draws < 0
    reference: str | None
    description: str


@dataclass(frozen=True)
class ResellerStatement:
    reseller: str
    period: str
    currency: str
    opening: int
    closing: int
    lines: list[ResellerLine] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # kind -> sum in the month


def thd_reseller_statement(session: Session, name: str, period: str,
                           zone: ZoneInfo, currency: str) -> ResellerStatement:
    rid = session.scalar(select(Reseller.id).where(Reseller.name == name))
    if rid is None:
        raise NotFound(f"reseller {name!r} not found")
    start, end = month_bounds(period, zone)
    acct_currency = session.scalar(select(ResellerAccount.currency)
                                   .where(ResellerAccount.reseller_id == rid))
    opening = int(session.scalar(select(func.coalesce(func.sum(ResellerEntry.amount), 0))
                                 .where(ResellerEntry.reseller_id == rid,
                                        ResellerEntry.created_at < start)) or 0)
    rows = session.execute(
        select(ResellerEntry.created_at, ResellerEntry.kind, ResellerEntry.amount,
               ResellerEntry.reference, ResellerEntry.description)
        .where(ResellerEntry.reseller_id == rid, ResellerEntry.created_at >= start,
               ResellerEntry.created_at < end)
        .order_by(ResellerEntry.id)).all()
    lines = [ResellerLine(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.kind] += line.amount
    return ResellerStatement(reseller=name, period=period, currency=acct_currency or currency,
                             opening=opening, closing=opening + sum(totals.values()),
                             lines=lines, totals=dict(totals))


@dataclass(frozen=True)
class ResellerRevenueRow:
    period: str
    reseller: str
    currency: str
    revenue: int  # charges + fees - refunds of its subscribers, minor units, positive
    payments: int  # what its subscribers paid
    wholesale: int  # drawn from the reseller's balance for those payments
    margin: int  # payments - wholesale


def thd_revenue_by_reseller(session: Session, since: datetime, until: datetime, tz: tzinfo,
                            by: str = "month",
                            reseller_id: int | None = None) -> list[ResellerRevenueRow]:
    """Per period and reseller; ``reseller_id`` limits it to one (no operator row)."""
    if by not in ("day", "month"):
        raise InvalidInput("by must be day or month")
    if since >= until:
        raise InvalidInput("the period's end must be after its start")
    q = (select(LedgerEntry.created_at, LedgerEntry.kind, Reseller.name,
                BillingAccount.currency, LedgerEntry.amount)
         .join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
         .outerjoin(Reseller, Reseller.id == Subscriber.reseller_id)
         .where(LedgerEntry.created_at >= since, LedgerEntry.created_at < until,
                LedgerEntry.kind.in_(REVENUE_KINDS + PAYMENT_KINDS
                                     + (EntryKind.REFUND.value,))))
    if reseller_id is not None:
        q = q.where(Subscriber.reseller_id == reseller_id)
    acc: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for when, kind, reseller, currency, amount in session.execute(q):
        key = (period_key(when, tz, by), reseller or OPERATOR, currency)
        if kind in PAYMENT_KINDS:
            acc[key][1] += int(amount)
        else:  # charges and fees are negative; a refund gives money back
            acc[key][0] -= int(amount)
    draws = (select(ResellerEntry.created_at, Reseller.name, ResellerAccount.currency,
                    ResellerEntry.amount)
             .join(Reseller, Reseller.id == ResellerEntry.reseller_id)
             .join(ResellerAccount, ResellerAccount.reseller_id == ResellerEntry.reseller_id)
             .where(ResellerEntry.kind == "draw", ResellerEntry.created_at >= since,
                    ResellerEntry.created_at < until))
    if reseller_id is not None:
        draws = draws.where(ResellerEntry.reseller_id == reseller_id)
    for when, reseller, currency, amount in session.execute(draws):
        acc[(period_key(when, tz, by), reseller, currency)][2] -= int(amount)
    return [ResellerRevenueRow(p, r, c, v[0], v[1], v[2], v[1] - v[2])
            for (p, r, c), v in sorted(acc.items())]
