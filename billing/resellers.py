"""Resellers' prepaid balances with the operator, drawn by their subscribers' payments.

A reseller (``core.db.models.Reseller``, from the access work) owns
subscribers, plans and card batches. It prepays the operator
(``radbill reseller topup``); each payment booked for one of its subscribers
(by hand, import, gateway or card) draws the plan's wholesale share
(``radbill reseller wholesale PLAN PERCENT``, 100 when unset) from that
balance, rounded by the one rule, in the payment's transaction and keyed on
the payment's own idempotency key (``rs:<key>``), so a replay never draws
twice. When balance + credit limit cannot cover the draw the payment is
refused (:class:`ResellerFundsExhausted`) and nothing of it is booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.errors import BillingError
from billing.money import minor_to_major, round_to_minor
from billing.reseller_models import PlanWholesale, ResellerAccount, ResellerEntry
from core.db.base import utcnow
from core.db.models import Plan, Reseller, Subscriber
from core.errors import InvalidInput, NotFound


class ResellerFundsExhausted(BillingError):
    """The reseller's balance and limit cannot cover the wholesale share of a payment."""


@dataclass(frozen=True)
class ResellerBalance:
    name: str
    currency: str
    balance: int
    credit_limit: int
    available: int
    entries: int


def _reseller(session: Session, name: str) -> int:
    rid = session.scalar(select(Reseller.id).where(Reseller.name == name))
    if rid is None:
        raise NotFound(f"reseller {name!r} not found")
    return int(rid)


def _account(session: Session, reseller_id: int, currency: str) -> ResellerAccount:
    q = select(ResellerAccount).where(ResellerAccount.reseller_id == reseller_id) \
        .with_for_update().execution_options(populate_existing=True)
    acct = session.scalars(q).one_or_none()
    if acct is None:
        try:
            with session.begin_nested():
                session.add(ResellerAccount(reseller_id=reseller_id, currency=currency,
                                            balance=0, credit_limit=0))
        except IntegrityError:
            pass
        acct = session.scalars(q).one()
    if acct.currency != currency:
        raise BillingError(f"reseller account is kept in {acct.currency}, not {currency}")
    return acct


def _post(session: Session, acct: ResellerAccount, kind: str, amount: int, key: str,
          reference: str | None, description: str, now: datetime) -> bool:
    if session.scalar(select(ResellerEntry.id).where(ResellerEntry.idempotency_key == key)):
        return False
    session.add(ResellerEntry(reseller_id=acct.reseller_id, kind=kind, amount=amount,
                              idempotency_key=key, reference=reference,
                              description=description[:255], created_at=now))
    acct.balance += amount
    session.flush()
    return True


def check_percent(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"wholesale percent {text!r} is not a number like 80") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise InvalidInput("wholesale percent must be 0..100")
    return str(value)


def thd_set_wholesale(session: Session, plan: str, percent: str | None) -> None:
    plan_id = session.scalar(select(Plan.id).where(Plan.name == plan))
    if plan_id is None:
        raise NotFound(f"plan {plan!r} not found")
    row = session.get(PlanWholesale, plan_id)
    if percent is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(PlanWholesale(plan_id=plan_id, percent=check_percent(percent)))
    else:
        row.percent = check_percent(percent)


def thd_topup(session: Session, name: str, amount: int, currency: str, reference: str,
              now: datetime | None = None) -> tuple[bool, ResellerBalance]:
    """The reseller prepaid the operator ``amount`` (idempotent by reference)."""
    if amount == 0:
        raise InvalidInput("amount must not be 0")
    acct = _account(session, _reseller(session, name), currency)
    created = _post(session, acct, "topup" if amount > 0 else "adjustment", amount,
                    f"rs-topup:{reference}", reference, f"top-up {reference}", now or utcnow())
    return created, thd_reseller_balance(session, name, currency)


def thd_set_limit(session: Session, name: str, limit: int, currency: str) -> ResellerBalance:
    if limit < 0:
        raise InvalidInput("credit limit must not be negative")
    acct = _account(session, _reseller(session, name), currency)
    acct.credit_limit = limit
    session.flush()
    return thd_reseller_balance(session, name, currency)


def thd_reseller_balance(session: Session, name: str, currency: str) -> ResellerBalance:
    rid = _reseller(session, name)
    acct = session.get(ResellerAccount, rid)
    n = session.scalar(select(func.count()).select_from(ResellerEntry)
                       .where(ResellerEntry.reseller_id == rid)) or 0
    bal, lim = (acct.balance, acct.credit_limit) if acct is not None else (0, 0)
    return ResellerBalance(name=name, currency=acct.currency if acct else currency,
                           balance=bal, credit_limit=lim, available=bal + lim, entries=int(n))


def draw_for_payment(session: Session, subscriber_id: int, amount: int, currency: str,
                     key: str, login: str, now: datetime) -> int:
    """Draw the wholesale share of a subscriber payment from its reseller; 0 if none."""
    row = session.execute(select(Subscriber.reseller_id, Subscriber.plan_id)
                          .where(Subscriber.id == subscriber_id)).one()
    reseller_id, plan_id = row
    if reseller_id is None:
        return 0
    pct = Decimal(100)
    if plan_id is not None:
        w = session.get(PlanWholesale, plan_id)
        if w is not None:
            pct = Decimal(w.percent)
    draw = round_to_minor(minor_to_major(amount, currency) * pct / 100, currency)
    if draw <= 0:
        return 0
    acct = _account(session, reseller_id, currency)
    if session.scalar(select(ResellerEntry.id).where(
            ResellerEntry.idempotency_key == f"rs:{key}")):
        return 0
    if acct.balance + acct.credit_limit < draw:
        raise ResellerFundsExhausted(
            f"the reseller's balance cannot cover {login}'s payment (needs {draw} minor "
            f"units, has {acct.balance + acct.credit_limit}): top the reseller up first")
    _post(session, acct, "draw", -draw, f"rs:{key}", None, f"{login} payment {key}", now)
    return draw


def thd_reseller_check(session: Session) -> list[tuple[int, int, int]]:
    """(reseller, cached balance, SUM(entries)) for every reseller whose two differ."""
    sums = dict(session.execute(select(ResellerEntry.reseller_id, func.sum(ResellerEntry.amount))
                                .group_by(ResellerEntry.reseller_id)).all())
    return [(a.reseller_id, a.balance, int(sums.get(a.reseller_id, 0)))
            for a in session.scalars(select(ResellerAccount))
            if a.balance != int(sums.get(a.reseller_id, 0))]
