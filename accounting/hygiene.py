"""Session hygiene: closing sessions the NAS went silent about, and counting live ones.

A session is live while it is open and its stale deadline (last heard of +
``stale_after_intervals`` x its Interim-Update interval) has not passed.
Simultaneous-use counts live sessions only, so a session whose Stop was lost
(a zombie) stops counting the moment it is overdue, even before the sweeper
has closed it: a subscriber is never locked out by a NAS that forgot them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.orm import Session

from accounting.models import AcctCall, AcctSession
from accounting.records import ClosedBy
from accounting.store import STALE_CAUSE

DEFAULT_CALL_AFTER = timedelta(minutes=240)  # [accounting] stale_call_minutes


def close_stale_statement(now: datetime) -> Update:
    """Every open session whose deadline passed, closed as ended when last heard of."""
    return (update(AcctSession)
            .where(AcctSession.stale_deadline < now)
            .values(stopped_at=AcctSession.last_seen_at, stale_deadline=None,
                    closed_by=ClosedBy.STALE.value, terminate_cause=STALE_CAUSE)
            .execution_options(synchronize_session=False))


def close_stale_calls_statement(now: datetime, call_after: timedelta) -> Update:
    """Every open call not heard of for ``call_after``, closed when last heard of.

    Calls have no Interim-Update contract (most voice gateways send none), so
    the limit is one fixed age (``[accounting] stale_call_minutes``); the index
    (stopped_at, last_seen_at) finds the open ones without a scan. The cause
    is only filled in when the gateway gave none.
    """
    return (update(AcctCall)
            .where(AcctCall.stopped_at.is_(None), AcctCall.last_seen_at < now - call_after)
            .values(stopped_at=AcctCall.last_seen_at,
                    disconnect_cause=func.coalesce(AcctCall.disconnect_cause, STALE_CAUSE))
            .execution_options(synchronize_session=False))


def thd_close_stale(session: Session, now: datetime,
                    call_after: timedelta | None = DEFAULT_CALL_AFTER) -> int:
    """Stale sessions and (unless ``call_after`` is None) stale calls; returns how many."""
    closed = int(session.execute(close_stale_statement(now)).rowcount)  # type: ignore[attr-defined]
    if call_after is not None:
        closed += int(session.execute(  # type: ignore[attr-defined]
            close_stale_calls_statement(now, call_after)).rowcount)
    return closed


GONE_CAUSE = "Session-Context-Not-Found"


def thd_close_gone_session(session: Session, nas_id: int | None, acct_session_id: str,
                           now: datetime) -> int:
    """Close an open session the NAS says it does not have (RFC 5176 Error-Cause 503).

    Called through billing's ``on_session_gone`` after a cut-off: the session
    will never send a Stop, and leaving it open would keep counting it live.
    """
    if nas_id is None or not acct_session_id:
        return 0
    result = session.execute(
        update(AcctSession)
        .where(AcctSession.nas_id == nas_id, AcctSession.session_id == acct_session_id,
               AcctSession.stopped_at.is_(None))
        .values(stopped_at=now, stale_deadline=None, closed_by=ClosedBy.NAS_GONE.value,
                terminate_cause=GONE_CAUSE)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_live_statement(subscriber_id: int, now: datetime) -> Select[Any]:
    """Open, not overdue sessions of one subscriber (index subscriber_id, stale_deadline)."""
    return (select(func.count()).select_from(AcctSession)
            .where(AcctSession.subscriber_id == subscriber_id,
                   AcctSession.stale_deadline > now))


def thd_count_live_sessions(session: Session, subscriber_id: int, now: datetime) -> int:
    return int(session.execute(count_live_statement(subscriber_id, now)).scalar_one())
