"""Cut-off: who must be disconnected (or slowed down), and the bookkeeping of each attempt.

Billing never imports aaa: the action is the :class:`Disconnector` protocol,
filled at wiring with aaa.coa's RFC 5176 sender. Which sessions are live is
accounting's knowledge: a :data:`LiveSessionSource` (a ``thd_*`` callable
taking subscriber ids) is injected too; without one, billing falls back to
its own charging sessions (which know the NAS and Acct-Session-Id only when
the Access-Request carried it).

Every attempt and every answer (ACK, NAK with its Error-Cause, timeout) is a
``billing_event`` row and a log line; ``radbill account show`` lists them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session
from twisted.internet import defer

from billing.accounts import log_event
from billing.models import (
    HOLDING_STATES,
    AccountStatus,
    BillingAccount,
    ChargingSession,
    ChargingState,
    TariffRow,
)
from billing.tariffs import AfterAllowance
from core.db.base import utcnow
from core.db.models import Subscriber

RESEND_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class LiveSession:
    """A session the NAS still has, with what a Disconnect-Request may need to name it."""

    subscriber_id: int
    user_name: str
    nas_id: int | None
    acct_session_id: str | None
    framed_ip: str | None = None
    source_id: str | None = None  # accounting's unique id of the session (usage source_id)
    nas_ip: str | None = None     # NAS-IP-Address the NAS reported, if any


class CutOutcome(enum.StrEnum):
    ACK = "ack"              # the NAS ended the session (or applied the CoA)
    GONE = "gone"            # NAK, Error-Cause 503: the NAS has no such session
    NAK = "nak"              # refused for another reason
    TIMEOUT = "timeout"      # no answer after every retry
    NO_ROUTE = "no-route"    # unknown NAS, no address or no way to name the session


@dataclass(frozen=True)
class CutResult:
    outcome: CutOutcome
    error_cause: int | None = None
    detail: str = ""


class CutAction(enum.StrEnum):
    DISCONNECT = "disconnect"
    THROTTLE = "throttle"   # CoA with the plan's throttle rate limit
    CAPTIVE = "captive"     # CoA to a "pay first" profile instead of a disconnect
    RESTORE = "restore"     # CoA back to the plan's profile once the account is paid up


#: cut_result of a captive session whose account was unblocked: the next pass restores it.
RESTORE_DUE = "restore-due"
#: restore attempts that did not get an ACK: retried after RESEND_AFTER.
RESTORE_RETRY = ("restore-sent", "restore-nak", "restore-timeout", "restore-no-route")


class Disconnector(Protocol):
    """What billing asks the NAS side to do; aaa.coa implements it."""

    def disconnect(self, session: LiveSession) -> defer.Deferred[CutResult]: ...

    def change(self, session: LiveSession, action: CutAction,
               rate_limit: str | None = None) -> defer.Deferred[CutResult]: ...


LiveSessionSource = Callable[[Session, Sequence[int]], list[LiveSession]]
SessionGone = Callable[[int | None, str | None], object]


def thd_live_from_charging(session: Session, subscriber_ids: Sequence[int]
                           ) -> list[LiveSession]:
    """Fallback source: billing's own holding sessions that know their NAS."""
    if not subscriber_ids:
        return []
    rows = session.scalars(select(ChargingSession).where(
        ChargingSession.subscriber_id.in_(list(subscriber_ids)),
        ChargingSession.state.in_(HOLDING_STATES))).all()
    return [LiveSession(subscriber_id=r.subscriber_id, user_name=r.user_name, nas_id=r.nas_id,
                        acct_session_id=r.acct_session_id, framed_ip=r.framed_ip,
                        source_id=r.source_id) for r in rows if r.nas_id is not None]


@dataclass(frozen=True)
class CutTarget:
    account_id: int
    charging_session_id: int | None
    session: LiveSession
    action: CutAction
    reason: str
    rate_limit: str | None = None


def _match(rows: list[ChargingSession], live: LiveSession) -> ChargingSession | None:
    for r in rows:
        if live.source_id and r.source_id == live.source_id:
            return r
    for r in rows:
        if (r.nas_id is not None and r.nas_id == live.nas_id and r.acct_session_id
                and r.acct_session_id == live.acct_session_id):
            return r
    return None


def thd_block_below_limit(session: Session, now: datetime | None = None) -> list[int]:
    """Safety net: active accounts whose balance is under their limit get blocked now."""
    now = now or utcnow()
    limit = func.coalesce(BillingAccount.credit_limit, TariffRow.credit_limit, 0)
    ids = session.scalars(
        select(BillingAccount.id)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .outerjoin(TariffRow, TariffRow.plan_id == Subscriber.plan_id)
        .where(BillingAccount.status == AccountStatus.ACTIVE.value,
               BillingAccount.balance + limit < 0)).all()
    blocked = []
    for aid in ids:
        account = session.scalars(select(BillingAccount).where(BillingAccount.id == aid)
                                  .with_for_update()
                                  .execution_options(populate_existing=True)).one()
        from billing.accounts import block
        if block(session, account, f"below credit limit (balance {account.balance})", now):
            blocked.append(aid)
    return blocked


def thd_cut_targets(session: Session, live_source: LiveSessionSource | None = None,
                    now: datetime | None = None, resend_after: timedelta = RESEND_AFTER,
                    captive: bool = False) -> list[CutTarget]:
    """Every live session that must be disconnected, moved to captive, or throttled now."""
    now = now or utcnow()
    source = live_source or thd_live_from_charging
    holding = ChargingSession.state.in_(HOLDING_STATES)
    # 1. accounts blocked for money: all their live sessions.
    blocked = session.execute(
        select(BillingAccount.id, BillingAccount.subscriber_id)
        .join(ChargingSession, ChargingSession.account_id == BillingAccount.id)
        .where(BillingAccount.status == AccountStatus.BLOCKED.value, holding)
        .distinct()).all()
    # 2. sessions whose held money ran out; 3. sessions past an allowance.
    short = session.scalars(select(ChargingSession).where(
        holding, ChargingSession.exhausts_at.is_not(None),
        ChargingSession.exhausts_at <= now)).all()
    over = session.execute(
        select(ChargingSession, TariffRow.allowance_after, TariffRow.throttle_rate_limit)
        .join(Subscriber, Subscriber.id == ChargingSession.subscriber_id)
        .join(TariffRow, TariffRow.plan_id == Subscriber.plan_id)
        .where(holding, ChargingSession.throttled.is_(True),
               ChargingSession.cut_requested_at.is_(None))).all()
    accounts: dict[int, int] = {sid: aid for aid, sid in blocked}
    for cs in short:
        accounts.setdefault(cs.subscriber_id, cs.account_id)
    for cs, _after, _rl in over:
        accounts.setdefault(cs.subscriber_id, cs.account_id)
    if not accounts:
        return []
    live = source(session, sorted(accounts))
    rows = session.scalars(select(ChargingSession).where(
        ChargingSession.subscriber_id.in_(sorted(accounts)), holding)).all()
    by_sub: dict[int, list[ChargingSession]] = {}
    for r in rows:
        by_sub.setdefault(r.subscriber_id, []).append(r)
    blocked_subs = {sid for _, sid in blocked}
    short_ids = {cs.id for cs in short}
    over_map = {cs.id: (after, rl) for cs, after, rl in over}
    targets: list[CutTarget] = []
    for ls in live:
        match = _match(by_sub.get(ls.subscriber_id, []), ls)
        if match is not None and match.cut_requested_at is not None and \
                match.cut_requested_at >= now - resend_after:
            continue
        aid = accounts[ls.subscriber_id]
        cut = CutAction.CAPTIVE if captive else CutAction.DISCONNECT
        if ls.subscriber_id in blocked_subs:
            targets.append(CutTarget(aid, match.id if match else None, ls, cut, "out of money"))
        elif match is not None and match.id in short_ids:
            targets.append(CutTarget(aid, match.id, ls, cut, "held money ran out"))
        elif match is not None and match.id in over_map:
            after, rl = over_map[match.id]
            if after == AfterAllowance.THROTTLE.value:
                targets.append(CutTarget(aid, match.id, ls, CutAction.THROTTLE,
                                         "included allowance used up", rl))
            elif after == AfterAllowance.CUTOFF.value:
                targets.append(CutTarget(aid, match.id, ls, CutAction.DISCONNECT,
                                         "included allowance used up"))
    return targets


def mark_restore_due(session: Session, account_id: int) -> int:
    """The account is paid up: its live sessions held in the captive profile get restored.

    Called where an account is unblocked, in that transaction; the billing loop's
    next pass (:func:`thd_restore_targets`) sends each a CoA-Request with the
    plan's attributes. Sessions that were disconnected need nothing: the
    subscriber's next login is accepted.
    """
    result = session.execute(
        update(ChargingSession)
        .where(ChargingSession.account_id == account_id,
               ChargingSession.state.in_(HOLDING_STATES),
               ChargingSession.cut_result.like("captive-%"))
        .values(cut_result=RESTORE_DUE, cut_requested_at=None)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def thd_restore_targets(session: Session, live_source: LiveSessionSource | None = None,
                        now: datetime | None = None,
                        resend_after: timedelta = RESEND_AFTER) -> list[CutTarget]:
    """Captive sessions of accounts that are active again, with their plan's rate limit.

    Found through the index on charging_session(cut_result); a restore that got no ACK
    is tried again after ``resend_after``.
    """
    from core.db.models import Plan

    now = now or utcnow()
    cs = ChargingSession
    due = or_(cs.cut_result == RESTORE_DUE,
              and_(cs.cut_result.in_(RESTORE_RETRY),
                   or_(cs.cut_requested_at.is_(None),
                       cs.cut_requested_at < now - resend_after)))
    rows = session.execute(
        select(cs, Plan.rate_limit)
        .join(BillingAccount, BillingAccount.id == cs.account_id)
        .join(Subscriber, Subscriber.id == cs.subscriber_id)
        .outerjoin(Plan, Plan.id == Subscriber.plan_id)
        .where(due, cs.state.in_(HOLDING_STATES),
               BillingAccount.status == AccountStatus.ACTIVE.value)).all()
    if not rows:
        return []
    source = live_source or thd_live_from_charging
    live = source(session, sorted({r.subscriber_id for r, _ in rows}))
    by_sub: dict[int, list[ChargingSession]] = {}
    for r, _ in rows:
        by_sub.setdefault(r.subscriber_id, []).append(r)
    rate = {r.id: rl for r, rl in rows}
    targets = []
    for ls in live:
        match = _match(by_sub.get(ls.subscriber_id, []), ls)
        if match is not None:
            targets.append(CutTarget(match.account_id, match.id, ls, CutAction.RESTORE,
                                     "paid: back to the plan's profile", rate[match.id]))
    return targets


def thd_mark_requested(session: Session, targets: Sequence[CutTarget],
                       now: datetime | None = None) -> None:
    """Logged before the packets leave, so a crash mid-way still shows what was attempted."""
    now = now or utcnow()
    for t in targets:
        if t.charging_session_id is not None:
            cs = session.get(ChargingSession, t.charging_session_id)
            if cs is not None:
                cs.cut_requested_at = now
        log_event(session, t.account_id, f"{t.action.value}-sent",
                  f"{t.reason}: {describe(t.session)}", now)


def thd_record_result(session: Session, target: CutTarget, result: CutResult,
                      now: datetime | None = None) -> None:
    now = now or utcnow()
    cause = f" Error-Cause {result.error_cause}" if result.error_cause else ""
    log_event(session, target.account_id, f"{target.action.value}-{result.outcome.value}",
              f"{describe(target.session)}{cause} {result.detail}".strip(), now)
    if result.outcome in (CutOutcome.TIMEOUT, CutOutcome.NO_ROUTE):
        from billing.notify import enqueue_admin

        enqueue_admin(session, "disconnect_failed", {
            "account_id": target.account_id, "action": target.action.value,
            "session": describe(target.session), "outcome": result.outcome.value,
            "nas_id": target.session.nas_id, "detail": result.detail}, now)
    if target.charging_session_id is None:
        return
    cs = session.get(ChargingSession, target.charging_session_id)
    if cs is None:
        return
    cs.cut_result = f"{target.action.value}-{result.outcome.value}"[:32]
    if target.action is CutAction.RESTORE:
        if result.outcome is CutOutcome.ACK:
            cs.cut_requested_at = None  # in the plan's profile again: a new cut-off may follow
        elif result.outcome is CutOutcome.GONE:
            cs.state = ChargingState.CLOSED.value
            cs.reserved = 0
        return
    ended = result.outcome in (CutOutcome.ACK, CutOutcome.GONE) and \
        target.action in (CutAction.DISCONNECT, CutAction.CAPTIVE)
    if ended and target.action is CutAction.DISCONNECT:
        cs.state = ChargingState.CLOSED.value
        cs.reserved = 0
    elif result.outcome is CutOutcome.GONE:
        cs.state = ChargingState.CLOSED.value
        cs.reserved = 0


def describe(s: LiveSession) -> str:
    parts = [f"user {s.user_name}"]
    if s.acct_session_id:
        parts.append(f"session {s.acct_session_id}")
    if s.framed_ip:
        parts.append(f"ip {s.framed_ip}")
    parts.append(f"nas {s.nas_id}")
    return ", ".join(parts)
