"""What a subscriber (and the admin's subscriber page) sees of its money in one look.

Balance, held money, credit limit, what the plan includes and how much of it
is left this period, and, at the spend rate of the last seven days, when the
money runs out. Three or four indexed reads, whatever the account's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.accounts import AccountView, ensure_account, find_subscriber, view
from billing.models import AllowanceUsage, LedgerEntry
from billing.reports import REVENUE_KINDS
from billing.reservation import period_key
from billing.tariff_store import thd_load_tariff
from billing.tariffs import Tariff
from billing.usage import UsageDeltaRow

SPEND_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Quota:
    period: str  # day | month
    seconds_included: int
    seconds_left: int
    octets_included: int
    octets_left: int
    after: str  # charge | throttle | cutoff


@dataclass(frozen=True)
class Overview:
    account: AccountView
    tariff: Tariff | None
    quota: Quota | None
    spent_last_week: int  # minor units charged in the last SPEND_WINDOW
    runs_out_at: datetime | None  # at that rate; None when nothing is spent or postpaid slack


@dataclass(frozen=True)
class DayUsage:
    day: str
    seconds: int
    octets_in: int
    octets_out: int


def _quota(session: Session, account_id: int, tariff: Tariff | None,
           now: datetime) -> Quota | None:
    if tariff is None or tariff.allowance is None:
        return None
    a = tariff.allowance
    used = session.execute(select(AllowanceUsage.seconds, AllowanceUsage.octets).where(
        AllowanceUsage.account_id == account_id,
        AllowanceUsage.period == period_key(tariff, now, a.period))).first()
    s_used, o_used = (int(used[0]), int(used[1])) if used else (0, 0)
    return Quota(period=a.period.value, seconds_included=a.seconds,
                 seconds_left=max(0, a.seconds - s_used), octets_included=a.octets,
                 octets_left=max(0, a.octets - o_used), after=a.after.value)


def thd_overview(session: Session, login: str, currency: str, now: datetime) -> Overview:
    sub = find_subscriber(session, login)
    account = ensure_account(session, sub.id, currency, lock=False)
    tariff = thd_load_tariff(session, sub.plan_id) if sub.plan_id else None
    acct_view = view(session, account, tariff)
    spent = -int(session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account.id, LedgerEntry.kind.in_(REVENUE_KINDS),
            LedgerEntry.created_at >= now - SPEND_WINDOW)) or 0)
    runs_out = None
    if spent > 0 and acct_view.available > 0:
        per_second = spent / SPEND_WINDOW.total_seconds()
        runs_out = now + timedelta(seconds=acct_view.available / per_second)
    return Overview(account=acct_view, tariff=tariff, quota=_quota(session, account.id, tariff,
                                                                   now),
                    spent_last_week=spent, runs_out_at=runs_out)


def thd_usage_per_day(session: Session, login: str, since: datetime, until: datetime,
                      tz: tzinfo) -> list[DayUsage]:
    """One subscriber's usage per local day, from usage deltas (subscriber, period_end index)."""
    sub = find_subscriber(session, login)
    q = (select(UsageDeltaRow.period_end, UsageDeltaRow.seconds, UsageDeltaRow.octets_in,
                UsageDeltaRow.octets_out)
         .where(UsageDeltaRow.subscriber_id == sub.id, UsageDeltaRow.source == "session",
                UsageDeltaRow.period_end >= since, UsageDeltaRow.period_end < until))
    acc: dict[str, list[int]] = {}
    for end, s, i, o in session.execute(q):
        a = acc.setdefault(end.astimezone(tz).strftime("%Y-%m-%d"), [0, 0, 0])
        a[0] += int(s)
        a[1] += int(i)
        a[2] += int(o)
    return [DayUsage(d, *v) for d, v in sorted(acc.items())]


def thd_charged(session: Session, source: str, source_ids: list[str]) -> dict[str, int]:
    """What each session or call was charged so far (minor units), by its unique id."""
    from billing.models import ChargingSession

    if not source_ids:
        return {}
    rows = session.execute(select(ChargingSession.source_id, ChargingSession.charged).where(
        ChargingSession.source == source, ChargingSession.source_id.in_(source_ids)))
    return {sid: int(charged) for sid, charged in rows}
