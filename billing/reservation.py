"""Online charging: hold a slice of money per session, never spend the same money twice.

The model of CGRateS's debit interval and Diameter Gy. At Access-Request the
subscriber's account row is locked, the money *available* is computed as
``balance + credit_limit - money already held by the account's other
sessions``, and a slice (``billing.reserve_seconds`` of time and
``billing.reserve_octets`` of traffic at the current band's prices) is held
for the new session. Session-Timeout is what the available money buys at the
tariff's time prices from now (walking the bands), so a lone session stops
exactly when its money does even if no Disconnect ever arrives. On each
Interim-Update the charging pass (billing.charging) charges what was used and
holds the next slice under the same lock; when it cannot, the session is
marked to be cut and the loop disconnects it. A second concurrent session
only ever sees money the first does not hold.

Calls: the PBX's Access-Request gets the longest call the available money
allows at the destination's rate (Session-Timeout and h323-credit-time), and
the whole cost of that call is held, so a second call cannot spend it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.accounts import (
    charges_usage,
    credit_limit,
    ensure_account,
    out_of_money,
    reserved_total,
    settle_status,
)
from billing.models import (
    HOLDING_STATES,
    AccountStatus,
    AllowanceUsage,
    BillingAccount,
    ChargingSession,
    ChargingState,
)
from billing.money import round_to_minor
from billing.rating import (
    call_cost_micro,
    call_seconds_affordable,
    octets_affordable,
    seconds_affordable,
    slice_cost,
    utc_ts,
)
from billing.tariff_store import thd_load_tariff, thd_voice_rate
from billing.tariffs import AfterAllowance, Period, Tariff
from core.db.base import utcnow

MIN_HOLD_SECONDS = 120


class Refusal:
    NO_BALANCE = "no-balance"
    ALLOWANCE = "allowance-used-up"
    NO_RATE = "no-rate"


MESSAGES = {
    Refusal.NO_BALANCE: "Insufficient balance",
    Refusal.ALLOWANCE: "Included allowance used up",
    Refusal.NO_RATE: "No rate for this destination",
}


@dataclass(frozen=True)
class Grant:
    """What billing says about one Access-Request."""

    ok: bool
    refusal: str | None = None
    session_timeout: int | None = None
    reserved: int = 0
    charging_session_id: int | None = None
    throttle_rate_limit: str | None = None
    call_prefix: str | None = None
    # Octets (in + out) the session may use on the money available now: the NAS enforces it
    # where its vendor has a quota attribute (aaa.billing_hook); None = traffic is free.
    octet_quota: int | None = None

    @property
    def message(self) -> str | None:
        return MESSAGES.get(self.refusal or "")


@dataclass(frozen=True)
class SessionRequest:
    subscriber_id: int
    plan_id: int | None
    user_name: str
    nas_id: int | None = None
    acct_session_id: str | None = None
    framed_ip: str | None = None
    destination: str | None = None  # set for calls


def period_key(tariff: Tariff, when: datetime, period: Period) -> str:
    local = when.astimezone(tariff.zone)
    return local.strftime("%Y-%m") if period is Period.MONTH else local.strftime("%Y-%m-%d")


def allowance_state(session: Session, account_id: int, tariff: Tariff,
                    now: datetime) -> tuple[bool, bool]:
    """(exhausted, after-action applies) for the current period of the plan's allowance."""
    a = tariff.allowance
    if a is None:
        return False, False
    row = session.get(AllowanceUsage, (account_id, period_key(tariff, now, a.period)))
    used_s, used_o = (row.seconds, row.octets) if row else (0, 0)
    exhausted = bool((a.seconds and used_s >= a.seconds) or (a.octets and used_o >= a.octets))
    return exhausted, exhausted and a.after is not AfterAllowance.CHARGE


def _existing_hold(session: Session, req: SessionRequest) -> ChargingSession | None:
    """The same session asking again (NAS retry with a new Identifier): reuse its hold."""
    if req.nas_id is None or not req.acct_session_id:
        return None
    return session.scalars(select(ChargingSession).where(
        ChargingSession.nas_id == req.nas_id,
        ChargingSession.acct_session_id == req.acct_session_id,
        ChargingSession.subscriber_id == req.subscriber_id,
        ChargingSession.state.in_(HOLDING_STATES))).first()


def thd_reserve(session: Session, req: SessionRequest, currency: str, reserve_seconds: int,
                reserve_octets: int, now: datetime | None = None,
                grant: str = "balance") -> Grant:
    """Decide an Access-Request and hold its slice; the account row is locked throughout.

    ``grant="balance"``: Session-Timeout = what all available money buys;
    ``grant="slice"``: Session-Timeout = the slice (for NASes that re-authorise,
    with Termination-Action = RADIUS-Request).
    """
    now = now or utcnow()
    tariff = thd_load_tariff(session, req.plan_id) if req.plan_id else None
    if req.destination:
        return _reserve_call(session, req, tariff, currency, now)
    if tariff is None:
        return Grant(ok=True)  # a plan without prices: billing has nothing to say
    account = ensure_account(session, req.subscriber_id, currency)
    limit = credit_limit(account, tariff)
    if account.status == AccountStatus.BLOCKED.value:
        settle_status(session, account, tariff, "re-checked at login", now)
        if account.status == AccountStatus.BLOCKED.value:
            return Grant(ok=False, refusal=Refusal.NO_BALANCE)
    throttle = None
    _exhausted, applies = allowance_state(session, account.id, tariff, now)
    if applies and tariff.allowance is not None:
        if tariff.allowance.after is AfterAllowance.CUTOFF:
            return Grant(ok=False, refusal=Refusal.ALLOWANCE)
        throttle = tariff.allowance.throttle_rate_limit
    if not charges_usage(tariff):
        if out_of_money(account.balance, limit, tariff):
            return Grant(ok=False, refusal=Refusal.NO_BALANCE)
        return Grant(ok=True, throttle_rate_limit=throttle)
    hold = _existing_hold(session, req)
    others = reserved_total(session, account.id, exclude_id=hold.id if hold else None)
    available = account.balance + limit - others
    if available <= 0:
        return Grant(ok=False, refusal=Refusal.NO_BALANCE)
    at = utc_ts(now)
    affordable = seconds_affordable(tariff, available, at, account.currency)
    if affordable is not None and affordable <= 0:
        return Grant(ok=False, refusal=Refusal.NO_BALANCE)
    amount = min(slice_cost(tariff, at, reserve_seconds, reserve_octets, account.currency),
                 available)
    timeout = affordable
    if grant == "slice" and affordable is not None:
        timeout = min(reserve_seconds, affordable)
    quota = octets_affordable(tariff, available, at, account.currency)
    if quota is not None and quota <= 0:
        return Grant(ok=False, refusal=Refusal.NO_BALANCE)
    if grant == "slice" and quota is not None:
        quota = min(reserve_octets, quota)
    if hold is None:
        hold = ChargingSession(account_id=account.id, subscriber_id=req.subscriber_id,
                               state=ChargingState.RESERVED.value, nas_id=req.nas_id,
                               acct_session_id=req.acct_session_id, user_name=req.user_name,
                               framed_ip=req.framed_ip, reserved=0, charged=0, rating={},
                               throttled=throttle is not None, created_at=now)
        session.add(hold)
    hold.reserved = amount
    hold.grant_seconds = timeout
    hold.expires_at = now + timedelta(seconds=max(2 * reserve_seconds, MIN_HOLD_SECONDS))
    session.flush()
    return Grant(ok=True, session_timeout=timeout, reserved=amount,
                 charging_session_id=hold.id, throttle_rate_limit=throttle, octet_quota=quota)


def _reserve_call(session: Session, req: SessionRequest, tariff: Tariff | None, currency: str,
                  now: datetime) -> Grant:
    assert req.destination is not None
    if req.plan_id is None:
        return Grant(ok=False, refusal=Refusal.NO_RATE)
    rate = thd_voice_rate(session, req.plan_id, req.destination)
    if rate is None:
        return Grant(ok=False, refusal=Refusal.NO_RATE)
    account = ensure_account(session, req.subscriber_id, currency)
    limit = credit_limit(account, tariff)
    if account.status == AccountStatus.BLOCKED.value:
        settle_status(session, account, tariff, "re-checked at call", now)
        if account.status == AccountStatus.BLOCKED.value:
            return Grant(ok=False, refusal=Refusal.NO_BALANCE, call_prefix=rate.prefix)
    hold = _existing_hold(session, req)
    others = reserved_total(session, account.id, exclude_id=hold.id if hold else None)
    available = account.balance + limit - others
    seconds = call_seconds_affordable(rate, available, account.currency)
    if seconds <= 0:
        return Grant(ok=False, refusal=Refusal.NO_BALANCE, call_prefix=rate.prefix)
    amount = min(available, round_to_minor(call_cost_micro(rate, seconds) / 10**6,
                                           account.currency))
    if hold is None:
        hold = ChargingSession(account_id=account.id, subscriber_id=req.subscriber_id,
                               state=ChargingState.RESERVED.value, nas_id=req.nas_id,
                               acct_session_id=req.acct_session_id, user_name=req.user_name,
                               destination=req.destination, reserved=0, charged=0, rating={},
                               throttled=False, created_at=now)
        session.add(hold)
    hold.reserved = amount
    hold.grant_seconds = seconds
    hold.expires_at = now + timedelta(seconds=seconds + MIN_HOLD_SECONDS)
    session.flush()
    return Grant(ok=True, session_timeout=seconds, reserved=amount, charging_session_id=hold.id,
                 call_prefix=rate.prefix)


def thd_release(session: Session, charging_session_id: int) -> None:
    """Give back a hold whose Access-Request ended in a reject after billing said yes."""
    cs = session.get(ChargingSession, charging_session_id)
    if cs is not None and cs.state == ChargingState.RESERVED.value:
        session.scalars(select(BillingAccount).where(BillingAccount.id == cs.account_id)
                        .with_for_update()).one()
        cs.state = ChargingState.EXPIRED.value
        cs.reserved = 0


def thd_expire_holds(session: Session, now: datetime | None = None,
                     silent_after: timedelta = timedelta(seconds=1200),
                     live_source: object | None = None, batch: int = 1000) -> int:
    """Give back money held for sessions that never started, went silent or are gone.

    A hold never claimed by usage lapses at its ``expires_at``; an active
    session with no usage for ``silent_after`` (accounting's stale window) is
    closed; with a live-session source, an active session its NAS no longer has
    is closed as soon as its last usage is two minutes old.
    """
    now = now or utcnow()
    expired = 0
    lapsed = session.scalars(select(ChargingSession).where(
        ChargingSession.state == ChargingState.RESERVED.value,
        ChargingSession.expires_at < now).order_by(ChargingSession.account_id)
        .limit(batch)).all()
    for cs in lapsed:
        _lock_for(session, cs)
        cs.state, cs.reserved = ChargingState.EXPIRED.value, 0
        expired += 1
    silent = session.scalars(select(ChargingSession).where(
        ChargingSession.state == ChargingState.ACTIVE.value,
        ChargingSession.last_usage_at < now - min(silent_after, timedelta(seconds=120)))
        .order_by(ChargingSession.account_id).limit(batch)).all()
    live_ids: set[str] | None = None
    if live_source is not None and silent:
        live = live_source(session, sorted({cs.subscriber_id for cs in silent}))  # type: ignore[operator]
        live_ids = {ls.source_id for ls in live if ls.source_id}
    for cs in silent:
        assert cs.last_usage_at is not None
        gone = live_ids is not None and cs.source_id not in live_ids
        if gone or cs.last_usage_at < now - silent_after:
            _lock_for(session, cs)
            cs.state, cs.reserved = ChargingState.CLOSED.value, 0
            expired += 1
    return expired


def _lock_for(session: Session, cs: ChargingSession) -> None:
    session.scalars(select(BillingAccount.id).where(BillingAccount.id == cs.account_id)
                    .with_for_update()).one()
