"""NAS clients, plans and their prices, pools with leases and static assignments."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.db.models import Vendor
from core.errors import InvalidInput
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page
from webadmin.service import catalog, prices

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


# -- prices ---------------------------------------------------------------------------------


class Prices(Body):
    """The price options of ``plan set``; absent ones leave the plan's prices as they are."""

    price_per_minute: str | None = None
    price_per_second: str | None = None
    increment: int | None = Field(None, ge=1, le=3600)
    price_per_mb: str | None = None
    price_per_mb_in: str | None = None
    price_per_mb_out: str | None = None
    monthly_fee: str | None = None
    daily_fee: str | None = None
    credit_limit: str | None = None
    timezone: str | None = None
    allowance_minutes: int | None = Field(None, ge=0, le=10**7)
    allowance_mb: int | None = Field(None, ge=0, le=10**9)
    allowance_period: Literal["day", "month"] | None = None
    after_allowance: Literal["charge", "throttle", "cutoff"] | None = None
    throttle_rate_limit: str | None = None
    no_allowance: bool | None = None


@API.endpoint("GET", "/plans/{name}/prices", "plan.read", "a plan's prices",
              response=m.Obj, item="prices", tag="plans")
async def plan_prices(ctx: Any, name: str) -> Any:
    from billing.tariff_store import describe_tariff

    return describe_tariff(await ctx.run(catalog.thd_plan_prices, name))


@API.endpoint("PUT", "/plans/{name}/prices", "plan.write",
              "set a plan's prices (the options of plan set)", body=Prices, response=m.Obj,
              item="prices", tag="plans")
async def set_plan_prices(ctx: Any, name: str, body: Prices) -> Any:
    from billing.tariff_store import describe_tariff

    given = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    spec = prices.price_spec(name, given, ctx.currency)
    if spec is None:
        raise InvalidInput("nothing to change; give at least one price field")
    await ctx.run(catalog.thd_apply_prices, spec)
    return describe_tariff(await ctx.run(catalog.thd_plan_prices, name))


# -- pools ----------------------------------------------------------------------------------


class Pool(m.Out):
    name: str
    kind: str
    size: int
    used: int
    free: int


class Lease(m.Out):
    pool: str
    value: str
    state: str
    holder: str | None


class PoolAdd(Body):
    name: str
    kind: Literal["ipv4", "ipv6", "pd", "phone", "login"]
    ranges: list[str] = Field([], description="ranges/CIDRs (--range); a login pool: one "
                                              "pattern")
    exclude: list[str] = []
    prefix_length: int | None = Field(None, ge=1, le=128)
    pattern: str | None = None
    nas_group: str | None = None
    framed_pool_name: str | None = None
    description: str = ""


class PoolSet(Body):
    nas_group: str | None = Field(None, description="'' serves every NAS again")
    framed_pool_name: str | None = None
    description: str | None = None


class LeaseQuery(Page):
    state: Literal["offered", "leased", "static", "issued"] | None = None


class Assign(Body):
    login: str
    value: str | None = Field(None, description="a specific identifier; default: the next "
                                                "free one")


class Attach(Body):
    pool: str
    priority: int = Field(100, ge=0, le=10**6, description="lower is tried first")
    nas_allocates: bool = False
    on_exhausted: Literal["reject", "framed-pool"] = "reject"


@API.endpoint("GET", "/pools", "pool.read", "pools with size, used, free and percent",
              query=Page, paged=True, response=Pool, item="pool")
async def list_pools(ctx: Any, query: Page) -> Any:
    return _page(await ctx.run(catalog.thd_list_pools, ctx.config.pools.warn_utilization),
                 query)


@API.endpoint("POST", "/pools", "pool.write", "create a pool", body=PoolAdd, response=Pool,
              status=201, item="pool")
async def add_pool(ctx: Any, body: PoolAdd) -> Any:
    from pools.manage import NewPool
    from pools.models import PoolKind

    kind = PoolKind(body.kind)
    pattern = body.pattern
    ranges: tuple[Any, ...] = tuple(body.ranges)
    if kind is PoolKind.LOGIN:
        if pattern is None and len(ranges) == 1:
            pattern, ranges = str(ranges[0]), ()
        elif ranges:
            raise InvalidInput("login pools take one pattern", field="pattern")
    new = NewPool(body.name, kind, ranges=ranges, exclude=tuple(body.exclude),
                  prefix_length=body.prefix_length, pattern=pattern, nas_group=body.nas_group,
                  framed_pool_name=body.framed_pool_name, description=body.description)
    return await ctx.run(catalog.thd_add_pool, new, None)


def pool_detail(d: Any) -> dict[str, Any]:
    """One flat object: the usage figures, then the pool's definition and its plans."""
    return {**d.usage.as_dict(), "prefix_length": d.prefix_length, "ranges": list(d.ranges),
            "excluded": list(d.excluded), "pattern": d.pattern, "nas_group": d.nas_group,
            "framed_pool_name": d.framed_pool_name, "description": d.description,
            "created_at": d.created_at,
            "plans": [{"plan": p.plan, "priority": p.priority, "nas_allocates": p.nas_allocates,
                       "on_exhausted": p.on_exhausted} for p in d.plans]}


@API.endpoint("GET", "/pools/{name}", "pool.read", "one pool in detail", response=Pool,
              item="pool")
async def show_pool(ctx: Any, name: str) -> Any:
    return pool_detail(await ctx.run(catalog.thd_show_pool, name,
                                     ctx.config.pools.warn_utilization))


@API.endpoint("PATCH", "/pools/{name}", "pool.write",
              "change a pool's NAS group, Framed-Pool name, description", body=PoolSet,
              response=Pool, item="pool")
async def set_pool(ctx: Any, name: str, body: PoolSet) -> Any:
    return pool_detail(await ctx.run(catalog.thd_set_pool, name, **_changes(body)))


@API.endpoint("DELETE", "/pools/{name}", "pool.write", "delete a pool without live leases",
              response=m.Obj, item="pool")
async def remove_pool(ctx: Any, name: str) -> Any:
    return {"name": name, "removed_items": await ctx.run(catalog.thd_remove_pool, name)}


@API.endpoint("GET", "/pools/{name}/leases", "pool.read",
              "offered, leased, static and issued items, in pool order", query=LeaseQuery,
              paged=True, response=Lease, item="lease", tag="pools")
async def list_leases(ctx: Any, name: str, query: LeaseQuery) -> Any:
    from pools.models import ItemState

    states = [ItemState(query.state)] if query.state else None
    rows = await ctx.run(catalog.thd_list_leases, name, states,
                         query.offset + query.limit + 1)
    return rows[query.offset:]


@API.endpoint("POST", "/pools/{name}/static", "pool.write",
              "reserve an identifier for a subscriber for good", body=Assign, response=Lease,
              item="lease", tag="pools")
async def assign_static(ctx: Any, name: str, body: Assign) -> Any:
    return await ctx.run(catalog.thd_assign_static, name, body.login, body.value)


@API.endpoint("DELETE", "/pools/{name}/static/{who}", "pool.write",
              "end static assignments (by login or value)", response=Lease, item="lease",
              tag="pools")
async def release_static(ctx: Any, name: str, who: str) -> Any:
    return await ctx.run(catalog.thd_release_static, name, who)


@API.endpoint("POST", "/plans/{name}/pools", "pool.write", "let a plan draw from a pool",
              body=Attach, response=m.Obj, item="link", tag="plans")
async def attach_pool(ctx: Any, name: str, body: Attach) -> Any:
    from pools.models import OnExhausted

    return await ctx.run(catalog.thd_attach, name, body.pool, priority=body.priority,
                         nas_allocates=body.nas_allocates,
                         on_exhausted=OnExhausted(body.on_exhausted))


@API.endpoint("DELETE", "/plans/{name}/pools/{pool}", "pool.write",
              "stop a plan drawing from a pool", response=m.Ok, item="link", tag="plans")
async def detach_pool(ctx: Any, name: str, pool: str) -> Any:
    await ctx.run(catalog.thd_detach, name, pool)
    return {"ok": True}
