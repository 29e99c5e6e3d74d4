"""Recurring fees: monthly and daily, charged in advance at the start of each period.

Periods are calendar months and days in the tariff's time zone. Each fee has
the idempotency key ``fee:<account>:<M|D><period>``, so a pass repeated
after a crash, or two passes at once, charge a period once. ``next_fee_at``
on the account says when the next period starts, so a pass reads only the
accounts that are due (an index scan), and periods missed while radbill was
down are caught up (at most :data:`MAX_CATCH_UP` per pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing.accounts import ensure_account, settle_status
from billing.ledger import post
from billing.models import BillingAccount, EntryKind, TariffRow
from billing.money import micro_to_major, round_to_minor
from billing.tariff_store import thd_load_tariffs
from billing.tariffs import Tariff
from core.db.base import utcnow
from core.db.models import Subscriber

MAX_CATCH_UP = 62
BATCH = 1000


@dataclass(frozen=True)
class FeeResult:
    accounts: int
    entries: int
    charged: int
    blocked: tuple[int, ...]


def _month_start(dt: datetime) -> datetime:
    return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(dt: datetime) -> datetime:
    start = _month_start(dt)
    return (start + timedelta(days=32)).replace(day=1)


def period_start(tariff: Tariff, when: datetime) -> datetime:
    """The start of the fee period containing ``when`` (day if a daily fee, else month)."""
    local = when.astimezone(tariff.zone)
    day = datetime.combine(local.date(), time(0), tzinfo=tariff.zone)
    return day if tariff.daily_fee else _month_start(day)


def next_period(tariff: Tariff, start_local: datetime) -> datetime:
    if tariff.daily_fee:
        nxt = start_local.date() + timedelta(days=1)
        return datetime.combine(nxt, time(0), tzinfo=tariff.zone)
    return _next_month(start_local)


def thd_enroll_fee_accounts(session: Session, currency: str, now: datetime | None = None) -> int:
    """Accounts for subscribers on fee plans who have none yet; due now if never charged."""
    now = now or utcnow()
    fee_plans = select(TariffRow.plan_id).where(
        or_(TariffRow.monthly_fee > 0, TariffRow.daily_fee > 0))
    subs = session.scalars(
        select(Subscriber.id).outerjoin(BillingAccount,
                                        BillingAccount.subscriber_id == Subscriber.id)
        .where(Subscriber.plan_id.in_(fee_plans),
               or_(BillingAccount.id.is_(None), BillingAccount.next_fee_at.is_(None)))
        .limit(BATCH)).all()
    for sid in subs:
        account = ensure_account(session, sid, currency)
        if account.next_fee_at is None:
            account.next_fee_at = now
    return len(subs)


def thd_charge_fees(session: Session, currency: str, now: datetime | None = None) -> FeeResult:
    """Charge every fee period that has begun, for up to BATCH due accounts."""
    now = now or utcnow()
    thd_enroll_fee_accounts(session, currency, now)
    due = session.execute(
        select(BillingAccount.id, Subscriber.plan_id)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .where(BillingAccount.next_fee_at.is_not(None), BillingAccount.next_fee_at <= now)
        .order_by(BillingAccount.id).limit(BATCH)).all()
    tariffs = thd_load_tariffs(session, {p for _, p in due if p})
    entries = charged = 0
    blocked: list[int] = []
    for account_id, plan_id in due:
        account = session.scalars(select(BillingAccount).where(BillingAccount.id == account_id)
                                  .with_for_update()
                                  .execution_options(populate_existing=True)).one()
        tariff = tariffs.get(plan_id) if plan_id else None
        if tariff is None or not (tariff.monthly_fee or tariff.daily_fee):
            account.next_fee_at = None
            continue
        assert account.next_fee_at is not None
        start = period_start(tariff, account.next_fee_at)
        for _ in range(MAX_CATCH_UP):
            if start > now:
                break
            for kind, price, tag, label in (
                    ("M", tariff.monthly_fee, start.strftime("%Y-%m"), "monthly fee"),
                    ("D", tariff.daily_fee, start.strftime("%Y-%m-%d"), "daily fee")):
                amount = round_to_minor(micro_to_major(price), account.currency)
                if amount <= 0:
                    continue
                posted = post(session, account, EntryKind.FEE, amount,
                              f"fee:{account.id}:{kind}{tag}",
                              description=f"{label} {tag} ({tariff.plan_name})", now=now)
                if posted.created:
                    entries += 1
                    charged += amount
            start = next_period(tariff, start)
        account.next_fee_at = start
        if settle_status(session, account, tariff, "fee charged", now) == "blocked":
            blocked.append(account.id)
    return FeeResult(accounts=len(due), entries=entries, charged=charged,
                     blocked=tuple(blocked))
