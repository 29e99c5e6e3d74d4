"""Money reports for the dashboard and the reports pages: revenue by period, plan, account state.

Revenue is what subscribers were billed (charges and fees, net of refunds);
payments are what came in. Amounts stay integer minor units per currency.
Grouping by day or month happens in Python over rows already summed per day
in SQL, in the caller's time zone: day boundaries move with the zone, and SQL
date functions differ between SQLite and MariaDB. The plan of a ledger entry
is the account's current plan (entries do not record the plan they were
charged under).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.models import AccountStatus, BillingAccount, EntryKind, LedgerEntry
from core.db.models import Plan, Subscriber

REVENUE_KINDS = (EntryKind.CHARGE.value, EntryKind.FEE.value)
PAYMENT_KINDS = (EntryKind.PAYMENT.value,)
NO_PLAN = ""


@dataclass(frozen=True)
class MoneyTotals:
    currency: str
    revenue: int  # charges + fees, minor units, positive
    payments: int  # payments received, minor units
    refunds: int


@dataclass(frozen=True)
class RevenueRow:
    period: str  # 2026-12-03 or 2026-12
    group: str  # plan name (or "" without a plan), or reseller
    currency: str
    revenue: int
    payments: int


def _hour_rows(session: Session, since: datetime, until: datetime
               ) -> list[tuple[datetime, str, str | None, str, int]]:
    """(entry time, kind, plan name, currency, amount) of every money entry in the range."""
    q = (select(LedgerEntry.created_at, LedgerEntry.kind, Plan.name, BillingAccount.currency,
                LedgerEntry.amount)
         .join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
         .outerjoin(Plan, Plan.id == Subscriber.plan_id)
         .where(LedgerEntry.created_at >= since, LedgerEntry.created_at < until,
                LedgerEntry.kind.in_(REVENUE_KINDS + PAYMENT_KINDS
                                     + (EntryKind.REFUND.value,))))
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in session.execute(q)]


def thd_money_totals(session: Session, since: datetime, until: datetime) -> list[MoneyTotals]:
    """Revenue, payments and refunds between two instants, per currency (one query)."""
    q = (select(BillingAccount.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount))
         .join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
         .where(LedgerEntry.created_at >= since, LedgerEntry.created_at < until)
         .group_by(BillingAccount.currency, LedgerEntry.kind))
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for currency, kind, total in session.execute(q):
        total = int(total or 0)
        if kind in REVENUE_KINDS:
            acc[currency][0] -= total
        elif kind in PAYMENT_KINDS:
            acc[currency][1] += total
        elif kind == EntryKind.REFUND.value:
            acc[currency][2] += total
    return [MoneyTotals(c, *v) for c, v in sorted(acc.items())]


def period_key(when: datetime, tz: tzinfo, by: str) -> str:
    local = when.astimezone(tz)
    return local.strftime("%Y-%m") if by == "month" else local.strftime("%Y-%m-%d")


def periods(since: datetime, until: datetime, tz: tzinfo, by: str) -> list[str]:
    """Every day (or month) label between two instants, in order, gaps included."""
    out: list[str] = []
    day: date = since.astimezone(tz).date()
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        key = day.strftime("%Y-%m") if by == "month" else day.isoformat()
        if not out or out[-1] != key:
            out.append(key)
        day += timedelta(days=1)
    return out


def thd_revenue(session: Session, since: datetime, until: datetime, tz: tzinfo,
                by: str = "day") -> list[RevenueRow]:
    """Revenue and payments per day or month and plan, in ``tz``'s calendar."""
    if by not in ("day", "month"):
        raise ValueError("by must be 'day' or 'month'")
    acc: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for when, kind, plan, currency, amount in _hour_rows(session, since, until):
        key = (period_key(when, tz, by), plan or NO_PLAN, currency)
        if kind in REVENUE_KINDS:
            acc[key][0] -= amount
        elif kind in PAYMENT_KINDS:
            acc[key][1] += amount
        else:  # a refund gives money back: less revenue
            acc[key][0] -= amount
    return [RevenueRow(p, g, c, v[0], v[1]) for (p, g, c), v in sorted(acc.items())]


def thd_blocked_for_money(session: Session) -> int:
    """Accounts billing has blocked (out of money), through the status index."""
    return int(session.scalar(select(func.count()).select_from(BillingAccount)
                              .where(BillingAccount.status == AccountStatus.BLOCKED.value))
               or 0)
