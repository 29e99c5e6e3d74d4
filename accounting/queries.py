"""Reading sessions and calls for the CLI (and later the web admin).

Listings read the accounting table alone, newest first, through the index
that matches the filter (subscriber: ``(subscriber_id, started_at)``; NAS:
``(nas_id, stopped_at)`` or ``(nas_id, started_at)``; otherwise
``(started_at)``), then look up the few logins and NAS names they show in a
second query, so the cost is the page size, not the table size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from accounting.models import AcctCall, AcctSession
from core.db.models import Nas, Subscriber
from core.errors import NotFound


@dataclass(frozen=True)
class SessionFilter:
    online: bool = False
    subscriber: str | None = None  # login
    nas: str | None = None  # NAS name
    since: datetime | None = None
    limit: int = 50
    offset: int = 0
    reseller_id: int | None = None  # only this reseller's subscribers (a scoped caller)


@dataclass(frozen=True)
class CallFilter:
    subscriber: str | None = None
    nas: str | None = None
    since: datetime | None = None
    caller: str | None = None
    callee: str | None = None
    limit: int = 50
    offset: int = 0
    reseller_id: int | None = None


@dataclass(frozen=True)
class SessionInfo:
    id: int
    unique_id: str
    login: str
    subscriber: str | None
    nas: str | None
    nas_identity: str
    session_id: str
    state: str  # online | overdue | closed
    started_at: datetime
    stopped_at: datetime | None
    last_seen_at: datetime
    session_time: int
    input_octets: int
    output_octets: int
    input_packets: int
    output_packets: int
    framed_ip: str | None
    framed_ipv6_address: str | None
    framed_ipv6_prefix: str | None
    delegated_ipv6_prefix: str | None
    calling_station_id: str | None
    called_station_id: str | None
    nas_port: int | None
    nas_port_id: str | None
    nas_port_type: str | None
    interim_interval: int
    stale_deadline: datetime | None
    closed_by: str | None
    terminate_cause: str | None
    start_seen: bool
    multi_session_id: str | None


@dataclass(frozen=True)
class CallInfo:
    id: int
    unique_id: str
    login: str
    subscriber: str | None
    nas: str | None
    nas_identity: str
    session_id: str
    call_id: str | None
    conf_id: str | None
    caller: str | None
    callee: str | None
    leg: str | None
    billable: bool
    state: str  # active | ended
    started_at: datetime
    stopped_at: datetime | None
    setup_time: datetime | None
    connect_time: datetime | None
    disconnect_time: datetime | None
    duration: int
    disconnect_cause: str | None


def _subscriber_id(session: Session, login: str) -> int:
    found = session.scalar(select(Subscriber.id).where(Subscriber.login == login))
    if found is None:
        raise NotFound(f"no subscriber with login {login!r}")
    return int(found)


def _nas_id(session: Session, name: str) -> int:
    found = session.scalar(select(Nas.id).where(Nas.name == name))
    if found is None:
        raise NotFound(f"no NAS named {name!r}")
    return int(found)


def _names(session: Session, rows: Sequence[Any]) -> tuple[dict[int, str], dict[int, str]]:
    sub_ids = {r["subscriber_id"] for r in rows if r["subscriber_id"] is not None}
    nas_ids = {r["nas_id"] for r in rows if r["nas_id"] is not None}
    subs: dict[int, str] = {}
    nases: dict[int, str] = {}
    if sub_ids:
        subs = {i: n for i, n in session.execute(
            select(Subscriber.id, Subscriber.login).where(Subscriber.id.in_(sub_ids)))}
    if nas_ids:
        nases = {i: n for i, n in session.execute(
            select(Nas.id, Nas.name).where(Nas.id.in_(nas_ids)))}
    return subs, nases


def session_list_statement(session: Session, f: SessionFilter) -> Select[Any]:
    """The listing query (exposed so tests can EXPLAIN exactly what runs)."""
    t = AcctSession
    stmt = select(AcctSession.__table__)
    if f.subscriber is not None:
        stmt = stmt.where(t.subscriber_id == _subscriber_id(session, f.subscriber))
    if f.nas is not None:
        stmt = stmt.where(t.nas_id == _nas_id(session, f.nas))
    if f.online:
        stmt = stmt.where(t.stopped_at.is_(None))
    if f.since is not None:
        stmt = stmt.where(t.started_at >= f.since)
    if f.reseller_id is not None:
        stmt = stmt.where(t.subscriber_id.in_(_reseller_subscribers(f.reseller_id)))
    return (stmt.order_by(t.started_at.desc(), t.id.desc()).offset(max(0, f.offset))
            .limit(max(1, f.limit)))


def _reseller_subscribers(reseller_id: int) -> Any:
    return select(Subscriber.id).where(Subscriber.reseller_id == reseller_id)


def _session_info(r: Any, subs: dict[int, str], nases: dict[int, str],
                  now: datetime) -> SessionInfo:
    if r["stopped_at"] is not None:
        state = "closed"
    elif r["stale_deadline"] is not None and r["stale_deadline"] <= now:
        state = "overdue"
    else:
        state = "online"
    return SessionInfo(
        id=r["id"], unique_id=r["unique_id"], login=r["user_name"],
        subscriber=subs.get(r["subscriber_id"]), nas=nases.get(r["nas_id"]),
        nas_identity=r["nas_identity"], session_id=r["session_id"], state=state,
        started_at=r["started_at"], stopped_at=r["stopped_at"],
        last_seen_at=r["last_seen_at"], session_time=r["session_time"],
        input_octets=r["input_octets"], output_octets=r["output_octets"],
        input_packets=r["input_packets"], output_packets=r["output_packets"],
        framed_ip=r["framed_ip"], framed_ipv6_address=r["framed_ipv6_address"],
        framed_ipv6_prefix=r["framed_ipv6_prefix"],
        delegated_ipv6_prefix=r["delegated_ipv6_prefix"],
        calling_station_id=r["calling_station_id"], called_station_id=r["called_station_id"],
        nas_port=r["nas_port"], nas_port_id=r["nas_port_id"], nas_port_type=r["nas_port_type"],
        interim_interval=r["interim_interval"], stale_deadline=r["stale_deadline"],
        closed_by=r["closed_by"], terminate_cause=r["terminate_cause"],
        start_seen=bool(r["start_seen"]), multi_session_id=r["multi_session_id"])


def thd_list_sessions(session: Session, f: SessionFilter, now: datetime) -> list[SessionInfo]:
    rows = list(session.execute(session_list_statement(session, f)).mappings())
    subs, nases = _names(session, rows)
    return [_session_info(r, subs, nases, now) for r in rows]


def _by_id_or_unique(table: Any, ident: str) -> Any:
    if ident.isdigit():
        return select(table).where(table.c.id == int(ident))
    return select(table).where(table.c.unique_id == ident)


def thd_show_session(session: Session, ident: str, now: datetime) -> SessionInfo:
    """One session by its numeric id or its unique id."""
    row = session.execute(_by_id_or_unique(AcctSession.__table__, ident)).mappings().first()
    if row is None:
        raise NotFound(f"no session {ident!r}")
    subs, nases = _names(session, [row])
    return _session_info(row, subs, nases, now)


def call_list_statement(session: Session, f: CallFilter) -> Select[Any]:
    t = AcctCall
    stmt = select(AcctCall.__table__)
    if f.subscriber is not None:
        stmt = stmt.where(t.subscriber_id == _subscriber_id(session, f.subscriber))
    if f.nas is not None:
        stmt = stmt.where(t.nas_id == _nas_id(session, f.nas))
    if f.since is not None:
        stmt = stmt.where(t.started_at >= f.since)
    if f.caller is not None:
        stmt = stmt.where(t.caller == f.caller)
    if f.callee is not None:
        stmt = stmt.where(t.callee.startswith(f.callee, autoescape=True))
    if f.reseller_id is not None:
        stmt = stmt.where(t.subscriber_id.in_(_reseller_subscribers(f.reseller_id)))
    return (stmt.order_by(t.started_at.desc(), t.id.desc()).offset(max(0, f.offset))
            .limit(max(1, f.limit)))


def _call_info(r: Any, subs: dict[int, str], nases: dict[int, str]) -> CallInfo:
    return CallInfo(
        id=r["id"], unique_id=r["unique_id"], login=r["user_name"],
        subscriber=subs.get(r["subscriber_id"]), nas=nases.get(r["nas_id"]),
        nas_identity=r["nas_identity"], session_id=r["session_id"], call_id=r["call_id"],
        conf_id=r["conf_id"], caller=r["caller"], callee=r["callee"], leg=r["leg"],
        billable=bool(r["billable"]), state="ended" if r["stopped_at"] else "active",
        started_at=r["started_at"], stopped_at=r["stopped_at"], setup_time=r["setup_time"],
        connect_time=r["connect_time"], disconnect_time=r["disconnect_time"],
        duration=r["duration"], disconnect_cause=r["disconnect_cause"])


def thd_list_calls(session: Session, f: CallFilter) -> list[CallInfo]:
    rows = list(session.execute(call_list_statement(session, f)).mappings())
    subs, nases = _names(session, rows)
    return [_call_info(r, subs, nases) for r in rows]


def thd_show_call(session: Session, ident: str) -> CallInfo:
    row = session.execute(_by_id_or_unique(AcctCall.__table__, ident)).mappings().first()
    if row is None:
        raise NotFound(f"no call {ident!r}")
    subs, nases = _names(session, [row])
    return _call_info(row, subs, nases)

