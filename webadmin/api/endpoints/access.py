"""Logins, the caller, operators, tokens, resellers and the audit log."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from webadmin.api import models as m
from webadmin.api.auth import COOKIE, csrf_token
from webadmin.api.declare import API, Body, Page
from webadmin.errors import Unauthorized
from webadmin.roles import OPERATOR_ROLES, ROLES, TOKEN_ROLES
from webadmin.selfcare.passwords import check_password
from webadmin.service import audit, logins, operators, reseller_money, resellers, selfcare, tokens
from webadmin.service.logins import OperatorSecret

_DUMMY = operators.hash_operator_password("radbill-dummy-operator-password")
WRONG = "wrong login or password"


def _check_operator(secret: OperatorSecret | None, password: str) -> bool:
    """argon2 in a thread; an unknown or disabled login costs the same as a wrong password."""
    if secret is None or not secret.enabled:
        operators.verify_operator_password(_DUMMY, password)
        return False
    return operators.verify_operator_password(secret.password_hash, password)


def identity(caller: Any, csrf: str | None = None, expires_at: Any = None) -> dict[str, Any]:
    login = caller.subscriber if caller.role == "subscriber" else (
        caller.actor.split(":", 1)[1] if caller.actor.startswith("operator:") else None)
    return {"actor": caller.actor, "role": caller.role, "reseller": caller.reseller,
            "login": login, "permissions": sorted(ROLES.get(caller.role, ())),
            "csrf_token": csrf, "expires_at": expires_at}


@API.endpoint("POST", "/login", None, "log an operator in: a session cookie and its CSRF token",
              public=True, body=m.LoginBody, response=m.SessionOut, item="session",
              tag="login")
async def login(ctx: Any, body: m.LoginBody) -> Any:
    api = ctx.api
    api.throttle.check("operator", ctx.address, body.login)
    secret = await api.dbpool.run(logins.thd_operator_secret, body.login)
    if not await ctx.in_thread(_check_operator, secret, body.password):
        api.throttle.failed("operator", ctx.address, body.login)
        raise Unauthorized(WRONG)
    api.throttle.succeeded("operator", body.login)
    opened = await api.dbpool.run(logins.thd_open_session, address=ctx.address,
                                  lifetime=ctx.config.web.session_lifetime,
                                  operator_id=secret.id)
    ctx.request.addCookie(COOKIE, opened.token.encode(), path=b"/", httpOnly=True,
                          secure=ctx.secure, sameSite="lax",
                          max_age=str(ctx.config.web.session_lifetime).encode())
    return identity(opened.caller, csrf_token(opened.token), opened.expires_at)


@API.endpoint("POST", "/logout", "me.read", "end the caller's login session", response=m.Ok,
              item="logout", tag="login")
async def logout(ctx: Any) -> Any:
    ident = ctx.identity
    if ident.session:
        await ctx.api.dbpool.run(logins.thd_end_session, tokens.token_hash(ident.secret))
        ctx.api.auth.forget(ident.secret)
    if ident.cookie:
        ctx.request.addCookie(COOKIE, b"", path=b"/", httpOnly=True, secure=ctx.secure,
                              sameSite="lax", max_age=b"0")
    return {"ok": True}


@API.endpoint("POST", "/selfcare/login", "selfcare.login",
              "a self-care front end logs a subscriber in: a session token acting as it",
              body=m.LoginBody, response=m.SessionOut, item="session", tag="selfcare")
async def selfcare_login(ctx: Any, body: m.LoginBody) -> Any:
    api = ctx.api
    caller = ctx.caller
    if caller.token_id is None:
        raise Unauthorized("a self-care login needs a selfcare-frontend token")
    api.throttle.check("subscriber", ctx.address, body.login)
    found = await ctx.run(selfcare.thd_login_secrets, body.login)
    if not await ctx.in_thread(check_password, found, body.password):
        api.throttle.failed("subscriber", ctx.address, body.login)
        raise Unauthorized(WRONG)
    api.throttle.succeeded("subscriber", body.login)
    opened = await api.dbpool.run(logins.thd_open_session, address=ctx.address,
                                  lifetime=ctx.config.web.session_lifetime,
                                  subscriber=found.login, via_token_id=caller.token_id)
    out = identity(opened.caller, None, opened.expires_at)
    out["token"] = opened.token
    return out


@API.endpoint("GET", "/me", "me.read", "who the caller is, its role and permissions",
              response=m.Identity, item="me", tag="me")
async def me(ctx: Any) -> Any:
    ident = ctx.identity
    out = identity(ident.caller, csrf_token(ident.secret) if ident.cookie else None)
    if ident.caller.role == "subscriber":
        from webadmin.api.endpoints.selfcare import account_dict

        out["account"] = account_dict(await ctx.run(selfcare.thd_me, ctx.currency))
    return out


# -- operators ------------------------------------------------------------------------------


class OperatorAdd(Body):
    login: str
    role: str = Field(json_schema_extra={"enum": list(OPERATOR_ROLES)})
    password: str = Field(min_length=8, max_length=256)
    reseller: str | None = None
    description: str = ""


class OperatorSet(Body):
    role: str | None = Field(None, json_schema_extra={"enum": list(OPERATOR_ROLES)})
    reseller: str | None = None
    enabled: bool | None = None
    description: str | None = None


class PasswordBody(Body):
    password: str = Field(min_length=8, max_length=256)


@API.endpoint("GET", "/operators", "operator.admin", "list operators (by login)",
              query=Page, paged=True, response=m.Operator, item="operator")
async def list_operators(ctx: Any, query: Page) -> Any:
    rows = await ctx.run(operators.thd_list_operators)
    return rows[query.offset:query.offset + query.limit + 1]


@API.endpoint("POST", "/operators", "operator.admin", "add an operator", body=OperatorAdd,
              response=m.Operator, status=201, item="operator")
async def add_operator(ctx: Any, body: OperatorAdd) -> Any:
    operators.validate_operator_login(body.login)
    hashed = await ctx.in_thread(operators.hash_operator_password, body.password)
    return await ctx.run(operators.thd_add_operator, body.login, hashed, body.role,
                         body.reseller, body.description)


@API.endpoint("GET", "/operators/{login}", "operator.admin", "show an operator",
              response=m.Operator, item="operator")
async def show_operator(ctx: Any, login: str) -> Any:
    return await ctx.run(operators.thd_get_operator, login)


@API.endpoint("PATCH", "/operators/{login}", "operator.admin",
              "change an operator's role, reseller, enabled, description",
              body=OperatorSet, response=m.Operator, item="operator")
async def set_operator(ctx: Any, login: str, body: OperatorSet) -> Any:
    info = await ctx.run(operators.thd_update_operator, login,
                         body.model_dump(exclude_unset=True))
    ctx.api.auth.clear()  # its sessions may have ended: do not trust the cache
    return info


@API.endpoint("PUT", "/operators/{login}/password", "operator.admin",
              "set an operator's password (ends its sessions)", body=PasswordBody,
              response=m.Operator, item="operator")
async def operator_password(ctx: Any, login: str, body: PasswordBody) -> Any:
    hashed = await ctx.in_thread(operators.hash_operator_password, body.password)
    info = await ctx.run(operators.thd_set_operator_password, login, hashed)
    ctx.api.auth.clear()
    return info


@API.endpoint("DELETE", "/operators/{login}", "operator.admin", "remove an operator",
              response=m.Operator, item="operator")
async def remove_operator(ctx: Any, login: str) -> Any:
    info = await ctx.run(operators.thd_remove_operator, login)
    ctx.api.auth.clear()
    return info


# -- tokens ---------------------------------------------------------------------------------


class TokenAdd(Body):
    name: str
    role: str = Field(json_schema_extra={"enum": list(TOKEN_ROLES)})
    reseller: str | None = None
    expires: int | None = Field(None, ge=1, le=tokens.MAX_DAYS, description="days")


@API.endpoint("GET", "/tokens", "token.admin", "list API tokens (never their secrets)",
              query=Page, paged=True, response=m.Token, item="token")
async def list_tokens(ctx: Any, query: Page) -> Any:
    rows = await ctx.run(tokens.thd_list_tokens)
    return rows[query.offset:query.offset + query.limit + 1]


@API.endpoint("POST", "/tokens", "token.admin", "add a token; its secret is in this answer only",
              body=TokenAdd, response=m.NewToken, status=201, item="token")
async def add_token(ctx: Any, body: TokenAdd) -> Any:
    new = await ctx.run(tokens.thd_add_token, body.name, body.role, body.reseller, body.expires)
    return {**new.info.as_dict(), "token": new.token}


@API.endpoint("DELETE", "/tokens/{name}", "token.admin",
              "revoke a token (and the self-care sessions opened through it)",
              response=m.Token, item="token")
async def revoke_token(ctx: Any, name: str) -> Any:
    info = await ctx.run(tokens.thd_revoke_token, name)
    ctx.api.auth.clear()
    return info


# -- audit ----------------------------------------------------------------------------------


class AuditQuery(Page):
    object: str | None = Field(None, description="TYPE or TYPE:KEY, e.g. subscriber:bob")
    operator: str | None = Field(None, description="actor: operator:alice, or a bare name")


@API.endpoint("GET", "/audit", "audit.read", "the audit log, newest first", query=AuditQuery,
              paged=True, response=m.AuditRow, item="entry")
async def list_audit(ctx: Any, query: AuditQuery) -> Any:
    otype, okey = None, None
    if query.object:
        otype, _, key = query.object.partition(":")
        okey = key or None
    return await ctx.run(audit.thd_list_audit, otype, okey, query.operator,
                         query.limit + 1, query.offset)


# -- resellers ------------------------------------------------------------------------------


class ResellerAdd(Body):
    name: str
    description: str = ""


class ResellerSet(Body):
    description: str


@API.endpoint("GET", "/resellers", "subscriber.read", "list resellers (a reseller: its own)",
              query=Page, paged=True, response=m.Reseller, item="reseller")
async def list_resellers(ctx: Any, query: Page) -> Any:
    rows = await ctx.run(resellers.thd_list_resellers)
    return rows[query.offset:query.offset + query.limit + 1]


@API.endpoint("POST", "/resellers", "reseller.admin", "add a reseller", body=ResellerAdd,
              response=m.Reseller, status=201, item="reseller")
async def add_reseller(ctx: Any, body: ResellerAdd) -> Any:
    return await ctx.run(resellers.thd_add_reseller, body.name, body.description)


@API.endpoint("GET", "/resellers/{name}", "subscriber.read", "show a reseller",
              response=m.Reseller, item="reseller")
async def show_reseller(ctx: Any, name: str) -> Any:
    return await ctx.run(resellers.thd_get_reseller, name)


@API.endpoint("PATCH", "/resellers/{name}", "reseller.admin", "change a reseller's description",
              body=ResellerSet, response=m.Reseller, item="reseller")
async def set_reseller(ctx: Any, name: str, body: ResellerSet) -> Any:
    return await ctx.run(resellers.thd_update_reseller, name, body.model_dump(exclude_unset=True))


@API.endpoint("DELETE", "/resellers/{name}", "reseller.admin", "remove an empty reseller",
              response=m.Reseller, item="reseller")
async def remove_reseller(ctx: Any, name: str) -> Any:
    return await ctx.run(resellers.thd_remove_reseller, name)




class Topup(Body):
    amount: str = Field(pattern=m.AMOUNT, description="decimal string (negative: a correction)")
    reference: str = Field(min_length=1, max_length=128,
                           description="posting the same reference again changes nothing")


class ResellerLimit(Body):
    credit_limit: str = Field(pattern=m.AMOUNT)


class ResellerBalance(m.Out):
    reseller: str
    currency: str
    balance: m.Amount
    credit_limit: m.Amount
    available: m.Amount


@API.endpoint("GET", "/resellers/{name}/balance", "account.read",
              "a reseller's prepaid balance with the operator", response=ResellerBalance,
              item="reseller_balance", tag="resellers")
async def reseller_balance(ctx: Any, name: str) -> Any:
    return await ctx.run(reseller_money.thd_balance, name, ctx.currency)


@API.endpoint("POST", "/resellers/{name}/topup", "reseller.admin",
              "the reseller prepaid the operator (exactly once per Idempotency-Key or "
              "reference)", body=Topup, response=ResellerBalance, status=201, idempotent=True,
              item="reseller_topup", tag="resellers")
async def reseller_topup(ctx: Any, name: str, body: Topup) -> Any:
    from billing.money import parse_amount
    from webadmin.api.idempotent import once

    amount = parse_amount(body.amount, ctx.currency, allow_negative=True)
    return await once(ctx, body, lambda out: out, reseller_money.thd_topup, name, amount,
                      ctx.currency, body.reference)


@API.endpoint("PUT", "/resellers/{name}/credit_limit", "reseller.admin",
              "how far the reseller may go below 0", body=ResellerLimit,
              response=ResellerBalance, item="reseller_balance", tag="resellers")
async def reseller_limit(ctx: Any, name: str, body: ResellerLimit) -> Any:
    from billing.money import parse_amount

    return await ctx.run(reseller_money.thd_set_limit, name,
                         parse_amount(body.credit_limit, ctx.currency), ctx.currency)
