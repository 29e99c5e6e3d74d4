"""Report figures for the admin's reports pages and their CSV files, in the caller's scope.

Sums are done by the database per hour (an hour bucket, the one date
expression SQLite and MariaDB each spell their own way), and the hours are
then put into days or months in the reporting time zone in Python: day
boundaries follow the zone (and its summer time) while the rows fetched stay
at most hours x groups, whatever the number of ledger entries or usage rows.
A reseller-scoped caller gets its own subscribers' figures only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.reports import periods
from billing.usage import UsageDeltaRow
from core.db.models import Plan, Reseller, Subscriber
from core.errors import InvalidInput
from webadmin.roles import Caller

REVENUE_KINDS = (EntryKind.CHARGE.value, EntryKind.FEE.value, EntryKind.REFUND.value)
MAX_DAYS = 400
TOP_LIMIT = 100


def hour_bucket(session: Session, column: Any) -> Any:
    """'YYYY-MM-DD HH' of a UTC datetime column, in the database's own dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return func.date_format(column, "%Y-%m-%d %H")


def bucket_period(bucket: str, tz: tzinfo, by: str) -> str:
    at = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz)
    return at.strftime("%Y-%m") if by == "month" else at.strftime("%Y-%m-%d")


def _check_range(since: datetime, until: datetime, by: str = "day") -> None:
    if by not in ("day", "month"):
        raise InvalidInput("by must be day or month", field="by")
    if until <= since:
        raise InvalidInput("the end must be after the start", field="until")
    if (until - since).days > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="since")


def _scoped(q: Any, caller: Caller, subscriber_id: Any) -> Any:
    if not caller.scoped:
        return q
    return q.where(subscriber_id.in_(select(Subscriber.id)
                                     .where(Subscriber.reseller_id == caller.reseller_id)))


@dataclass(frozen=True)
class RevenueRow:
    period: str
    group: str  # plan or reseller name; "" for none
    revenue: int  # minor units
    payments: int


def thd_revenue(session: Session, caller: Caller, since: datetime, until: datetime,
                tz: tzinfo, currency: str, by: str = "day",
                group: str = "plan") -> tuple[list[str], list[RevenueRow]]:
    """(every period label in the range, rows per period and plan or reseller)."""
    caller.require("report.read")
    _check_range(since, until, by)
    if group not in ("plan", "reseller"):
        raise InvalidInput("group must be plan or reseller", field="group")
    bucket = hour_bucket(session, LedgerEntry.created_at).label("bucket")
    name = (Plan.name if group == "plan" else Reseller.name).label("name")
    revenue = func.sum(case((LedgerEntry.kind.in_(REVENUE_KINDS), LedgerEntry.amount), else_=0))
    paid = func.sum(case((LedgerEntry.kind == EntryKind.PAYMENT.value, LedgerEntry.amount),
                         else_=0))
    q = (select(bucket, name, revenue, paid)
         .join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id))
    q = q.outerjoin(Plan, Plan.id == Subscriber.plan_id) if group == "plan" else \
        q.outerjoin(Reseller, Reseller.id == Subscriber.reseller_id)
    q = (q.where(LedgerEntry.created_at >= since, LedgerEntry.created_at < until,
                 BillingAccount.currency == currency)
         .group_by(bucket, name))
    if caller.scoped:
        q = q.where(Subscriber.reseller_id == caller.reseller_id)
    acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for b, g, rev, pay in session.execute(q):
        key = (bucket_period(b, tz, by), g or "")
        acc[key][0] -= int(rev or 0)
        acc[key][1] += int(pay or 0)
    rows = [RevenueRow(p, g, v[0], v[1]) for (p, g), v in sorted(acc.items())]
    return periods(since, until, tz, by), rows


@dataclass(frozen=True)
class TrafficRow:
    day: str
    octets_in: int
    octets_out: int
    seconds: int


def thd_traffic_per_day(session: Session, caller: Caller, since: datetime, until: datetime,
                        tz: tzinfo) -> list[TrafficRow]:
    """Octets and seconds accounted per day (every day of the range, zeros included)."""
    caller.require("report.read")
    _check_range(since, until)
    bucket = hour_bucket(session, UsageDeltaRow.created_at).label("bucket")
    q = (select(bucket, func.sum(UsageDeltaRow.octets_in), func.sum(UsageDeltaRow.octets_out),
                func.sum(UsageDeltaRow.seconds))
         .where(UsageDeltaRow.created_at >= since, UsageDeltaRow.created_at < until,
                UsageDeltaRow.source == "session")
         .group_by(bucket))
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for b, i, o, s in session.execute(_scoped(q, caller, UsageDeltaRow.subscriber_id)):
        day = acc[bucket_period(b, tz, "day")]
        day[0] += int(i or 0)
        day[1] += int(o or 0)
        day[2] += int(s or 0)
    return [TrafficRow(d, *acc.get(d, [0, 0, 0])) for d in periods(since, until, tz, "day")]


@dataclass(frozen=True)
class PrefixRow:
    prefix: str
    calls: int
    seconds: int
    cost: int  # charged, minor units


def thd_calls_per_prefix(session: Session, caller: Caller, since: datetime, until: datetime,
                         digits: int = 3) -> list[PrefixRow]:
    """Calls, minutes and cost per leading ``digits`` of the dialled number, most minutes first."""
    caller.require("report.read")
    _check_range(since, until)
    if not 1 <= digits <= 12:
        raise InvalidInput("prefix length must be 1..12 digits", field="digits")
    prefix = func.substr(UsageDeltaRow.destination, 1, digits).label("prefix")
    q = (select(prefix, func.count(func.distinct(UsageDeltaRow.source_id)),
                func.sum(UsageDeltaRow.seconds), func.sum(UsageDeltaRow.charged))
         .where(UsageDeltaRow.created_at >= since, UsageDeltaRow.created_at < until,
                UsageDeltaRow.source == "call")
         .group_by(prefix).order_by(func.sum(UsageDeltaRow.seconds).desc()).limit(TOP_LIMIT))
    return [PrefixRow(p or "", int(n or 0), int(s or 0), int(c or 0))
            for p, n, s, c in session.execute(_scoped(q, caller, UsageDeltaRow.subscriber_id))]


@dataclass(frozen=True)
class TopRow:
    login: str
    octets_in: int
    octets_out: int
    seconds: int


def thd_top_traffic(session: Session, caller: Caller, since: datetime, until: datetime,
                    limit: int = 20) -> list[TopRow]:
    """The subscribers with the most traffic (in + out) in the range."""
    caller.require("report.read")
    _check_range(since, until)
    limit = max(1, min(limit, TOP_LIMIT))
    total = func.sum(UsageDeltaRow.octets_in + UsageDeltaRow.octets_out)
    q = (select(Subscriber.login, func.sum(UsageDeltaRow.octets_in),
                func.sum(UsageDeltaRow.octets_out), func.sum(UsageDeltaRow.seconds))
         .join(Subscriber, Subscriber.id == UsageDeltaRow.subscriber_id)
         .where(UsageDeltaRow.created_at >= since, UsageDeltaRow.created_at < until,
                UsageDeltaRow.source == "session")
         .group_by(Subscriber.login).order_by(total.desc()).limit(limit))
    if caller.scoped:
        q = q.where(Subscriber.reseller_id == caller.reseller_id)
    return [TopRow(login, int(i or 0), int(o or 0), int(s or 0))
            for login, i, o, s in session.execute(q)]


@dataclass(frozen=True)
class PoolPoint:
    pool: str
    period: str  # an hour 'YYYY-MM-DD HH:00' or a day, in the reporting time zone
    used: int  # the most used in that period
    size: int


def thd_pool_usage(session: Session, caller: Caller, since: datetime, until: datetime,
                   tz: tzinfo, by: str = "hour") -> list[PoolPoint]:
    """Each pool's highest use per hour or day (from the samples the lease loop takes)."""
    from pools.usage_history import thd_pool_usage_history

    caller.require("report.read")
    caller.require("pool.read")
    _check_range(since, until)
    acc: dict[tuple[str, str], list[int]] = {}
    for p in thd_pool_usage_history(session, since, until):
        at = datetime.strptime(p.bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz)
        period = at.strftime("%Y-%m-%d %H:00") if by == "hour" else at.strftime("%Y-%m-%d")
        cur = acc.setdefault((p.pool, period), [0, 0])
        cur[0] = max(cur[0], p.used)
        cur[1] = max(cur[1], p.size)
    return [PoolPoint(pool, period, v[0], v[1]) for (pool, period), v in sorted(acc.items())]
