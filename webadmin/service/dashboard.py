"""The dashboard's figures, read in one transaction with a fixed number of queries.

Everything here is a count or a sum the database does (no rows fetched to
Python), so the dashboard costs the same with ten subscribers or a million.
A reseller-scoped caller sees its own subscribers' sessions, traffic and
money only; pools and the billing loop are the operator's and shown only to
callers that may read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from billing.models import AccountStatus, BillingAccount, EntryKind, LedgerEntry
from billing.usage import UsageDeltaRow
from core.db.models import Subscriber
from pools import manage as pools
from webadmin.roles import Caller

HOURS = 24
REVENUE_KINDS = (EntryKind.CHARGE.value, EntryKind.FEE.value, EntryKind.REFUND.value)


@dataclass(frozen=True)
class Dashboard:
    online: int
    currency: str
    revenue_today: int  # charges and fees net of refunds, minor units, positive
    revenue_month: int
    payments_today: int
    payments_month: int
    blocked: int  # accounts billing blocked for no money
    hours: list[datetime]  # the start of each of the last 24 hours (UTC)
    online_per_hour: list[int]  # sessions open at the end of each hour
    octets_per_hour: list[int]  # octets (in + out) accounted in each hour
    pools: list[pools.PoolUsage] = field(default_factory=list)
    pending_usage: int | None = None  # unrated usage rows (billing.read only)


def _in_scope(caller: Caller, subscriber_id: Any) -> Any:
    """A condition limiting a subscriber id column to the caller's reseller (or True)."""
    if not caller.scoped:
        return None
    return subscriber_id.in_(select(Subscriber.id)
                             .where(Subscriber.reseller_id == caller.reseller_id))


def _where(q: Any, cond: Any) -> Any:
    return q if cond is None else q.where(cond)


def hour_starts(now: datetime) -> list[datetime]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def local_midnight(now: datetime, tz: tzinfo, month: bool = False) -> datetime:
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if month:
        start = start.replace(day=1)
    return start.astimezone(now.tzinfo)


def thd_money(session: Session, caller: Caller, since: datetime, until: datetime,
              currency: str) -> tuple[int, int]:
    """(revenue, payments) of one currency between two instants, in the caller's scope."""
    revenue = func.sum(case((LedgerEntry.kind.in_(REVENUE_KINDS), LedgerEntry.amount), else_=0))
    paid = func.sum(case((LedgerEntry.kind == EntryKind.PAYMENT.value, LedgerEntry.amount),
                         else_=0))
    q = (select(revenue, paid).join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
         .where(LedgerEntry.created_at >= since, LedgerEntry.created_at < until,
                BillingAccount.currency == currency))
    q = _where(q, _in_scope(caller, BillingAccount.subscriber_id))
    row = session.execute(q).one()
    return -int(row[0] or 0), int(row[1] or 0)


def thd_dashboard(session: Session, caller: Caller, currency: str, tz: tzinfo,
                  now: datetime) -> Dashboard:
    caller.require("dashboard.read")
    scope_sessions = _in_scope(caller, AcctSession.subscriber_id)
    online = session.scalar(_where(select(func.count()).select_from(AcctSession)
                                   .where(AcctSession.stopped_at.is_(None)), scope_sessions))
    revenue_today, paid_today = thd_money(session, caller, local_midnight(now, tz), now,
                                          currency)
    revenue_month, paid_month = thd_money(session, caller, local_midnight(now, tz, True), now,
                                          currency)
    blocked_q = select(func.count()).select_from(BillingAccount).where(
        BillingAccount.status == AccountStatus.BLOCKED.value)
    blocked = session.scalar(_where(blocked_q, _in_scope(caller, BillingAccount.subscriber_id)))
    hours = hour_starts(now)
    ends = [h + timedelta(hours=1) for h in hours]
    window = hours[0]
    open_at = [func.sum(case((and_(AcctSession.started_at < e,
                                   or_(AcctSession.stopped_at.is_(None),
                                       AcctSession.stopped_at >= e)), 1), else_=0))
               for e in ends]
    q = select(*open_at).where(or_(AcctSession.stopped_at.is_(None),
                                   AcctSession.stopped_at >= window))
    online_row = session.execute(_where(q, scope_sessions)).one()
    octets = UsageDeltaRow.octets_in + UsageDeltaRow.octets_out
    per_hour = [func.sum(case((and_(UsageDeltaRow.created_at >= h,
                                    UsageDeltaRow.created_at < e), octets), else_=0))
                for h, e in zip(hours, ends, strict=True)]
    q = select(*per_hour).where(UsageDeltaRow.created_at >= window)
    traffic_row = session.execute(_where(q, _in_scope(caller, UsageDeltaRow.subscriber_id))).one()
    pool_rows = pools.thd_list_pools(session, 90) if caller.may("pool.read") else []
    pending = None
    if caller.may("billing.read"):
        pending = int(session.scalar(select(func.count()).select_from(UsageDeltaRow)
                                     .where(UsageDeltaRow.rated.is_(False))) or 0)
    return Dashboard(online=int(online or 0), currency=currency, revenue_today=revenue_today,
                     revenue_month=revenue_month, payments_today=paid_today,
                     payments_month=paid_month, blocked=int(blocked or 0), hours=hours,
                     online_per_hour=[int(v or 0) for v in online_row],
                     octets_per_hour=[int(v or 0) for v in traffic_row], pools=pool_rows,
                     pending_usage=pending)


# -- one subscriber's page ---------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """An address, prefix or number a subscriber holds (static or leased) in a pool."""

    pool: str
    value: str
    state: str


@dataclass(frozen=True)
class SubscriberOverview:
    info: Any  # aaa.admin.subscribers.SubscriberInfo
    account: Any | None  # billing.accounts.AccountView (account.read)
    held: list[Held]
    live: list[Any]  # accounting.queries.SessionInfo, open ones (session.read)
    sessions: list[Any]  # recent, open or closed
    calls: list[Any]  # recent calls (call.read)
    cost: dict[str, int]  # charged per session/call unique id
    ledger: list[Any]  # billing.ledger.Entry, newest first (account.read)
    payments: list[Any]  # payments, refunds, adjustments (payment.read)


def thd_subscriber_overview(session: Session, caller: Caller, login: str, currency: str,
                            recent: int = 10, ledger_rows: int = 20) -> SubscriberOverview:
    """Everything the subscriber page shows, each part only when the caller may read it."""
    from accounting.queries import CallFilter, SessionFilter
    from billing.overview import thd_charged
    from pools.models import Pool, PoolItem
    from webadmin.service import money, subscribers, usage

    info = subscribers.thd_get(session, caller, login)
    account = ledger = None
    if caller.may("account.read"):
        account, ledger = money.thd_ledger(session, caller, login, currency, ledger_rows)
    held = [Held(r[0], r[1], str(getattr(r[2], "value", r[2]))) for r in session.execute(
        select(Pool.name, PoolItem.value, PoolItem.state)
        .join(Pool, Pool.id == PoolItem.pool_id).where(PoolItem.holder == login)
        .order_by(Pool.name, PoolItem.value).limit(50))]
    live: list[Any] = []
    recent_sessions: list[Any] = []
    calls: list[Any] = []
    if caller.may("session.read"):
        live = usage.thd_list_sessions(session, caller, SessionFilter(
            online=True, subscriber=login, limit=50))
        recent_sessions = usage.thd_list_sessions(session, caller, SessionFilter(
            subscriber=login, limit=recent))
    if caller.may("call.read"):
        calls = usage.thd_list_calls(session, caller, CallFilter(subscriber=login, limit=recent))
    cost = {}
    if caller.may("account.read"):
        cost.update(thd_charged(session, "session", [s.unique_id for s in recent_sessions]))
        cost.update(thd_charged(session, "call", [c.unique_id for c in calls]))
    payments = money.thd_list_payments(session, caller, login=login, limit=recent) \
        if caller.may("payment.read") else []
    return SubscriberOverview(info, account, held, live, recent_sessions, calls, cost,
                              ledger or [], payments)


# -- the accounts list -----------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    login: str
    plan: str | None
    currency: str
    balance: int
    credit_limit: int | None  # None: the plan's
    status: str
    status_reason: str


def thd_list_accounts(session: Session, caller: Caller, status: str | None = None,
                      below: int | None = None, limit: int = 50,
                      offset: int = 0) -> list[AccountRow]:
    """Billing accounts by login (one query): filter by money status or balance below."""
    from core.db.models import Plan

    caller.require("account.read")
    if limit < 0 or offset < 0:
        from core.errors import InvalidInput

        raise InvalidInput("limit and offset must be 0 or greater")
    q = (select(Subscriber.login, Plan.name, BillingAccount.currency, BillingAccount.balance,
                BillingAccount.credit_limit, BillingAccount.status,
                BillingAccount.status_reason)
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
         .outerjoin(Plan, Plan.id == Subscriber.plan_id))
    if caller.scoped:
        q = q.where(Subscriber.reseller_id == caller.reseller_id)
    if status:
        q = q.where(BillingAccount.status == status)
    if below is not None:
        q = q.where(BillingAccount.balance < below)
    q = q.order_by(Subscriber.login).offset(offset).limit(limit)
    return [AccountRow(r[0], r[1], r[2], int(r[3]), None if r[4] is None else int(r[4]), r[5],
                       r[6] or "") for r in session.execute(q)]
