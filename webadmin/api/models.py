"""Shared pydantic models of the API's answers (request models live beside their endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from webadmin.api.declare import Body, Out

Amount = str  # a decimal string in the account's currency, e.g. "10.00"
AMOUNT = r"^-?[0-9]{1,15}([.,][0-9]{1,6})?$"


class Ok(Out):
    ok: bool


class Identity(Out):
    actor: str
    role: str
    reseller: str | None = None
    login: str | None = None
    permissions: list[str] = []
    csrf_token: str | None = None
    expires_at: datetime | None = None


class LoginBody(Body):
    login: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(Identity):
    token: str | None = Field(None, description="the session token (self-care login only)")


class Subscriber(Out):
    login: str
    status: str
    plan: str | None
    static_ip: str | None
    auth: list[str]
    chap: bool
    description: str
    reseller: str | None
    created_at: datetime
    updated_at: datetime


class Nas(Out):
    name: str
    address: str
    secret: str = Field(description="always masked")
    vendor: str
    require_message_authenticator: bool
    coa_port: int
    description: str


class Plan(Out):
    name: str
    rate_limit: str | None
    session_timeout: int | None
    idle_timeout: int | None
    interim_interval: int | None
    simultaneous_use: int | None
    framed_protocol: str | None
    reply_attributes: list[str]
    reseller: str | None


class Operator(Out):
    login: str
    role: str
    reseller: str | None
    enabled: bool
    description: str
    last_login_at: datetime | None


class Token(Out):
    name: str
    role: str
    reseller: str | None
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None


class NewToken(Token):
    token: str = Field(description="shown only in this answer; only its hash is stored")


class AuditRow(Out):
    id: int
    at: datetime
    actor: str
    role: str
    address: str
    action: str
    object_type: str
    object: str
    before: Any = None
    after: Any = None


class Reseller(Out):
    name: str
    description: str


class Account(Out):
    login: str
    plan: str | None
    currency: str
    balance: Amount
    reserved: Amount
    credit_limit: Amount
    available: Amount
    status: str


class Entry(Out):
    id: int
    created_at: datetime
    kind: str
    amount: Amount
    reference: str | None
    description: str | None = None


class Payment(Entry):
    login: str


class PaymentResult(Account):
    entry_id: int
    recorded: bool
    already_recorded: bool
    unblocked: bool


class Obj(Out):
    """An object whose fields are listed in docs/api.md (a computation's answer)."""
