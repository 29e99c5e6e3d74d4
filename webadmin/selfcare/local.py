"""Self-care in this process: the service functions through the DB pool (``radbill serve``).

Every method works on the handle's login only; nothing here takes a login
from the page. Password checks and hashing run in the reactor's thread pool.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from twisted.internet import defer, threads

from aaa.admin.passwords import hash_credentials
from aaa.admin.subscribers import thd_get_subscriber, thd_login_secrets, thd_set_password
from accounting.queries import CallFilter, SessionFilter, thd_list_calls, thd_list_sessions
from billing.accounts import thd_account
from billing.ledger import thd_entries
from billing.money import format_price
from billing.overview import thd_charged, thd_overview, thd_usage_per_day
from billing.tariffs import Tariff
from core.db.base import utcnow
from core.db.pool import DBPool
from webadmin.selfcare.backend import (
    DayRow,
    Handle,
    LedgerRow,
    Me,
    Quota,
    UsageRow,
    WrongPassword,
)
from webadmin.selfcare.passwords import check_password


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


def _usage_row_session(s: Any, cost: dict[str, int]) -> UsageRow:
    return UsageRow(id=s.id, started_at=s.started_at, stopped_at=s.stopped_at, state=s.state,
                    seconds=s.session_time, octets_in=s.input_octets, octets_out=s.output_octets,
                    cost=cost.get(s.unique_id), where=s.framed_ip or "")


def _usage_row_call(c: Any, cost: dict[str, int]) -> UsageRow:
    return UsageRow(id=c.id, started_at=c.started_at, stopped_at=c.stopped_at, state=c.state,
                    seconds=c.duration, octets_in=0, octets_out=0, cost=cost.get(c.unique_id),
                    where=c.callee or "")


def thd_sessions_with_cost(session: Any, login: str, offset: int, limit: int
                           ) -> list[UsageRow]:
    rows = thd_list_sessions(session, SessionFilter(subscriber=login, limit=limit,
                                                    offset=offset), utcnow())
    cost = thd_charged(session, "session", [r.unique_id for r in rows])
    return [_usage_row_session(r, cost) for r in rows]


def thd_calls_with_cost(session: Any, login: str, offset: int, limit: int) -> list[UsageRow]:
    rows = thd_list_calls(session, CallFilter(subscriber=login, limit=limit, offset=offset))
    cost = thd_charged(session, "call", [r.unique_id for r in rows])
    return [_usage_row_call(r, cost) for r in rows]


def thd_me(session: Any, login: str, currency: str) -> Me:
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


def thd_ledger_rows(session: Any, login: str, currency: str, offset: int, limit: int,
                    payments_only: bool) -> list[LedgerRow]:
    account = thd_account(session, login, currency)
    kinds = ["payment", "refund"] if payments_only else None
    entries = thd_entries(session, account.id, limit=offset + limit, kinds=kinds)[offset:]
    return [LedgerRow(e.id, e.created_at, e.kind, e.amount, e.description, e.reference)
            for e in entries]


class LocalSelfcare:
    def __init__(self, dbpool: DBPool, reactor: Any, currency: str, tz: Any) -> None:
        self.dbpool = dbpool
        self.reactor = reactor
        self.currency = currency
        self.tz = tz

    @defer.inlineCallbacks
    def login(self, login: str, password: str, client: str) -> Generator[Any, Any, Handle | None]:
        found = yield self.dbpool.run(thd_login_secrets, login)
        ok = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                             check_password, found, password)
        return Handle(found.login, secrets.token_urlsafe(16)) if ok else None

    def logout(self, handle: Handle) -> defer.Deferred[None]:
        return defer.succeed(None)

    def me(self, handle: Handle) -> defer.Deferred[Me]:
        return self.dbpool.run(thd_me, handle.login, self.currency)

    def sessions(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[list[UsageRow]]:
        return self.dbpool.run(thd_sessions_with_cost, handle.login, offset, limit)

    def calls(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[list[UsageRow]]:
        return self.dbpool.run(thd_calls_with_cost, handle.login, offset, limit)

    def ledger(self, handle: Handle, offset: int, limit: int,
               payments_only: bool = False) -> defer.Deferred[list[LedgerRow]]:
        return self.dbpool.run(thd_ledger_rows, handle.login, self.currency, offset, limit,
                               payments_only)

    @defer.inlineCallbacks
    def traffic(self, handle: Handle, days: int) -> Generator[Any, Any, list[DayRow]]:
        now = utcnow()
        rows = yield self.dbpool.run(thd_usage_per_day, handle.login,
                                     now - timedelta(days=days), now, self.tz)
        return [DayRow(r.day, r.seconds, r.octets_in, r.octets_out) for r in rows]

    @defer.inlineCallbacks
    def change_password(self, handle: Handle, old: str, new: str) -> Generator[Any, Any, None]:
        found = yield self.dbpool.run(thd_login_secrets, handle.login)
        pool = self.reactor.getThreadPool()
        ok = yield threads.deferToThreadPool(self.reactor, pool, check_password, found, old)
        if not ok:
            raise WrongPassword()
        creds = yield threads.deferToThreadPool(self.reactor, pool, hash_credentials, new)
        yield self.dbpool.run(thd_set_password, handle.login, creds)
