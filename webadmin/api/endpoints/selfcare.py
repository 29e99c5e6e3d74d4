"""Self-care (role ``subscriber``): own account, what is left, usage, payments, password.

Money written here (a card activation) is idempotent like the operator's: with
an Idempotency-Key the first answer is replayed, and a card credits only once
anyway. A document of another subscriber answers 404 like a missing one.

A subscriber caller exists only through ``POST /api/v1/selfcare/login`` (a
``selfcare-frontend`` token logging a subscriber in); every endpoint here acts
on that subscriber, never on a login from the request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from aaa.admin.passwords import hash_credentials
from billing.money import format_amount
from core.db.base import utcnow
from core.errors import InvalidInput
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page, Query, Raw
from webadmin.selfcare.backend import SELF_PASSWORD_MIN
from webadmin.selfcare.passwords import check_password
from webadmin.service import selfcare as svc


class Quota(m.Out):
    period: str
    seconds_included: int
    seconds_left: int
    octets_included: int
    octets_left: int
    after: str


class MyAccount(m.Out):
    login: str
    status: str
    money_status: str
    plan: str | None
    currency: str
    balance: m.Amount
    reserved: m.Amount = Field(description="held for live sessions")
    credit_limit: m.Amount
    available: m.Amount = Field(description="money left to spend")
    spent_last_week: m.Amount
    runs_out_at: datetime | None = Field(description="at last week's spend rate")
    quota: Quota | None = Field(description="time and bytes left of the plan's allowance")
    prices: list[dict[str, str]]


class Usage(m.Out):
    id: int
    started_at: datetime
    stopped_at: datetime | None
    state: str
    seconds: int
    octets_in: int
    octets_out: int
    cost: m.Amount | None
    where: str


class MyEntry(m.Out):
    id: int
    created_at: datetime
    kind: str
    amount: m.Amount
    description: str
    reference: str | None


class Day(m.Out):
    day: str
    seconds: int
    octets_in: int
    octets_out: int


class TrafficQuery(Query):
    days: int = Field(30, ge=1, le=366)


class OwnPassword(Body):
    old_password: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=SELF_PASSWORD_MIN, max_length=256)


def account_dict(me: svc.Me) -> dict[str, Any]:
    c = me.currency
    return {"login": me.login, "status": me.status, "money_status": me.money_status,
            "plan": me.plan, "currency": c, "balance": format_amount(me.balance, c),
            "reserved": format_amount(me.reserved, c),
            "credit_limit": format_amount(me.credit_limit, c),
            "available": format_amount(me.available, c),
            "spent_last_week": format_amount(me.spent_last_week, c),
            "runs_out_at": me.runs_out_at,
            "quota": None if me.quota is None else vars(me.quota).copy(),
            "prices": [{"what": w, "price": p} for w, p in me.prices]}


def _usage(rows: list[svc.UsageRow], currency: str) -> list[dict[str, Any]]:
    return [{**vars(r), "cost": None if r.cost is None else format_amount(r.cost, currency)}
            for r in rows]


@API.endpoint("GET", "/me/account", "self.read",
              "own balance, held money, credit limit, plan, what is left and when the money "
              "runs out", response=MyAccount, item="account", tag="selfcare")
async def my_account(ctx: Any) -> Any:
    return account_dict(await ctx.run(svc.thd_me, ctx.currency))


@API.endpoint("GET", "/me/sessions", "self.read", "own sessions with traffic and cost",
              query=Page, paged=True, response=Usage, item="session", tag="selfcare")
async def my_sessions(ctx: Any, query: Page) -> Any:
    return _usage(await ctx.run(svc.thd_sessions, query.offset, query.limit + 1), ctx.currency)


@API.endpoint("GET", "/me/calls", "self.read", "own calls with duration and cost",
              query=Page, paged=True, response=Usage, item="call", tag="selfcare")
async def my_calls(ctx: Any, query: Page) -> Any:
    return _usage(await ctx.run(svc.thd_calls, query.offset, query.limit + 1), ctx.currency)


async def _ledger(ctx: Any, query: Page, payments_only: bool) -> Any:
    rows = await ctx.run(svc.thd_ledger, ctx.currency, query.offset, query.limit + 1,
                         payments_only)
    return [{**vars(r), "amount": format_amount(r.amount, ctx.currency)} for r in rows]


@API.endpoint("GET", "/me/ledger", "self.read", "own ledger, newest first", query=Page,
              paged=True, response=MyEntry, item="entry", tag="selfcare")
async def my_ledger(ctx: Any, query: Page) -> Any:
    return await _ledger(ctx, query, False)


@API.endpoint("GET", "/me/payments", "self.read", "own payments and refunds, newest first",
              query=Page, paged=True, response=MyEntry, item="payment", tag="selfcare")
async def my_payments(ctx: Any, query: Page) -> Any:
    return await _ledger(ctx, query, True)


@API.endpoint("GET", "/me/traffic", "self.read", "own traffic per day (pages' time zone)",
              query=TrafficQuery, response=Day, item="day", tag="selfcare")
async def my_traffic(ctx: Any, query: TrafficQuery) -> Any:
    now = utcnow()
    return await ctx.run(svc.thd_traffic, now - timedelta(days=query.days), now,
                         ZoneInfo(ctx.config.pages.time_zone))


@API.endpoint("PUT", "/me/password", "self.write",
              "change own password (the current one is checked)", body=OwnPassword,
              response=m.Ok, item="password", tag="selfcare")
async def my_password(ctx: Any, body: OwnPassword) -> Any:
    api, login = ctx.api, ctx.caller.subscriber or ""
    api.throttle.check("subscriber", ctx.address, login)
    found = await ctx.run(svc.thd_own_secrets)
    if not await ctx.in_thread(check_password, found, body.old_password):
        api.throttle.failed("subscriber", ctx.address, login)
        raise InvalidInput("the current password is wrong", field="old_password")
    creds = await ctx.in_thread(hash_credentials, body.password)
    await ctx.run(svc.thd_change_password, creds)
    return {"ok": True}


class MyCard(Body):
    serial: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=64)


class MyActivation(m.Out):
    serial: str
    credited: m.Amount
    currency: str
    balance: m.Amount
    status: str
    unblocked: bool


class MyDocument(m.Out):
    id: int
    kind: str
    title: str
    invoice: str | None
    pdf: bool
    created_at: datetime


class MyFileQuery(Query):
    format: Literal["html", "pdf"] = "html"


def _activation(result: Any) -> Any:
    result.raise_if_refused()
    acct = result.payment.account
    c = acct.currency
    return {"serial": result.serial, "credited": format_amount(result.payment.entry.amount, c),
            "currency": c, "balance": format_amount(acct.balance, c), "status": acct.status,
            "unblocked": result.payment.unblocked}


@API.endpoint("POST", "/me/cards/activate", "self.write",
              "activate a prepaid card on own account (credits once; wrong PINs lock out)",
              body=MyCard, response=MyActivation, idempotent=True, item="card_activation",
              tag="selfcare")
async def my_card_activate(ctx: Any, body: MyCard) -> Any:
    policy = ctx.api.card_policy
    if ctx.idempotency_key is not None:
        from webadmin.api.idempotent import once_refusable

        return await once_refusable(ctx, body, _activation, svc.thd_activate_card,
                                    body.serial, body.pin, ctx.currency, policy)
    return _activation(await ctx.run(svc.thd_activate_card, body.serial, body.pin,
                                     ctx.currency, policy))


def document_dict(d: Any) -> dict[str, Any]:
    return {"id": d.id, "kind": d.kind, "title": d.title, "invoice": d.invoice_number,
            "pdf": bool(d.pdf_path), "created_at": d.created_at}


@API.endpoint("GET", "/me/documents", "self.read", "own statements and invoices, newest first",
              query=Page, paged=True, response=MyDocument, item="document", tag="selfcare")
async def my_documents(ctx: Any, query: Page) -> Any:
    rows = await ctx.run(svc.thd_my_documents, query.offset + query.limit + 1)
    return [document_dict(d) for d in rows[query.offset:]]


@API.endpoint("GET", "/me/documents/{id}/file", "self.read",
              "an own document's file (html or pdf), verified against its hash",
              query=MyFileQuery, raw=True, tag="selfcare")
async def my_document_file(ctx: Any, id: str, query: MyFileQuery) -> Any:
    from billing.documents import DocumentRenderer

    if not id.isdigit() or len(id) > 18:
        raise InvalidInput(f"id {id!r} is not a number", field="id")
    d = await ctx.run(svc.thd_my_document_file, int(id))
    if query.format == "pdf" and not d.pdf_path:
        raise InvalidInput(f"document {d.id} has no PDF", field="format")
    content = await ctx.in_thread(DocumentRenderer(ctx.config).read, d, query.format)
    ctype = "application/pdf" if query.format == "pdf" else "text/html; charset=utf-8"
    return Raw(content, ctype, f"document-{d.id}.{query.format}")
