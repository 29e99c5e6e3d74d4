"""Billing at Access-Request: hold a slice of money, grant Session-Timeout, answer PBXes.

An AccessHook (aaa.access): after authentication it asks billing
(billing.reservation.thd_reserve) to hold money for the new session, under
the account's row lock. No money: Access-Reject with Outcome.NO_BALANCE and
a Reply-Message saying why ("Insufficient balance", "Included allowance used
up", "No rate for this destination"). Money: Session-Timeout becomes what
the money buys (never longer than the plan's own), and an account past a
throttling allowance gets the throttle rate limit instead of the plan's.

Calls: an Access-Request whose Called-Station-Id is a phone number and whose
Service-Type is not Framed-User (a PBX or voice gateway, not a PPPoE/IPoE
NAS) is a call: the answer carries the longest call the money allows at the
destination's rate as Session-Timeout, plus ``h323-credit-time`` for Cisco.

Also here: the wiring helpers the lead puts in radbill.app
(:func:`make_billing_loop`, :func:`thd_live_sessions_from_accounting`).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from aaa.access import AccessContext
from aaa.maybe import Maybe, then
from aaa.outcome import Decision, Outcome
from aaa.refreshing import RefreshingCache
from aaa.vendors import octet_quota_attributes, rate_limit_attributes
from billing.rating import normalize_number
from billing.reservation import Grant, SessionRequest, thd_reserve
from billing.tariff_store import thd_priced_plan_ids
from core.config import Config
from core.db.models import Vendor

log = logging.getLogger(__name__)

FRAMED_USER = "Framed-User"
MIN_NUMBER_DIGITS = 3


def called_number(ctx: AccessContext) -> str | None:
    """The dialled number when this Access-Request is for a call, else None."""
    called = ctx.attr("Called-Station-Id")
    if not isinstance(called, str):
        return None
    service = ctx.attr("Service-Type")
    if service in (FRAMED_USER, 2):
        return None
    text = called.strip()
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0]
    if not text or any(not (ch.isdigit() or ch in "+-() ") for ch in text):
        return None
    digits = normalize_number(text)
    return digits if len(digits) >= MIN_NUMBER_DIGITS else None


class BillingAccessHook:
    """AccessHook: reserve at Access-Request; reject with the reason when there is no money."""

    def __init__(self, dbpool: Any, config: Config, grant: str = "balance",
                 priced_ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.dbpool = dbpool
        self.config = config
        self.grant = grant
        self.priced_ttl = priced_ttl
        self.clock = clock
        # One load at a time, and the expired set keeps answering while it reloads:
        # a reload per waiting login every priced_ttl stalled the auth port (aaa.refreshing).
        self._priced: RefreshingCache[None, frozenset[int]] = RefreshingCache(
            lambda _: self.dbpool.run(thd_priced_plan_ids), clock, priced_ttl, max_entries=1,
            name="priced plans")

    def __call__(self, ctx: AccessContext) -> Maybe[Decision | None]:
        # A plan without prices needs no reservation: skip the transaction (the hot
        # path of an operator who bills elsewhere). Which plans have prices is
        # cached for priced_ttl seconds; calls always go to the database (voice rates).
        if ctx.subscriber.plan is None or self.priced_ttl <= 0 or called_number(ctx):
            return self._reserve(ctx)
        return then(self._priced.get(None), self._reserve_if_priced, ctx)

    def _reserve_if_priced(self, priced: frozenset[int],
                           ctx: AccessContext) -> Maybe[Decision | None]:
        plan = ctx.subscriber.plan
        if plan is not None and plan.id not in priced:
            return None
        return self._reserve(ctx)

    def _reserve(self, ctx: AccessContext) -> defer.Deferred[Decision | None]:
        sub = ctx.subscriber
        framed_ip = sub.static_ip
        for name, value in ctx.reply:
            if name == "Framed-IP-Address":
                framed_ip = str(value)
        asid = ctx.attr("Acct-Session-Id")
        req = SessionRequest(
            subscriber_id=sub.id, plan_id=sub.plan.id if sub.plan else None,
            user_name=ctx.user_name, nas_id=ctx.client.id,
            acct_session_id=str(asid)[:128] if asid else None, framed_ip=framed_ip,
            destination=called_number(ctx))
        b = self.config.billing
        d = self.dbpool.run(thd_reserve, req, b.currency, b.reserve_seconds, b.reserve_octets,
                            None, self.grant)
        d.addCallback(self._apply, ctx, req)
        return d

    def _apply(self, grant: Grant, ctx: AccessContext, req: SessionRequest) -> Decision | None:
        if not grant.ok:
            return Decision(Outcome.NO_BALANCE, message=grant.message,
                            detail=f"{ctx.user_name} {grant.refusal}"
                                   + (f" to {req.destination}" if req.destination else ""))
        if grant.session_timeout is not None:
            _cap_session_timeout(ctx, grant.session_timeout)
            if self.grant == "slice" and not req.destination:
                ctx.reply.append(("Termination-Action", "RADIUS-Request"))
        if req.destination and grant.session_timeout is not None and \
                ctx.client.vendor is Vendor.CISCO:
            ctx.reply.append(("h323-credit-time", f"h323-credit-time={grant.session_timeout}"))
            ctx.reply.append(("h323-return-code", "h323-return-code=0"))
        if grant.throttle_rate_limit:
            _throttle(ctx, grant.throttle_rate_limit)
        if grant.octet_quota is not None and not req.destination:
            _limit_traffic(ctx, grant.octet_quota, self.config.billing.traffic_interim_interval)
        return None


def _limit_traffic(ctx: AccessContext, octets: int, interim_cap: int) -> None:
    """Have the NAS enforce a traffic-priced session's money, not only the next charging pass.

    Without this a fast session outran its reservation by far (issue 12: a 0.30 prepaid
    account reached -13.13) because the NAS learns nothing until billing cuts it. With the
    vendor's octet-quota attribute the NAS itself stops the session when the octets the
    available money buys are used; otherwise Interim-Updates come at most every
    ``interim_cap`` seconds, so the charging pass sees the usage and, when the next slice
    cannot be held, disconnects the session (bound: docs/billing.md).
    """
    attrs = octet_quota_attributes(ctx.client.vendor, octets)
    if attrs:
        ctx.reply.extend(attrs)
        return
    current = [v for k, v in ctx.reply if k == "Acct-Interim-Interval"]
    interval = min([interim_cap] + [int(v) for v in current if str(v).isdigit()])
    ctx.reply[:] = [(k, v) for k, v in ctx.reply if k != "Acct-Interim-Interval"]
    ctx.reply.append(("Acct-Interim-Interval", interval))


def _cap_session_timeout(ctx: AccessContext, seconds: int) -> None:
    current = [v for k, v in ctx.reply if k == "Session-Timeout"]
    limit = min([seconds] + [int(v) for v in current if isinstance(v, int | str)
                             and str(v).isdigit()])
    ctx.reply[:] = [(k, v) for k, v in ctx.reply if k != "Session-Timeout"]
    ctx.reply.append(("Session-Timeout", limit))


def _throttle(ctx: AccessContext, rate_limit: str) -> None:
    vendor = ctx.client.vendor
    try:
        slow = rate_limit_attributes(vendor, rate_limit)
    except ValueError as exc:
        log.error("throttle rate limit %r is invalid: %s", rate_limit, exc)
        return
    plan = ctx.subscriber.plan
    if plan is not None and plan.rate_limit:
        try:
            normal = rate_limit_attributes(vendor, plan.rate_limit)
        except ValueError:
            normal = []
        ctx.reply[:] = [item for item in ctx.reply if item not in normal]
    ctx.reply.extend(slow)


# --- wiring helpers (called from radbill.app and the CLI) ------------------------------------

def thd_live_sessions_from_accounting(session: Any, subscriber_ids: Any) -> list[Any]:
    """billing.cutoff.LiveSessionSource over accounting's open sessions (stopped_at IS NULL)."""
    from sqlalchemy import select

    from accounting.models import AcctSession
    from billing.cutoff import LiveSession

    ids = list(subscriber_ids)
    if not ids:
        return []
    rows = session.execute(select(
        AcctSession.subscriber_id, AcctSession.user_name, AcctSession.nas_id,
        AcctSession.session_id, AcctSession.framed_ip, AcctSession.unique_id,
        AcctSession.nas_identity).where(AcctSession.subscriber_id.in_(ids),
                                        AcctSession.stopped_at.is_(None))).all()
    out = []
    for sid, user, nas_id, asid, ip, uid, nas_identity in rows:
        try:
            nas_ip = str(ipaddress.ip_address(nas_identity))
        except ValueError:
            nas_ip = None
        out.append(LiveSession(subscriber_id=sid, user_name=user, nas_id=nas_id,
                               acct_session_id=asid, framed_ip=ip, source_id=uid,
                               nas_ip=nas_ip))
    return out


def make_billing_loop(config: Config, dbpool: Any, reactor: Any, *,
                      live_sessions: Any = "accounting", on_session_gone: Any = None,
                      captive_attributes: list[tuple[str, object]] | None = None,
                      batch: int = 5000) -> tuple[Any, Any]:
    """(BillingLoop, CoaDisconnector) wired to accounting's live sessions when available."""
    from aaa.coa import CoaDisconnector
    from aaa.dictionary import load_dictionary
    from billing.loop import BillingLoop

    if live_sessions == "accounting":
        try:
            import accounting.models  # noqa: F401
            live_sessions = thd_live_sessions_from_accounting
        except ImportError:
            live_sessions = None
    coa = CoaDisconnector.from_config(config, dbpool, reactor, load_dictionary(),
                                      captive_attributes)
    loop = BillingLoop(config, dbpool, coa, live_sessions=live_sessions,
                       on_session_gone=on_session_gone, captive=bool(captive_attributes),
                       batch=batch)
    return loop, coa
