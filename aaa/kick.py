"""Disconnect live sessions on an operator's word: a block, a disable, or an explicit kick.

Billing cuts off sessions whose money runs out; this is the other half. A
subscriber an operator blocks or disables must not stay online until the
session ends by itself (a PPPoE session can live for weeks), so the CLI
sends each of the subscriber's live sessions an RFC 5176 Disconnect-Request
through the same sender billing uses (:class:`aaa.coa.CoaDisconnector`), and
reports what each NAS answered. A NAK with Error-Cause 503 means the NAS no
longer has the session: its record is closed here, since no Stop will come.
An ACK leaves the record open: the NAS's own Accounting-Stop closes it with
the final counters.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from twisted.internet import defer

from aaa.billing_hook import thd_live_sessions_from_accounting
from accounting.hygiene import thd_close_gone_session
from accounting.models import AcctSession
from billing.cutoff import CutOutcome, CutResult, LiveSession, describe
from core.db.base import utcnow
from core.db.models import Subscriber
from core.errors import NotFound


@dataclass(frozen=True)
class KickResult:
    """What one NAS answered for one session."""

    session: LiveSession
    result: CutResult

    @property
    def ended(self) -> bool:
        """The session is gone from the NAS (ACK, or 503: it was already gone)."""
        return self.result.outcome in (CutOutcome.ACK, CutOutcome.GONE)

    def as_dict(self) -> dict[str, Any]:
        return {"session": describe(self.session),
                "acct_session_id": self.session.acct_session_id,
                "outcome": self.result.outcome.value,
                "error_cause": self.result.error_cause,
                "detail": self.result.detail}


def thd_live_sessions_of(session: Session, login: str) -> list[LiveSession]:
    """Every open session of one subscriber; NotFound if there is no such login."""
    sub_id = session.scalar(select(Subscriber.id).where(Subscriber.login == login))
    if sub_id is None:
        raise NotFound(f"no subscriber {login!r}")
    return thd_live_sessions_from_accounting(session, [sub_id])


def thd_live_session(session: Session, ident: str) -> LiveSession:
    """One open session by its numeric id (as `session list` shows it) or its unique id."""
    cond = AcctSession.unique_id == ident
    if ident.isdigit():
        cond = or_(cond, AcctSession.id == int(ident))
    row = session.execute(select(
        AcctSession.subscriber_id, AcctSession.user_name, AcctSession.nas_id,
        AcctSession.session_id, AcctSession.framed_ip, AcctSession.unique_id,
        AcctSession.nas_identity, AcctSession.stopped_at).where(cond)).first()
    if row is None:
        raise NotFound(f"no session {ident!r}")
    if row.stopped_at is not None:
        raise NotFound(f"session {ident!r} has already ended")
    try:
        nas_ip: str | None = str(ipaddress.ip_address(row.nas_identity))
    except ValueError:
        nas_ip = None
    return LiveSession(subscriber_id=row.subscriber_id or 0, user_name=row.user_name,
                       nas_id=row.nas_id, acct_session_id=row.session_id,
                       framed_ip=row.framed_ip, source_id=row.unique_id, nas_ip=nas_ip)


async def disconnect_sessions(dbpool: Any, sender: Any,
                              sessions: Sequence[LiveSession]) -> list[KickResult]:
    """Send every Disconnect-Request at once; close the records the NAS says are gone."""
    results: list[CutResult] = await defer.gatherResults(
        [defer.maybeDeferred(sender.disconnect, s) for s in sessions], consumeErrors=True)
    out = []
    for live, result in zip(sessions, results, strict=True):
        if result.outcome is CutOutcome.GONE and live.acct_session_id:
            await dbpool.run(thd_close_gone_session, live.nas_id, live.acct_session_id,
                             utcnow())
        out.append(KickResult(live, result))
    return out
