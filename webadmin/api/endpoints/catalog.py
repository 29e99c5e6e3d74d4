"""NAS clients, plans and their prices, pools with leases and static assignments."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.db.models import Vendor
from core.errors import InvalidInput
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page
from webadmin.service import catalog

VENDORS = [v.value for v in Vendor]


def _page(rows: list[Any], q: Page) -> list[Any]:
    return rows[q.offset:q.offset + q.limit + 1]


def _changes(body: Body) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("nothing to change; give at least one field")
    return changes


# -- NAS ------------------------------------------------------------------------------------


class NasAdd(Body):
    name: str
    address: str = Field(description="IP or CIDR")
    secret: str
    vendor: str = Field("generic", json_schema_extra={"enum": VENDORS})
    coa_port: int = Field(3799, ge=1, le=65535)
    require_message_authenticator: bool = True
    description: str = ""


class NasSet(Body):
    address: str | None = None
    secret: str | None = None
    vendor: str | None = Field(None, json_schema_extra={"enum": VENDORS})
    coa_port: int | None = Field(None, ge=1, le=65535)
    require_message_authenticator: bool | None = None
    description: str | None = None


@API.endpoint("GET", "/nas", "nas.read", "list NAS clients (secrets masked)", query=Page,
              paged=True, response=m.Nas, item="nas")
async def list_nas(ctx: Any, query: Page) -> Any:
    return _page(await ctx.run(catalog.thd_list_nas), query)


@API.endpoint("POST", "/nas", "nas.write", "add a NAS client", body=NasAdd, response=m.Nas,
              status=201, item="nas")
async def add_nas(ctx: Any, body: NasAdd) -> Any:
    return await ctx.run(catalog.thd_add_nas, body.name, body.address, body.secret, body.vendor,
                         body.coa_port, body.require_message_authenticator, body.description)


@API.endpoint("GET", "/nas/{name}", "nas.read", "show a NAS client (secret masked)",
              response=m.Nas, item="nas")
async def show_nas(ctx: Any, name: str) -> Any:
    return await ctx.run(catalog.thd_get_nas, name)


@API.endpoint("PATCH", "/nas/{name}", "nas.write", "change a NAS client", body=NasSet,
              response=m.Nas, item="nas")
async def set_nas(ctx: Any, name: str, body: NasSet) -> Any:
    changes = {k: v for k, v in _changes(body).items() if v is not None}
    if not changes:
        raise InvalidInput("nothing to change; give at least one field")
    return await ctx.run(catalog.thd_update_nas, name, changes)


@API.endpoint("DELETE", "/nas/{name}", "nas.write", "remove a NAS client", response=m.Nas,
              item="nas")
async def remove_nas(ctx: Any, name: str) -> Any:
    return await ctx.run(catalog.thd_remove_nas, name)


# -- plans ----------------------------------------------------------------------------------


class PlanAdd(Body):
    name: str
    rate_limit: str | None = Field(None, description="UP/DOWN, e.g. 10M/50M")
    session_timeout: int | None = Field(None, ge=0, le=2**31 - 1)
    idle_timeout: int | None = Field(None, ge=0, le=2**31 - 1)
    interim_interval: int | None = Field(None, ge=0, le=2**31 - 1)
    simultaneous_use: int | None = Field(None, ge=0, le=2**31 - 1)
    framed_protocol: str | None = "PPP"
    reply_attributes: list[str] = Field([], description="ATTRIBUTE=VALUE")
    pools: list[str] | None = None
    reseller: str | None = None


class PlanSet(Body):
    rate_limit: str | None = None
    session_timeout: int | None = Field(None, ge=0, le=2**31 - 1)
    idle_timeout: int | None = Field(None, ge=0, le=2**31 - 1)
    interim_interval: int | None = Field(None, ge=0, le=2**31 - 1)
    simultaneous_use: int | None = Field(None, ge=0, le=2**31 - 1)
    framed_protocol: str | None = None
    reply_attributes: list[str] | None = None
    pools: list[str] | None = None
    reseller: str | None = None


@API.endpoint("GET", "/plans", "plan.read", "list plans", query=Page, paged=True,
              response=m.Plan, item="plan")
async def list_plans(ctx: Any, query: Page) -> Any:
    return _page(await ctx.run(catalog.thd_list_plans), query)


@API.endpoint("POST", "/plans", "plan.write", "add a plan", body=PlanAdd, response=m.Plan,
              status=201, item="plan")
async def add_plan(ctx: Any, body: PlanAdd) -> Any:
    return await ctx.run(catalog.thd_add_plan, body.name, body.rate_limit, body.session_timeout,
                         body.idle_timeout, body.interim_interval, body.simultaneous_use,
                         body.framed_protocol, body.reply_attributes,
                         [p for p in body.pools if p] if body.pools else None, body.reseller)


@API.endpoint("GET", "/plans/{name}", "plan.read", "show a plan (and its pools)",
              response=m.Plan, item="plan")
async def show_plan(ctx: Any, name: str) -> Any:
    return await ctx.run(catalog.thd_get_plan, name)


@API.endpoint("PATCH", "/plans/{name}", "plan.write", "change a plan", body=PlanSet,
              response=m.Plan, item="plan")
async def set_plan(ctx: Any, name: str, body: PlanSet) -> Any:
    changes = _changes(body)
    pools = changes.pop("pools", None)
    return await ctx.run(catalog.thd_update_plan, name, changes,
                         [p for p in pools if p] if pools is not None else None)


@API.endpoint("DELETE", "/plans/{name}", "plan.write", "remove a plan", response=m.Plan,
              item="plan")
async def remove_plan(ctx: Any, name: str) -> Any:
    return await ctx.run(catalog.thd_remove_plan, name)
