"""The AccessHook that puts addresses and prefixes from the plan's pools into the Access-Accept.

After authentication, the subscriber's plan says which pools to draw from
(``plan_pool``, filtered by the NAS's pool group). One DB transaction offers
one identifier per kind: ipv4 -> Framed-IP-Address, ipv6 ->
Framed-IPv6-Prefix, pd -> Delegated-IPv6-Prefix. A static assignment wins,
and so does an address the Accept already carries (the subscriber's
``static_ip`` or the plan's extra reply). Where the plan lets the NAS
allocate, the Accept carries the pool's name instead (Framed-Pool,
Framed-IPv6-Pool, Delegated-IPv6-Prefix-Pool).

When every pool of a kind is full the request is rejected ("Address pool is
full"), logged and counted, unless the plan falls back to Framed-Pool. An
Accept never goes out without the address it should carry: the allocation
either commits before the Accept is built or the request is rejected (or,
on a database fault, not answered at all, so the NAS retries).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaa.access import AccessContext
from aaa.authenticate import raw
from aaa.maybe import Maybe, then
from aaa.outcome import Decision, Outcome
from aaa.refreshing import RefreshingCache
from core.db.pool import DBPool
from pools import metrics
from pools.errors import PoolExhausted
from pools.lease import AccessAllocation, Grant, PoolRoute, thd_allocate_for_access, thd_plan_routes
from pools.models import PoolKind

log = logging.getLogger(__name__)

CALLING_STATION_ID = 31
VALUE_ATTRIBUTE = {PoolKind.IPV4: "Framed-IP-Address", PoolKind.IPV6: "Framed-IPv6-Prefix",
                   PoolKind.PD: "Delegated-IPv6-Prefix"}
POOL_ATTRIBUTE = {PoolKind.IPV4: "Framed-Pool", PoolKind.IPV6: "Framed-IPv6-Pool",
                  PoolKind.PD: "Delegated-IPv6-Prefix-Pool"}


class PoolHook:
    """``AccessHook``: allocate from the plan's pools; reject when they are full.

    Which pools a plan uses at a NAS is cached for ``routes_ttl`` seconds
    (like credentials; ``invalidate()`` drops it). Leases are never cached.
    """

    def __init__(self, dbpool: DBPool, clock: IReactorTime, *, offer_lease_seconds: int = 60,
                 routes_ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.dbpool = dbpool
        self.clock: Any = clock  # zope Interface methods confuse mypy
        self.offer_lease_seconds = offer_lease_seconds
        self.routes_ttl = routes_ttl
        self.max_entries = max_entries
        # One load per (plan, NAS) at a time, the expired routes answering while it runs:
        # a query per waiting login at each expiry stalled the auth port (aaa.refreshing).
        self._routes: RefreshingCache[tuple[int, int], tuple[PoolRoute, ...]] = \
            RefreshingCache(lambda key: self.dbpool.run(thd_plan_routes, *key), self.clock.seconds,
                            routes_ttl, max_entries=max_entries, name="plan pool routes")

    def invalidate(self) -> None:
        self._routes.invalidate()

    def routes(self, plan_id: int, nas_id: int) -> Maybe[tuple[PoolRoute, ...]]:
        return self._routes.get((plan_id, nas_id))

    def __call__(self, ctx: AccessContext) -> Maybe[Decision | None]:
        # No Deferred and no generator up to the allocation (aaa.maybe): most plans have
        # no pools, and this runs on every Access-Accept.
        plan = ctx.subscriber.plan
        if plan is None:
            return None
        return then(self.routes(plan.id, ctx.client.id), self._offer, ctx)

    def _offer(self, routes: tuple[PoolRoute, ...], ctx: AccessContext) -> Maybe[Decision | None]:
        if not routes:
            return None
        present = {name for name, _ in ctx.reply}
        skip = {kind for kind, attr in VALUE_ATTRIBUTE.items() if attr in present}
        if ctx.subscriber.static_ip:
            skip.add(PoolKind.IPV4)
        if all(r.kind in skip for r in routes):
            return None
        device_raw = raw(ctx.packet, CALLING_STATION_ID)
        device = device_raw.decode("utf-8", "replace") if device_raw else None
        request = AccessAllocation(routes=routes, login=ctx.user_name, nas_id=ctx.client.id,
                                   device=device, skip_kinds=frozenset(skip),
                                   offer_seconds=self.offer_lease_seconds)
        return self._allocate(ctx, request)

    def _allocate(self, ctx: AccessContext,
                  request: AccessAllocation) -> defer.Deferred[Decision | None]:
        # Callbacks rather than a generator: this runs for every new login with a pool.
        d = self.dbpool.run(thd_allocate_for_access, request)
        return d.addCallbacks(self._granted, self._refused, callbackArgs=(ctx,),
                              errbackArgs=(ctx,))

    def _granted(self, grants: tuple[Grant, ...], ctx: AccessContext) -> None:
        for grant in grants:
            self._add(ctx, grant)

    def _refused(self, failure: Failure, ctx: AccessContext) -> Decision:
        failure.trap(PoolExhausted)  # anything else: no reply, the NAS retries
        exc: PoolExhausted = failure.value  # type: ignore[assignment]
        metrics.EXHAUSTED.labels(exc.pool, "reject").inc()
        log.warning("pool %s (%s) is full: rejecting %s from NAS %s", exc.pool, exc.kind,
                    ctx.user_name, ctx.client.name)
        return Decision(Outcome.POOL_EXHAUSTED, detail=f"{ctx.user_name}: pool {exc.pool} is full")

    def _add(self, ctx: AccessContext, grant: Grant) -> None:
        if grant.value is not None:
            ctx.reply.append((VALUE_ATTRIBUTE[grant.kind], grant.value))
            if not grant.static:
                metrics.ALLOCATIONS.labels(grant.pool).inc()
            return
        if grant.framed_pool is not None:
            ctx.reply.append((POOL_ATTRIBUTE[grant.kind], grant.framed_pool))
            if grant.exhausted:
                metrics.EXHAUSTED.labels(grant.pool, "framed-pool").inc()
                log.warning("pool %s (%s) is full: %s from NAS %s gets Framed-Pool %s",
                            grant.pool, grant.kind, ctx.user_name, ctx.client.name,
                            grant.framed_pool)
