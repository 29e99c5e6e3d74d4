"""Subscribers: list, add, show, change, block/unblock/disable, password, remove.

Field names are the CLI's options (``subscriber add --static-ip`` is ``static_ip``).
Passwords are hashed (argon2) in a thread before the transaction, as the CLI does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aaa.admin.passwords import hash_credentials
from aaa.admin.validate import validate_login
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page
from webadmin.api.endpoints.usage import disconnect_login
from webadmin.service import subscribers as svc

Status = Literal["active", "blocked", "disabled"]


class SubscriberQuery(Page):
    status: Status | None = None
    plan: str | None = Field(None, description="only this plan ('none': without a plan)")
    login_prefix: str | None = None
    reseller: str | None = None


class SubscriberAdd(Body):
    login: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    plan: str | None = None
    chap: bool = False
    static_ip: str | None = None
    status: Status = "active"
    description: str = ""
    reseller: str | None = None


class SubscriberSet(Body):
    plan: str | None = Field(None, description="a plan name, or 'none'")
    static_ip: str | None = Field(None, description="IPv4, or 'none'")
    description: str | None = None
    reseller: str | None = Field(None, description="a reseller name, or 'none'")
    chap: Literal[False] | None = Field(None, description="false turns CHAP off")


class SubscriberPassword(Body):
    password: str = Field(min_length=1, max_length=256)
    chap: bool | None = None


class StatusChange(Body):
    disconnect: bool = Field(True, description="also disconnect the live sessions "
                                                "(block and disable only)")


@API.endpoint("GET", "/subscribers", "subscriber.read", "list subscribers (by login)",
              query=SubscriberQuery, paged=True, response=m.Subscriber, item="subscriber")
async def list_subscribers(ctx: Any, query: SubscriberQuery) -> Any:
    return await ctx.run(svc.thd_list, query.status, query.plan, query.login_prefix,
                         query.limit + 1, query.offset, query.reseller)


@API.endpoint("POST", "/subscribers", "subscriber.write", "add a subscriber",
              body=SubscriberAdd, response=m.Subscriber, status=201, item="subscriber")
async def add_subscriber(ctx: Any, body: SubscriberAdd) -> Any:
    login = validate_login(body.login)  # before ~70 ms of argon2
    creds = await ctx.in_thread(hash_credentials, body.password)
    return await ctx.run(svc.thd_add, login, creds, body.plan, body.chap, body.static_ip,
                         body.status, body.description, body.reseller)


@API.endpoint("GET", "/subscribers/{login}", "subscriber.read", "show a subscriber",
              response=m.Subscriber, item="subscriber")
async def show_subscriber(ctx: Any, login: str) -> Any:
    return await ctx.run(svc.thd_get, login)


@API.endpoint("PATCH", "/subscribers/{login}", "subscriber.write",
              "change plan, static_ip, description, reseller; chap false turns CHAP off",
              body=SubscriberSet, response=m.Subscriber, item="subscriber")
async def set_subscriber(ctx: Any, login: str, body: SubscriberSet) -> Any:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        from core.errors import InvalidInput

        raise InvalidInput("nothing to change; give at least one field")
    return await ctx.run(svc.thd_update, login, changes)


@API.endpoint("PUT", "/subscribers/{login}/password", "subscriber.password",
              "set a subscriber's password (chap: keep cleartext for CHAP)",
              body=SubscriberPassword, response=m.Subscriber, item="subscriber")
async def subscriber_password(ctx: Any, login: str, body: SubscriberPassword) -> Any:
    creds = await ctx.in_thread(hash_credentials, body.password)
    return await ctx.run(svc.thd_set_password, login, creds, body.chap)


async def _status(ctx: Any, login: str, status: str, disconnect: bool) -> Any:
    info = await ctx.run(svc.thd_set_status, login, status)
    out = info.as_dict()
    if status != "active" and disconnect and ctx.caller.may("session.disconnect"):
        out["disconnects"] = await disconnect_login(ctx, login)
    return out


@API.endpoint("POST", "/subscribers/{login}/block", "subscriber.write",
              "block a subscriber (and disconnect its sessions)", body=StatusChange,
              response=m.Subscriber, item="subscriber")
async def block_subscriber(ctx: Any, login: str, body: StatusChange) -> Any:
    return await _status(ctx, login, "blocked", body.disconnect)


@API.endpoint("POST", "/subscribers/{login}/unblock", "subscriber.write",
              "make a blocked or disabled subscriber active again", body=StatusChange,
              response=m.Subscriber, item="subscriber")
async def unblock_subscriber(ctx: Any, login: str, body: StatusChange) -> Any:
    return await _status(ctx, login, "active", False)


@API.endpoint("POST", "/subscribers/{login}/disable", "subscriber.write",
              "disable a subscriber (and disconnect its sessions)", body=StatusChange,
              response=m.Subscriber, item="subscriber")
async def disable_subscriber(ctx: Any, login: str, body: StatusChange) -> Any:
    return await _status(ctx, login, "disabled", body.disconnect)


@API.endpoint("DELETE", "/subscribers/{login}", "subscriber.write", "remove a subscriber",
              response=m.Subscriber, item="subscriber")
async def remove_subscriber(ctx: Any, login: str) -> Any:
    return await ctx.run(svc.thd_remove, login)
