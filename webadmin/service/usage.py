"""Sessions, calls and disconnects through the service layer, scoped to a reseller's subscribers.

A Disconnect-Request is network I/O, so it is two steps: ``thd_disconnect_targets``
(permission, scope and the audit row, in one transaction) finds the live
sessions; the face then sends them with ``aaa.kick.disconnect_sessions``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aaa import kick
from accounting import queries
from accounting.models import AcctCall, AcctSession
from billing.cutoff import LiveSession, describe
from billing.models import AccountStatus, BillingAccount
from billing.usage import UsageDeltaRow as UsageDelta
from core.db.base import utcnow
from core.db.models import Subscriber
from core.errors import NotFound
from webadmin.roles import Caller
from webadmin.service import audit, scope


def thd_list_sessions(session: Session, caller: Caller,
                      f: queries.SessionFilter) -> list[queries.SessionInfo]:
    caller.require("session.read")
    if f.subscriber is not None:
        scope.subscriber(session, caller, f.subscriber)
    if caller.scoped:
        f = replace(f, reseller_id=caller.reseller_id)
    return queries.thd_list_sessions(session, f, utcnow())


def _session_in_scope(session: Session, caller: Caller, table: Any, ident: str,
                      what: str) -> None:
    if not caller.scoped:
        return
    cond = table.unique_id == ident
    if ident.isdigit():
        cond = cond | (table.id == int(ident))
    sub_id = session.scalar(select(table.subscriber_id).where(cond))
    rid = session.scalar(select(Subscriber.reseller_id).where(Subscriber.id == sub_id)) \
        if sub_id is not None else None
    if rid != caller.reseller_id:
        raise NotFound(f"no {what} {ident!r}")


def thd_show_session(session: Session, caller: Caller, ident: str) -> queries.SessionInfo:
    caller.require("session.read")
    _session_in_scope(session, caller, AcctSession, ident, "session")
    return queries.thd_show_session(session, ident, utcnow())


def thd_list_calls(session: Session, caller: Caller,
                   f: queries.CallFilter) -> list[queries.CallInfo]:
    caller.require("call.read")
    if f.subscriber is not None:
        scope.subscriber(session, caller, f.subscriber)
    if caller.scoped:
        f = replace(f, reseller_id=caller.reseller_id)
    return queries.thd_list_calls(session, f)


def thd_show_call(session: Session, caller: Caller, ident: str) -> queries.CallInfo:
    caller.require("call.read")
    _session_in_scope(session, caller, AcctCall, ident, "call")
    return queries.thd_show_call(session, ident)


def thd_disconnect_targets(session: Session, caller: Caller, login: str | None = None,
                           session_ident: str | None = None) -> list[LiveSession]:
    """The live sessions to disconnect (one by id, or all of a login), audited as asked."""
    caller.require("session.disconnect")
    if login is not None:
        scope.subscriber(session, caller, login)
        targets = kick.thd_live_sessions_of(session, login)
        key = login
    else:
        assert session_ident is not None
        _session_in_scope(session, caller, AcctSession, session_ident, "session")
        targets = [kick.thd_live_session(session, session_ident)]
        key = session_ident
    audit.record(session, caller, "session.disconnect", "session", key, None,
                 {"sessions": [describe(t) for t in targets]})
    return targets


def thd_billing_state(session: Session, caller: Caller) -> dict[str, Any]:
    """What the billing loop has left to do, from the database (any node can answer)."""
    caller.require("billing.read")
    pending = session.scalar(select(func.count()).select_from(UsageDelta)
                             .where(UsageDelta.rated.is_(False)))
    oldest = session.scalar(select(func.min(UsageDelta.created_at))
                            .where(UsageDelta.rated.is_(False)))
    blocked = session.scalar(select(func.count()).select_from(BillingAccount)
                             .where(BillingAccount.status == AccountStatus.BLOCKED.value))
    return {"pending_usage": int(pending or 0), "oldest_pending_at": oldest,
            "blocked_accounts": int(blocked or 0)}


def thd_billing_run_started(session: Session, caller: Caller) -> None:
    """Check ``billing.run`` and audit that a pass was asked for (the pass runs after)."""
    caller.require("billing.run")
    audit.record(session, caller, "billing.run", "billing", "pass", None, {"requested": True})
