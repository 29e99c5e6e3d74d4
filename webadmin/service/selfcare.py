"""Self-care through the service layer: a subscriber's own account, usage and password.

Every function takes the subscriber from the caller (``caller.subscriber``, set
by a self-care login), never from the request, so a subscriber reaches its own
rows only: another subscriber's document answers exactly like a missing one, and
a card is credited to the caller only. The in-process self-care pages
(``webadmin.selfcare.local``) and the API's ``/api/v1/me/...`` endpoints both call these.
Password checks and hashing
(argon2) run outside the transactions, in a thread of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from aaa.admin.passwords import Credentials
from aaa.admin.subscribers import LoginSecrets, thd_get_subscriber
from aaa.admin.subscribers import thd_login_secrets as _login_secrets
from aaa.admin.subscribers import thd_set_password as _set_password
from accounting.queries import CallFilter, SessionFilter, thd_list_calls, thd_list_sessions
from billing import cards, documents
from billing.accounts import thd_account
from billing.ledger import thd_entries
from billing.money import format_amount, format_price
from billing.overview import thd_charged, thd_overview, thd_usage_per_day
from billing.tariffs import Tariff
from core.db.base import utcnow
from webadmin.errors import Forbidden
from webadmin.roles import Caller
from webadmin.service import audit


@dataclass(frozen=True)
class Quota:
    period: str
    seconds_included: int
    seconds_left: int
    octets_included: int
    octets_left: int
    after: str


@dataclass(frozen=True)
class Me:
    login: str
    status: str  # subscriber status: active, blocked, disabled
    money_status: str  # account: active, blocked (out of money)
    plan: str | None
    currency: str
    balance: int
    reserved: int
    credit_limit: int
    available: int
    spent_last_week: int
    runs_out_at: datetime | None
    quota: Quota | None
    prices: tuple[tuple[str, str], ...]  # (what, price text) of the plan


@dataclass(frozen=True)
class UsageRow:
    id: int
    started_at: datetime
    stopped_at: datetime | None
    state: str
    seconds: int
    octets_in: int
    octets_out: int
    cost: int | None
    where: str  # sessions: address; calls: the dialled number


@dataclass(frozen=True)
class LedgerRow:
    id: int
    created_at: datetime
    kind: str
    amount: int
    description: str
    reference: str | None


@dataclass(frozen=True)
class DayRow:
    day: str
    seconds: int
    octets_in: int
    octets_out: int


def own_login(caller: Caller, permission: str = "self.read") -> str:
    caller.require(permission)
    if caller.role != "subscriber" or not caller.subscriber:
        raise Forbidden(f"{caller.role} is not a self-care subscriber")
    return caller.subscriber


def subscriber_caller(login: str, address: str = "") -> Caller:
    """The caller a subscriber logged in to the in-process self-care pages is."""
    return Caller(actor=f"subscriber:{login}", role="subscriber", subscriber=login,
                  address=address)


def thd_login_secrets(session: Session, caller: Caller, login: str) -> LoginSecrets | None:
    """What checking a subscriber's password needs (a self-care front end logging it in)."""
    caller.require("selfcare.login")
    return _login_secrets(session, login)


def thd_own_secrets(session: Session, caller: Caller) -> LoginSecrets | None:
    """The caller's own secrets, to check its current password before a change."""
    return _login_secrets(session, own_login(caller, "self.write"))


def price_lines(t: Tariff | None) -> tuple[tuple[str, str], ...]:
    """The plan's prices as (what, amount) pairs; the page translates the 'what'."""
    if t is None:
        return ()
    out: list[tuple[str, str]] = []
    if t.time_price:
        unit = "per second" if t.time_unit == 1 else "per minute"
        out.append((unit, format_price(t.time_price)))
    if t.price_per_mb_in:
        out.append(("per MB uploaded", format_price(t.price_per_mb_in)))
    if t.price_per_mb_out:
        out.append(("per MB downloaded", format_price(t.price_per_mb_out)))
    if t.monthly_fee:
        out.append(("monthly fee", format_price(t.monthly_fee)))
    if t.daily_fee:
        out.append(("daily fee", format_price(t.daily_fee)))
    return tuple(out)


def thd_me(session: Session, caller: Caller, currency: str) -> Me:
    """Balance, held money, credit limit, plan, what is left, and when money runs out."""
    login = own_login(caller)
    sub = thd_get_subscriber(session, login)
    ov = thd_overview(session, login, currency, utcnow())
    a = ov.account
    q = ov.quota
    return Me(login=sub.login, status=sub.status, money_status=a.status, plan=a.plan,
              currency=a.currency, balance=a.balance, reserved=a.reserved,
              credit_limit=a.credit_limit, available=a.available,
              spent_last_week=ov.spent_last_week, runs_out_at=ov.runs_out_at,
              quota=None if q is None else Quota(q.period, q.seconds_included, q.seconds_left,
                                                 q.octets_included, q.octets_left, q.after),
              prices=price_lines(ov.tariff))


def _session_row(s: Any, cost: dict[str, int]) -> UsageRow:
    return UsageRow(id=s.id, started_at=s.started_at, stopped_at=s.stopped_at, state=s.state,
                    seconds=s.session_time, octets_in=s.input_octets, octets_out=s.output_octets,
                    cost=cost.get(s.unique_id), where=s.framed_ip or "")


def _call_row(c: Any, cost: dict[str, int]) -> UsageRow:
    return UsageRow(id=c.id, started_at=c.started_at, stopped_at=c.stopped_at, state=c.state,
                    seconds=c.duration, octets_in=0, octets_out=0, cost=cost.get(c.unique_id),
                    where=c.callee or "")


def thd_sessions(session: Session, caller: Caller, offset: int, limit: int) -> list[UsageRow]:
    """Own sessions, newest first, with traffic and what each cost so far."""
    login = own_login(caller)
    rows = thd_list_sessions(session, SessionFilter(subscriber=login, limit=limit,
                                                    offset=offset), utcnow())
    cost = thd_charged(session, "session", [r.unique_id for r in rows])
    return [_session_row(r, cost) for r in rows]


def thd_calls(session: Session, caller: Caller, offset: int, limit: int) -> list[UsageRow]:
    login = own_login(caller)
    rows = thd_list_calls(session, CallFilter(subscriber=login, limit=limit, offset=offset))
    cost = thd_charged(session, "call", [r.unique_id for r in rows])
    return [_call_row(r, cost) for r in rows]


def thd_ledger(session: Session, caller: Caller, currency: str, offset: int, limit: int,
               payments_only: bool = False) -> list[LedgerRow]:
    login = own_login(caller)
    account = thd_account(session, login, currency)
    kinds = ["payment", "refund"] if payments_only else None
    entries = thd_entries(session, account.id, limit=offset + limit, kinds=kinds)[offset:]
    return [LedgerRow(e.id, e.created_at, e.kind, e.amount, e.description, e.reference)
            for e in entries]


def thd_traffic(session: Session, caller: Caller, since: datetime, until: datetime,
                tz: tzinfo) -> list[DayRow]:
    login = own_login(caller)
    return [DayRow(r.day, r.seconds, r.octets_in, r.octets_out)
            for r in thd_usage_per_day(session, login, since, until, tz)]


def thd_change_password(session: Session, caller: Caller, credentials: Credentials) -> None:
    """The caller's own new password (its current one was checked by the face), audited."""
    login = own_login(caller, "self.write")
    _set_password(session, login, credentials)
    audit.record(session, caller, "subscriber.passwd", "subscriber", login,
                 {"password": "old"}, {"password": "new", "by": "self-care"})


def thd_activate_card(session: Session, caller: Caller, serial: str, pin: str, currency: str,
                      policy: cards.CardPolicy) -> cards.Activation:
    """Credit a prepaid card to the caller's own account; audited when it was credited.

    A refusal is returned (not raised) so the wrong-PIN count it recorded, per
    subscriber and per the caller's address, commits with the transaction.
    """
    login = own_login(caller, "self.write")
    result = cards.thd_activate(session, serial, pin, login, currency, via="selfcare",
                                address=caller.address or caller.actor, policy=policy)
    if result.ok and result.payment is not None:
        audit.record(session, caller, "card.activate", "card", result.serial, None,
                     {"login": login, "by": "self-care",
                      "credited": format_amount(result.payment.entry.amount, currency)})
    return result


def thd_my_documents(session: Session, caller: Caller, limit: int) -> list[documents.DocumentView]:
    """Own statements and invoices, newest first."""
    return documents.thd_list_documents(session, own_login(caller), limit)


def thd_my_document_file(session: Session, caller: Caller,
                    document_id: int) -> documents.DocumentView:
    """One own document; another subscriber's raises the same NotFound as a missing id."""
    return documents.thd_get_document(session, document_id, login=own_login(caller))
