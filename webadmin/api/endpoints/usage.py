"""Sessions, calls, Disconnect-Requests, rating dry runs and the billing loop's state.

A disconnect goes the CLI's way (``radbill session disconnect``): the service
layer picks and audits the live sessions, ``aaa.kick.disconnect_sessions``
sends the Disconnect-Requests through an ``aaa.coa.CoaDisconnector`` and closes
the records the NAS confirms gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from accounting.queries import CallFilter, SessionFilter
from core.errors import InvalidInput
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page, Query
from webadmin.api.params import parse_time
from webadmin.service import money, usage


class Session(m.Out):
    id: int
    unique_id: str
    login: str
    subscriber: str | None
    nas: str | None
    state: str
    started_at: datetime
    stopped_at: datetime | None
    session_time: int
    input_octets: int
    output_octets: int
    framed_ip: str | None


class Call(m.Out):
    id: int
    unique_id: str
    login: str
    subscriber: str | None
    caller: str | None
    callee: str | None
    state: str
    started_at: datetime
    stopped_at: datetime | None
    duration: int


class Disconnect(m.Out):
    session: str
    outcome: str
    error_cause: int | None
    detail: str | None


class SessionQuery(Page):
    online: bool = False
    subscriber: str | None = None
    nas: str | None = None
    since: str | None = Field(None, description="ISO date/time, or an age: 30m, 2h, 7d")


class CallQuery(Page):
    subscriber: str | None = None
    nas: str | None = None
    since: str | None = Field(None, description="ISO date/time, or an age: 30m, 2h, 7d")
    caller: str | None = None
    callee: str | None = Field(None, description="prefix of the called number")


class DisconnectBody(Body):
    id: str | None = Field(None, description="a session's id or unique id")
    subscriber: str | None = Field(None, description="every live session of this login")


class RateQuery(Query):
    subscriber: str | None = None
    plan: str | None = None
    duration: int = Field(0, ge=0, le=10**9)
    octets_in: int = Field(0, ge=0, le=10**15)
    octets_out: int = Field(0, ge=0, le=10**15)
    called: str | None = None
    at: str | None = Field(None, description="start time, ISO 8601 (default now)")


@API.endpoint("GET", "/sessions", "session.read", "accounting sessions, newest first",
              query=SessionQuery, paged=True, response=Session, item="session")
async def list_sessions(ctx: Any, query: SessionQuery) -> Any:
    return await ctx.run(usage.thd_list_sessions, SessionFilter(
        online=query.online, subscriber=query.subscriber, nas=query.nas,
        since=parse_time(query.since, "since"), limit=query.limit + 1, offset=query.offset))


@API.endpoint("GET", "/sessions/{id}", "session.read", "one session by id or unique id",
              response=Session, item="session")
async def show_session(ctx: Any, id: str) -> Any:
    return await ctx.run(usage.thd_show_session, id)


@API.endpoint("GET", "/calls", "call.read", "call records, newest first", query=CallQuery,
              paged=True, response=Call, item="call")
async def list_calls(ctx: Any, query: CallQuery) -> Any:
    return await ctx.run(usage.thd_list_calls, CallFilter(
        subscriber=query.subscriber, nas=query.nas, since=parse_time(query.since, "since"),
        caller=query.caller, callee=query.callee, limit=query.limit + 1, offset=query.offset))


@API.endpoint("GET", "/calls/{id}", "call.read", "one call by id or unique id",
              response=Call, item="call")
async def show_call(ctx: Any, id: str) -> Any:
    return await ctx.run(usage.thd_show_call, id)


async def send_disconnects(ctx: Any, targets: list[Any]) -> list[dict[str, Any]]:
    if not targets:
        return []
    from aaa.coa import CoaDisconnector
    from aaa.dictionary import load_dictionary
    from aaa.kick import disconnect_sessions

    api = ctx.api
    if api.disconnect is not None:  # tests and wiring may pass their own sender
        results = await api.disconnect(api.dbpool, targets)
    else:
        sender = CoaDisconnector.from_config(api.config, api.dbpool, api.reactor,
                                             load_dictionary())
        try:
            results = await disconnect_sessions(api.dbpool, sender, targets)
        finally:
            sender.close()
    return [r.as_dict() for r in results]


async def disconnect_login(ctx: Any, login: str) -> list[dict[str, Any]]:
    targets = await ctx.run(usage.thd_disconnect_targets, login=login)
    return await send_disconnects(ctx, targets)


@API.endpoint("POST", "/sessions/disconnect", "session.disconnect",
              "send a Disconnect-Request for one live session (id) or all of a subscriber's",
              body=DisconnectBody, response=Disconnect, item="disconnect", tag="sessions")
async def disconnect(ctx: Any, body: DisconnectBody) -> Any:
    if (body.id is None) == (body.subscriber is None):
        raise InvalidInput("give either id or subscriber", field="id")
    if body.subscriber is not None:
        return await disconnect_login(ctx, body.subscriber)
    targets = await ctx.run(usage.thd_disconnect_targets, session_ident=body.id)
    return await send_disconnects(ctx, targets)


@API.endpoint("GET", "/rate", "rating.read",
              "what a session or call would cost (dry run), for a subscriber or a plan",
              query=RateQuery, response=m.Obj, item="rating", tag="rating")
async def rate(ctx: Any, query: RateQuery) -> Any:
    from core.db.base import utcnow

    at = parse_time(query.at, "at") or utcnow()
    return await ctx.run(money.thd_rate, query.subscriber, query.plan, query.duration,
                         query.octets_in, query.octets_out, query.called, at, ctx.currency)


class BillingState(m.Out):
    pending_usage: int
    oldest_pending_at: datetime | None
    blocked_accounts: int


@API.endpoint("GET", "/billing", "billing.read", "the billing loop's state",
              response=BillingState, item="billing", tag="billing")
async def billing_state(ctx: Any) -> Any:
    return await ctx.run(usage.thd_billing_state)


@API.endpoint("POST", "/billing/run", "billing.run",
              "one billing pass now: rate usage, fees, holds, cut-offs", response=m.Obj,
              item="billing_pass", tag="billing")
async def billing_run(ctx: Any) -> Any:
    from aaa.billing_hook import make_billing_loop

    api = ctx.api
    await ctx.run(usage.thd_billing_run_started)
    loop, coa = make_billing_loop(api.config, api.dbpool, api.reactor)
    try:
        result = await loop.run_once()
    finally:
        coa.close()
    return result.as_dict()


class LedgerCheck(m.Out):
    accounts: int
    entries: int
    ok: bool


@API.endpoint("GET", "/ledger/check", "billing.read",
              "every cached balance against the sum of its ledger entries",
              response=LedgerCheck, item="ledger_check", tag="billing")
async def ledger_check(ctx: Any) -> Any:
    r = await ctx.run(money.thd_ledger_check)
    return {"accounts": r.accounts, "entries": r.entries, "ok": not r.mismatches,
            "mismatches": [{"account_id": x.account_id, "subscriber_id": x.subscriber_id,
                            "cached_balance": x.cached, "ledger_sum": x.ledger_sum}
                           for x in r.mismatches]}
