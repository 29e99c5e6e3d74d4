"""Accounts: one per subscriber, with a currency, a credit limit and a money status.

Every function that changes money locks the account row first
(``SELECT ... FOR UPDATE`` on MariaDB; SQLite's single writer with BEGIN
IMMEDIATE does the same), so two sessions of one subscriber, a payment and
the loop are serialised on the account and can never spend the same money
twice. Available money is ``balance + credit_limit - reserved``: prepaid
accounts have a limit of 0, postpaid ones may owe up to their limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.errors import NoAccount
from billing.models import (
    HOLDING_STATES,
    AccountStatus,
    BillingAccount,
    BillingEvent,
    ChargingSession,
)
from billing.tariff_store import thd_load_tariff
from billing.tariffs import Tariff
from core.db.base import utcnow
from core.db.models import Plan, Subscriber

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountView:
    id: int
    subscriber_id: int
    login: str
    plan: str | None
    currency: str
    balance: int
    reserved: int
    credit_limit: int
    available: int
    status: str
    status_reason: str
    status_changed_at: datetime | None


@dataclass(frozen=True)
class SubscriberRef:
    id: int
    login: str
    plan_id: int | None


def find_subscriber(session: Session, login: str) -> SubscriberRef:
    row = session.execute(select(Subscriber.id, Subscriber.login, Subscriber.plan_id)
                          .where(Subscriber.login == login)).one_or_none()
    if row is None:
        raise NoAccount(f"no subscriber with login {login!r}")
    return SubscriberRef(row[0], row[1], row[2])


def lock_account(session: Session, account_id: int) -> BillingAccount:
    account = session.scalars(select(BillingAccount).where(BillingAccount.id == account_id)
                              .with_for_update().execution_options(populate_existing=True)
                              ).one()
    return account


def ensure_account(session: Session, subscriber_id: int, currency: str,
                   lock: bool = True) -> BillingAccount:
    """The subscriber's account, created on first use; locked FOR UPDATE when ``lock``."""
    q = select(BillingAccount).where(BillingAccount.subscriber_id == subscriber_id)
    if lock:
        q = q.with_for_update()
    account = session.scalars(q.execution_options(populate_existing=True)).one_or_none()
    if account is not None:
        return account
    try:
        with session.begin_nested():
            account = BillingAccount(subscriber_id=subscriber_id, currency=currency, balance=0,
                                     status=AccountStatus.ACTIVE.value, status_reason="")
            session.add(account)
    except IntegrityError:
        # Another transaction created it between our SELECT and INSERT: use theirs.
        account = session.scalars(q.execution_options(populate_existing=True)).one()
    return account


def reserved_total(session: Session, account_id: int, exclude_id: int | None = None) -> int:
    q = select(func.coalesce(func.sum(ChargingSession.reserved), 0)).where(
        ChargingSession.account_id == account_id, ChargingSession.state.in_(HOLDING_STATES))
    if exclude_id is not None:
        q = q.where(ChargingSession.id != exclude_id)
    return int(session.scalar(q) or 0)


def credit_limit(account: BillingAccount, tariff: Tariff | None) -> int:
    if account.credit_limit is not None:
        return account.credit_limit
    return tariff.credit_limit if tariff is not None else 0


def charges_usage(tariff: Tariff | None) -> bool:
    return tariff is not None and (tariff.charges_time or tariff.charges_traffic)


def out_of_money(balance: int, limit: int, tariff: Tariff | None,
                 has_voice_rates: bool = False) -> bool:
    """Below the limit; or at it, when the plan charges for usage (nothing left to spend)."""
    money = balance + limit
    if money < 0:
        return True
    return money == 0 and (charges_usage(tariff) or has_voice_rates)


def log_event(session: Session, account_id: int, kind: str, detail: str,
              now: datetime | None = None) -> None:
    """Every step of cut-off and reconnection is a row the operator can read, and a log line."""
    session.add(BillingEvent(account_id=account_id, kind=kind, detail=detail[:255],
                             created_at=now or utcnow()))
    log.info("billing account %d: %s %s", account_id, kind, detail)


def block(session: Session, account: BillingAccount, reason: str,
          now: datetime | None = None) -> bool:
    if account.status == AccountStatus.BLOCKED.value:
        return False
    now = now or utcnow()
    account.status = AccountStatus.BLOCKED.value
    account.status_reason = reason[:255]
    account.status_changed_at = now
    log_event(session, account.id, "blocked", reason, now)
    if reason.startswith("out of money"):
        from billing.notify import enqueue_account

        enqueue_account(session, "cut_off", account.id, {"reason": reason}, now)
    return True


def unblock(session: Session, account: BillingAccount, reason: str,
            now: datetime | None = None) -> bool:
    if account.status != AccountStatus.BLOCKED.value:
        return False
    now = now or utcnow()
    account.status = AccountStatus.ACTIVE.value
    account.status_reason = ""
    account.status_changed_at = now
    log_event(session, account.id, "unblocked", reason, now)
    from billing.cutoff import mark_restore_due

    if mark_restore_due(session, account.id):
        log_event(session, account.id, "restore-due",
                  "live sessions in the captive profile go back to the plan's", now)
    return True


def view(session: Session, account: BillingAccount, tariff: Tariff | None) -> AccountView:
    row = session.execute(select(Subscriber.login, Plan.name)
                          .outerjoin(Plan, Plan.id == Subscriber.plan_id)
                          .where(Subscriber.id == account.subscriber_id)).one()
    reserved = reserved_total(session, account.id)
    limit = credit_limit(account, tariff)
    return AccountView(id=account.id, subscriber_id=account.subscriber_id, login=row[0],
                       plan=row[1], currency=account.currency, balance=account.balance,
                       reserved=reserved, credit_limit=limit,
                       available=account.balance + limit - reserved, status=account.status,
                       status_reason=account.status_reason,
                       status_changed_at=account.status_changed_at)


def thd_account(session: Session, login: str, currency: str) -> AccountView:
    sub = find_subscriber(session, login)
    account = ensure_account(session, sub.id, currency, lock=False)
    tariff = thd_load_tariff(session, sub.plan_id) if sub.plan_id else None
    return view(session, account, tariff)


def thd_set_credit_limit(session: Session, login: str, limit: int | None,
                         currency: str) -> AccountView:
    """Set (or with None, return to the plan's) credit limit; may block or unblock at once."""
    sub = find_subscriber(session, login)
    account = ensure_account(session, sub.id, currency)
    account.credit_limit = limit
    tariff = thd_load_tariff(session, sub.plan_id) if sub.plan_id else None
    log_event(session, account.id, "credit-limit",
              "plan default" if limit is None else str(limit))
    settle_status(session, account, tariff, "credit limit changed")
    session.flush()
    return view(session, account, tariff)


def settle_status(session: Session, account: BillingAccount, tariff: Tariff | None,
                  reason: str, now: datetime | None = None) -> str | None:
    """Block or unblock according to the money now there; returns what changed."""
    limit = credit_limit(account, tariff)
    short = out_of_money(account.balance, limit, tariff)
    if account.status == AccountStatus.BLOCKED.value and not short:
        unblock(session, account, reason, now)
        return "unblocked"
    if account.status == AccountStatus.ACTIVE.value and short and tariff is not None:
        block(session, account, f"out of money ({reason})", now)
        return "blocked"
    return None


@dataclass(frozen=True)
class EventView:
    id: int
    kind: str
    detail: str
    created_at: datetime


def thd_events(session: Session, account_id: int, limit: int = 20) -> list[EventView]:
    rows = session.scalars(select(BillingEvent).where(BillingEvent.account_id == account_id)
                           .order_by(BillingEvent.id.desc()).limit(limit)).all()
    return [EventView(r.id, r.kind, r.detail, r.created_at) for r in rows]
