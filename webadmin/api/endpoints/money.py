"""Accounts, credit limits, the ledger and payments (amounts as decimal strings).

``POST /payments`` is exactly once: it needs an ``Idempotency-Key`` header or a
``reference`` (see ``webadmin.service.idempotency``); the same key again answers
the first result and changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from billing.models import EntryKind
from billing.money import format_amount, parse_amount
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page, Query
from webadmin.api.params import parse_time
from webadmin.service import money


class AccountQuery(Query):
    last: int = Field(10, ge=0, le=1000, description="how many charges and events")


class CreditLimit(Body):
    credit_limit: str = Field(description="an amount like 50.00, or 'plan' for the plan's")


class PaymentAdd(Body):
    login: str
    amount: str = Field(pattern=m.AMOUNT, description="decimal string; an adjustment may be "
                                                        "negative")
    reference: str | None = Field(None, max_length=128,
                                  description="external reference; posting it again changes "
                                              "nothing")
    kind: Literal["payment", "refund", "adjustment"] = "payment"
    description: str = Field("", max_length=255)


class PaymentQuery(Page):
    login: str | None = None
    kind: Literal["payment", "refund", "adjustment"] | None = None
    since: str | None = Field(None, description="ISO date/time, or an age: 30m, 2h, 7d")


@API.endpoint("GET", "/accounts/{login}", "account.read",
              "balance, held money, credit limit, last charges", query=AccountQuery,
              response=m.Account, item="account", tag="accounts")
async def show_account(ctx: Any, login: str, query: AccountQuery) -> Any:
    return await ctx.run(money.thd_account, login, ctx.currency, query.last)


@API.endpoint("PUT", "/accounts/{login}/credit_limit", "account.credit",
              "set an account's credit limit ('plan' = the plan's)", body=CreditLimit,
              response=m.Account, item="account", tag="accounts")
async def set_credit_limit(ctx: Any, login: str, body: CreditLimit) -> Any:
    text = body.credit_limit.strip()
    limit = None if text.lower() == "plan" else parse_amount(text, ctx.currency,
                                                             what="credit_limit")
    acct = await ctx.run(money.thd_set_credit_limit, login, limit, ctx.currency)
    return money.account_dict(acct)


@API.endpoint("GET", "/accounts/{login}/ledger", "account.read",
              "an account's ledger, newest first", query=Page, paged=True, response=m.Entry,
              item="entry", tag="accounts")
async def ledger(ctx: Any, login: str, query: Page) -> Any:
    acct, entries = await ctx.run(money.thd_ledger, login, ctx.currency,
                                  query.offset + query.limit + 1)
    return [money.entry_dict(e, acct.currency) for e in entries[query.offset:]]


@API.endpoint("GET", "/payments", "payment.read",
              "payments, refunds and adjustments, newest first", query=PaymentQuery,
              paged=True, response=m.Payment, item="payment")
async def list_payments(ctx: Any, query: PaymentQuery) -> Any:
    return await ctx.run(money.thd_list_payments, query.login, query.kind,
                         parse_time(query.since, "since"), query.limit + 1, query.offset)


def payment_answer(result: Any, currency: str) -> dict[str, Any]:
    return {"entry_id": result.entry.id, "recorded": result.created,
            "already_recorded": not result.created, "unblocked": result.unblocked,
            "amount": format_amount(result.entry.amount, currency),
            "reference": result.entry.reference, **money.account_dict(result.account)}


@API.endpoint("POST", "/payments", "payment.write",
              "post a payment, refund or adjustment, exactly once per Idempotency-Key or "
              "reference", body=PaymentAdd, response=m.PaymentResult, status=201,
              idempotent=True, item="payment")
async def add_payment(ctx: Any, body: PaymentAdd) -> Any:
    from webadmin.api.idempotent import once

    kind = EntryKind(body.kind)
    amount = parse_amount(body.amount, ctx.currency,
                          allow_negative=kind is EntryKind.ADJUSTMENT, what="amount")

    def answer(result: Any) -> dict[str, Any]:
        return payment_answer(result, ctx.currency)

    return await once(ctx, body, answer, money.thd_add_payment, body.login, amount,
                      ctx.currency, body.reference, body.kind, body.description)
