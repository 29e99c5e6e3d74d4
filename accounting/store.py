"""Writing accounting records: idempotent, order-tolerant, many records per transaction.

Every record is merged into the row its unique id names, by rules that make
the result independent of retransmissions and arrival order:

* counters (octets, packets, session time) only grow; a 32-bit octet counter
  that wraps without Gigawords is carried into the high word, once per wrap
  seen (a newer packet whose total is lower than what is stored);
* a Start sets the real start time once; an Interim-Update or Stop without a
  Start creates the record with the start time the NAS's session time implies;
* the first Stop closes the session for good: an Interim-Update or another
  Stop arriving after it (a NAS bug, a replayed or reordered packet) is
  acknowledged, logged, counted (``radbill_accounting_late_total``) and changes
  nothing, so it can neither add usage nor charge money; a Stop still
  overrides radbill's own guesses (stale or NAS-reboot closing);
* a packet that shows no progress (same or older session time) changes nothing,
  so a re-sent or replayed packet is a no-op and produces no usage delta.

Usage deltas are computed from the stored state before and after a record is
applied and handed to the usage sink in the same transaction.

All records of one group commit are read with one SELECT ... FOR UPDATE and
written with one multi-row upsert per table, so a transaction costs a handful
of statements however many records it carries. The upsert keeps counters
monotonic in SQL too (GREATEST), in case another node wrote the row meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, Update, case, func, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from accounting import rawsql
from accounting import records as R
from accounting.metrics import LATE_RECORDS
from accounting.models import AcctCall, AcctSession
from accounting.records import AcctRecord, AcctStatus, ClosedBy
from billing.usage import UsageDelta, UsageSink
from core.db.base import utcnow
from core.db.handsql import hand_rendered
from core.db.models import Plan, Subscriber

log = logging.getLogger(__name__)

SESSION_TABLE: Table = AcctSession.__table__  # type: ignore[assignment]
CALL_TABLE: Table = AcctCall.__table__  # type: ignore[assignment]

WORD = 1 << 32
MAX_COUNTER = (1 << 63) - 1
NAS_REBOOT_CAUSE = "NAS-Reboot"
STALE_CAUSE = "Stale-Session"

SESSION_COUNTERS = ("input_octets", "output_octets", "input_packets", "output_packets")
SESSION_ATTRIBUTES = ("framed_ip", "framed_ipv6_address", "framed_ipv6_prefix",
                      "delegated_ipv6_prefix", "calling_station_id", "called_station_id",
                      "nas_port", "nas_port_id", "nas_port_type", "multi_session_id")
STRING_WIDTHS = {
    "user_name": R.LEN_LOGIN, "session_id": R.LEN_SESSION_ID, "nas_identity": R.LEN_NAS_IDENTITY,
    "multi_session_id": R.LEN_SESSION_ID, "framed_ip": R.LEN_IP, "framed_ipv6_address": R.LEN_IP,
    "framed_ipv6_prefix": R.LEN_PREFIX, "delegated_ipv6_prefix": R.LEN_PREFIX,
    "calling_station_id": R.LEN_STATION, "called_station_id": R.LEN_STATION,
    "nas_port_id": R.LEN_PORT_ID, "nas_port_type": R.LEN_PORT_TYPE,
    "terminate_cause": R.LEN_CAUSE, "call_id": R.LEN_CALL_ID, "conf_id": R.LEN_CALL_ID,
    "caller": R.LEN_NUMBER, "callee": R.LEN_NUMBER, "leg": R.LEN_LEG,
    "disconnect_cause": R.LEN_CAUSE,
}


@dataclass(frozen=True)
class AcctPolicy:
    """The parts of config.accounting the store needs."""

    stale_after_intervals: int = 3
    default_interim_interval: int = 300
    # Called per record, in arrival order, inside the record's transaction: how
    # other packages follow sessions without reading accounting's tables (pools
    # extends and releases leases this way). Given at wiring time.
    record_hooks: tuple[Callable[[Session, AcctRecord], object], ...] = ()

    def deadline(self, seen: datetime, interval: int) -> datetime:
        return seen + timedelta(seconds=self.stale_after_intervals * interval)


@dataclass(frozen=True)
class ApplyResult:
    key: str  # the stored row's unique id, or nas:<id> for Accounting-On/Off
    action: str  # created | updated | unchanged | closed | late
    closed: int = 0  # sessions and calls closed by an Accounting-On/Off


@dataclass(frozen=True)
class SubscriberRef:
    id: int
    interim_interval: int | None


# -- pure merge rules ------------------------------------------------------------------


def clip(value: Any, width: int) -> Any:
    if isinstance(value, str) and len(value) > width:
        return value[:width]
    return value


def merge_counter(stored: int, new: int | None, newer: bool, exact: bool) -> int:
    """The counter after a packet: never lower; a wrapped 32-bit counter carried over.

    ``exact`` means the packet carried Gigawords, so its total is trusted as is.
    """
    if new is None:
        return stored
    new = min(max(new, 0), MAX_COUNTER)
    if new >= stored:
        return new
    if exact or not newer or new >= WORD:
        return stored
    # No Gigawords and a newer packet with a lower total: the low word wrapped.
    high = stored - stored % WORD
    low = stored % WORD
    candidate = high + new + (WORD if new < low else 0)
    return min(max(candidate, stored), MAX_COUNTER)


def _is_newer(row: dict[str, Any], r: AcctRecord) -> bool:
    """Whether the packet shows progress; a Start never does (it is the beginning)."""
    if r.status == AcctStatus.START:
        return False
    if r.session_time is not None:
        return r.session_time > row["session_time"]
    return bool(r.event_at > row["updated_at"])


def _interval(r: AcctRecord, sub: SubscriberRef | None, policy: AcctPolicy) -> int:
    for candidate in (r.interim_interval, sub.interim_interval if sub else None):
        if candidate and candidate > 0:
            return int(candidate)
    return policy.default_interim_interval


def new_session_row(r: AcctRecord, sub: SubscriberRef | None, policy: AcctPolicy,
                    unique_id: str | None = None) -> dict[str, Any]:
    stop = r.status == AcctStatus.STOP
    session_time = max(r.session_time or 0, 0)
    started = r.event_at if r.status == AcctStatus.START else \
        r.event_at - timedelta(seconds=session_time)
    interval = _interval(r, sub, policy)
    row: dict[str, Any] = {
        "unique_id": unique_id or r.unique_id, "session_key": r.unique_id,
        "nas_id": r.nas_id, "nas_identity": r.nas_identity,
        "subscriber_id": sub.id if sub else None, "user_name": r.user_name,
        "session_id": r.session_id, "started_at": started, "updated_at": r.event_at,
        "stopped_at": r.event_at if stop else None, "last_seen_at": r.received_at,
        "stale_deadline": None if stop else policy.deadline(r.received_at, interval),
        "interim_interval": interval, "start_seen": r.status == AcctStatus.START,
        "session_time": session_time,
        "terminate_cause": r.terminate_cause if stop else None,
        "closed_by": ClosedBy.STOP.value if stop else None,
        "created_at": utcnow(),
    }
    for name in SESSION_COUNTERS:
        row[name] = merge_counter(0, getattr(r, name), True, True)
    for name in SESSION_ATTRIBUTES:
        row[name] = getattr(r, name)
    return row


def merge_session_row(row: dict[str, Any], r: AcctRecord, sub: SubscriberRef | None,
                      policy: AcctPolicy) -> dict[str, Any]:
    """The row after applying ``r``; equal to ``row`` when the packet adds nothing."""
    new = dict(row)
    newer = _is_newer(row, r)
    for name in SESSION_COUNTERS:
        exact = r.gigawords and name.endswith("octets")
        new[name] = merge_counter(row[name], getattr(r, name), newer, exact)
    if r.session_time is not None:
        new["session_time"] = max(row["session_time"], r.session_time)
    for name in SESSION_ATTRIBUTES:
        value = getattr(r, name)
        if value is not None and (newer or row[name] is None):
            new[name] = value
    if new["subscriber_id"] is None and sub is not None:
        new["subscriber_id"] = sub.id
    if r.interim_interval and r.interim_interval > 0:
        new["interim_interval"] = r.interim_interval
    if newer:
        new["updated_at"] = max(row["updated_at"], r.event_at)
        new["last_seen_at"] = max(row["last_seen_at"], r.received_at)

    if r.status == AcctStatus.START and not row["start_seen"]:
        new["start_seen"] = True
        new["started_at"] = r.event_at
        new["last_seen_at"] = max(row["last_seen_at"], r.received_at)
    elif r.status == AcctStatus.STOP:
        if row["closed_by"] != ClosedBy.STOP.value:
            # The NAS's own Stop beats radbill's guess (stale, NAS reboot).
            new["stopped_at"] = max(r.event_at, new["started_at"])
            new["closed_by"] = ClosedBy.STOP.value
            new["terminate_cause"] = r.terminate_cause
            new["updated_at"] = max(new["updated_at"], r.event_at)
        elif new["terminate_cause"] is None and r.terminate_cause is not None:
            new["terminate_cause"] = r.terminate_cause
    elif (r.status == AcctStatus.INTERIM and newer
          and row["closed_by"] == ClosedBy.STALE.value):
        # Closed as stale, but the NAS reports progress: it was alive after all.
        new["stopped_at"] = None
        new["closed_by"] = None
        new["terminate_cause"] = None

    if new["stopped_at"] is None:
        new["stale_deadline"] = policy.deadline(new["last_seen_at"], new["interim_interval"])
    else:
        new["stale_deadline"] = None
    return new


# -- Acct-Session-Id reuse ----------------------------------------------------------------
#
# A NAS that counts session ids from the same start after every reboot sends, for a new
# session, the session key (records.session_unique_id) of an old one. Every row of a key is
# locked, and a record belongs to the newest row that began no later than the record's own
# start (Event-Timestamp or arrival time, minus Acct-Session-Time), unless the record's
# session began after that row ended (a Stop, Accounting-On/Off, stale: then it is a new
# session; except a Start, without Event-Timestamp, for a row that never had one: that is
# its own Start overtaken by the Stop) or, when the NAS sends Event-Timestamp, began more
# than REUSE_TOLERANCE after it (the NAS rebooted without Accounting-On and reused the id).
# The tolerance absorbs the second or two by which Event-Timestamp - Acct-Session-Time moves
# between packets of one session, and NTP steps; a false split would charge a session
# twice, so it is generous.
REUSE_TOLERANCE = timedelta(seconds=300)


def implied_start(r: AcctRecord) -> datetime:
    """When the record's session began, by the record alone."""
    if r.status == AcctStatus.START:
        return r.event_at
    return r.event_at - timedelta(seconds=max(r.session_time or 0, 0))


def pick_session(rows: Sequence[dict[str, Any]], r: AcctRecord) -> dict[str, Any] | None:
    """The stored session ``r`` belongs to, among the rows of its key; None: a new session."""
    if not rows:
        return None
    start = implied_start(r)
    earlier = [row for row in rows if row["started_at"] <= start + REUSE_TOLERANCE]
    if not earlier:
        # Older than every session of the key: with the NAS's own clock that is a session
        # radbill never saw; by arrival time it is more likely a delayed packet.
        return None if r.event_timestamped else min(rows, key=lambda x: x["started_at"])
    row = max(earlier, key=lambda x: x["started_at"])
    if row["stopped_at"] is not None and start > row["stopped_at"]:
        if r.status == AcctStatus.START and not row["start_seen"] and not r.event_timestamped:
            # By arrival time alone, the Start this row never had, overtaken by its Stop.
            return row
        return None
    if r.event_timestamped and start > row["started_at"] + REUSE_TOLERANCE:
        return None
    return row


def new_session_id(r: AcctRecord, rows: Sequence[dict[str, Any]]) -> str:
    """The unique id of a new session: the key alone for the first session of a key without
    Event-Timestamp, else the key and the start second (records.session_row_id)."""
    if not rows and not r.event_timestamped:
        return r.unique_id
    taken = {row["unique_id"] for row in rows}
    start = implied_start(r)
    uid = R.session_row_id(r.unique_id, start)
    while uid in taken:  # two sessions of one key in one second: next second's id
        start += timedelta(seconds=1)
        uid = R.session_row_id(r.unique_id, start)
    return uid


def session_delta(old: dict[str, Any] | None, new: dict[str, Any]) -> UsageDelta | None:
    if new["subscriber_id"] is None:
        return None
    base = old or {"session_time": 0, "input_octets": 0, "output_octets": 0,
                   "updated_at": new["started_at"]}
    seconds = new["session_time"] - base["session_time"]
    octets_in = new["input_octets"] - base["input_octets"]
    octets_out = new["output_octets"] - base["output_octets"]
    if seconds <= 0 and octets_in <= 0 and octets_out <= 0:
        return None
    uid = new["unique_id"]
    return UsageDelta(
        subscriber_id=new["subscriber_id"], source="session", source_id=uid,
        seconds=max(seconds, 0), octets_in=max(octets_in, 0), octets_out=max(octets_out, 0),
        period_start=min(base["updated_at"], new["updated_at"]), period_end=new["updated_at"],
        idempotency_key=f"session:{uid}:{new['session_time']}:{new['input_octets']}:"
                        f"{new['output_octets']}",
        total_seconds=new["session_time"], final=new["closed_by"] == ClosedBy.STOP.value)


def _call_duration(r: AcctRecord) -> int:
    call = r.call
    assert call is not None
    if r.session_time is not None:
        return max(r.session_time, 0)
    if call.connect_time and call.disconnect_time and call.disconnect_time > call.connect_time:
        return int((call.disconnect_time - call.connect_time).total_seconds())
    return 0


def new_call_row(r: AcctRecord, sub: SubscriberRef | None) -> dict[str, Any]:
    call = r.call
    assert call is not None
    duration = _call_duration(r)
    stop = r.status == AcctStatus.STOP
    started = call.connect_time or call.setup_time or \
        r.event_at - timedelta(seconds=duration)
    return {
        "unique_id": r.unique_id, "nas_id": r.nas_id, "nas_identity": r.nas_identity,
        "subscriber_id": sub.id if sub else None, "user_name": r.user_name,
        "session_id": r.session_id, "call_id": call.call_id, "conf_id": call.conf_id,
        "caller": call.caller, "callee": call.callee, "leg": call.leg,
        "billable": call.billable, "setup_time": call.setup_time,
        "connect_time": call.connect_time, "disconnect_time": call.disconnect_time,
        "disconnect_cause": call.disconnect_cause, "duration": duration,
        "started_at": started, "updated_at": r.event_at,
        "stopped_at": (call.disconnect_time or r.event_at) if stop else None,
        "last_seen_at": r.received_at, "created_at": utcnow(),
    }


def merge_call_row(row: dict[str, Any], r: AcctRecord, sub: SubscriberRef | None
                   ) -> dict[str, Any]:
    call = r.call
    assert call is not None
    new = dict(row)
    duration = _call_duration(r)
    newer = duration > row["duration"] or r.event_at > row["updated_at"]
    new["duration"] = max(row["duration"], duration)
    for name in ("call_id", "conf_id", "caller", "callee", "leg", "connect_time"):
        if new[name] is None and getattr(call, name) is not None:
            new[name] = getattr(call, name)
    if call.setup_time is not None and (row["setup_time"] is None
                                        or call.setup_time < row["setup_time"]):
        new["setup_time"] = call.setup_time
    if call.disconnect_time is not None and (row["disconnect_time"] is None
                                             or call.disconnect_time > row["disconnect_time"]):
        new["disconnect_time"] = call.disconnect_time
    if call.disconnect_cause is not None and (row["disconnect_cause"] is None or newer):
        new["disconnect_cause"] = call.disconnect_cause
    if not row["billable"] and call.billable:
        new["billable"] = True
    if new["subscriber_id"] is None and sub is not None:
        new["subscriber_id"] = sub.id
    if newer:
        new["updated_at"] = max(row["updated_at"], r.event_at)
        new["last_seen_at"] = max(row["last_seen_at"], r.received_at)
    if r.status == AcctStatus.STOP and row["stopped_at"] is None:
        new["stopped_at"] = call.disconnect_time or r.event_at
    return new


def call_delta(old: dict[str, Any] | None, new: dict[str, Any]) -> UsageDelta | None:
    if new["subscriber_id"] is None or not new["billable"]:
        return None
    before = old["duration"] if old and old["billable"] else 0
    seconds = new["duration"] - before
    if seconds <= 0:
        return None
    uid = new["unique_id"]
    start = new["connect_time"] or new["started_at"]
    end = new["disconnect_time"] or new["updated_at"]
    return UsageDelta(
        subscriber_id=new["subscriber_id"], source="call", source_id=uid, seconds=seconds,
        octets_in=0, octets_out=0, period_start=min(start, end), period_end=end,
        idempotency_key=f"call:{uid}:{new['duration']}", destination=new["callee"],
        caller=new["caller"], total_seconds=new["duration"],
        final=new["stopped_at"] is not None)


def is_late(row: dict[str, Any] | None, r: AcctRecord) -> bool:
    """A packet for a session its NAS already stopped (a re-sent Stop is only a duplicate)."""
    return row is not None and row["closed_by"] == ClosedBy.STOP.value and \
        r.status in (AcctStatus.INTERIM, AcctStatus.STOP)


def _log_late(row: dict[str, Any], r: AcctRecord) -> None:
    status = AcctStatus(r.status).name
    LATE_RECORDS.labels(status).inc()
    log.info("accounting: %s for session %s of %s (NAS %s) after its Stop; acknowledged, "
             "not applied", status, r.session_id, r.user_name, r.nas_identity)


# -- database side ----------------------------------------------------------------------


def _lookup_subscribers(session: Session, logins: Iterable[str]) -> dict[str, SubscriberRef]:
    wanted = sorted({clip(x, R.LEN_LOGIN) for x in logins if x})
    if not wanted:
        return {}
    if hand_rendered(session):
        return {login: SubscriberRef(sid, interval)
                for sid, login, interval in rawsql.subscribers_by_login(session, wanted)}
    rows = session.execute(
        select(Subscriber.id, Subscriber.login, Plan.interim_interval)
        .outerjoin(Plan, Subscriber.plan_id == Plan.id)
        .where(Subscriber.login.in_(wanted))).all()
    return {login: SubscriberRef(sid, interval) for sid, login, interval in rows}


def lock_statement(table: Table, uids: Sequence[str], column: str = "unique_id"
                   ) -> Select[Any]:
    """The rows of a group commit, locked (sorted ids: concurrent commits lock in one order).

    Calls are found by ``unique_id``, sessions by ``session_key`` (every session of a key)."""
    return select(table).where(table.c[column].in_(sorted(uids))).with_for_update()


def _lock_rows(session: Session, table: Table, uids: Iterable[str],
               column: str = "unique_id") -> dict[str, dict[str, Any]]:
    wanted = list(set(uids))
    if not wanted:
        return {}
    if hand_rendered(session):
        return rawsql.lock_rows(session, table, wanted, column)
    result = session.execute(lock_statement(table, wanted, column))
    return {m["unique_id"]: dict(m) for m in result.mappings()}


def _lock_sessions(session: Session, keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every stored session of each session key, locked."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in _lock_rows(session, SESSION_TABLE, keys, "session_key").values():
        by_key.setdefault(row["session_key"], []).append(row)
    return by_key


def _required(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if not c.nullable and c.name != "id")


REQUIRED = {SESSION_TABLE.name: _required(SESSION_TABLE), CALL_TABLE.name: _required(CALL_TABLE)}
ALL_COLUMNS = {t.name: tuple(c.name for c in t.columns if c.name != "id")
               for t in (SESSION_TABLE, CALL_TABLE)}
NEVER_UPDATED = frozenset({"unique_id", "created_at"})


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]],
            columns: Sequence[str], update: Iterable[str], monotonic: Sequence[str]) -> None:
    """One multi-row INSERT ... ON DUPLICATE KEY UPDATE (ON CONFLICT on SQLite).

    MariaDB's is written out by accounting.rawsql (same SQL, without SQLAlchemy's and
    PyMySQL's per-value work, which was most of the DB thread's CPU)."""
    if not rows:
        return
    if hand_rendered(session):
        how = {c: "greatest" if c in monotonic else "new" for c in update
               if c not in NEVER_UPDATED}
        rawsql.upsert(session, table, rows, columns, how, STRING_WIDTHS)
        return
    clean = [{c: clip(row[c], STRING_WIDTHS[c]) if c in STRING_WIDTHS else row[c]
              for c in columns} for row in rows]
    stmt: Any
    if session.get_bind().dialect.name == "mysql":  # another driver: SQLAlchemy's statement
        stmt = mysql.insert(table)
        inserted = stmt.inserted
        mset = {c: (func.greatest(table.c[c], inserted[c]) if c in monotonic else inserted[c])
                for c in update if c not in NEVER_UPDATED}
        if mset:
            session.execute(stmt.on_duplicate_key_update(mset), clean)
        return
    stmt = sqlite.insert(table)
    incoming = stmt.excluded
    set_ = {c: (func.max(table.c[c], incoming[c]) if c in monotonic else incoming[c])
            for c in update if c not in NEVER_UPDATED}
    if not set_:
        return
    stmt = stmt.on_conflict_do_update(index_elements=["unique_id"], set_=set_)
    session.execute(stmt, clean)


def _write(session: Session, table: Table, changes: dict[str, tuple[Any, dict[str, Any]]],
           monotonic: Sequence[str]) -> None:
    """New rows with every column; changed rows with only the columns that changed (plus the
    NOT NULL ones the INSERT half needs), grouped by that set: an Interim-Update sends 18
    values instead of 33, which is most of the database thread's work."""
    created = [new for old, new in changes.values() if old is None]
    columns = ALL_COLUMNS[table.name]
    _upsert(session, table, created, columns, columns, monotonic)
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for old, new in changes.values():
        if old is not None:
            changed = frozenset(c for c in columns if new[c] != old[c])
            groups.setdefault(changed, []).append(new)
    required = REQUIRED[table.name]
    for changed, rows in groups.items():
        wanted = [c for c in columns if c in changed or c in required]
        _upsert(session, table, rows, wanted, sorted(changed), monotonic)


def _apply_segment(session: Session, records: Sequence[AcctRecord], policy: AcctPolicy,
                   usage_sink: UsageSink | None) -> list[ApplyResult]:
    if not records:
        return []
    logins: set[str] = set()
    for r in records:
        logins.add(r.user_name)
        if r.call is not None and r.call.caller:
            logins.add(r.call.caller)
    subs = _lookup_subscribers(session, logins)
    sessions = _lock_sessions(session, (r.unique_id for r in records if not r.is_call))
    calls = _lock_rows(session, CALL_TABLE, (r.unique_id for r in records if r.is_call))
    # row unique id -> (row before this transaction or None, row now)
    dirty_sessions: dict[str, tuple[Any, dict[str, Any]]] = {}
    dirty_calls: dict[str, tuple[Any, dict[str, Any]]] = {}
    deltas: list[UsageDelta] = []
    results: list[ApplyResult] = []
    for r in records:
        sub = subs.get(clip(r.user_name, R.LEN_LOGIN))
        if r.call is not None:
            dirty = dirty_calls
            if sub is None and r.call.caller:
                sub = subs.get(clip(r.call.caller, R.LEN_LOGIN))
            old = calls.get(r.unique_id)
            new = new_call_row(r, sub) if old is None else merge_call_row(old, r, sub)
            delta = call_delta(old, new)
        else:
            dirty = dirty_sessions
            rows = sessions.setdefault(r.unique_id, [])
            old = pick_session(rows, r)
            new = new_session_row(r, sub, policy, new_session_id(r, rows)) if old is None \
                else merge_session_row(old, r, sub, policy)
            delta = session_delta(old, new)
            if is_late(old, r) and new != old:
                _log_late(old, r)
                new, delta = old, None
                results.append(ApplyResult(r.unique_id, "late"))
                continue
        if old is None:
            action = "created"
        elif new != old:
            action = "updated"
        else:
            action = "unchanged"
        uid = new["unique_id"]
        if action != "unchanged":
            if r.call is not None:
                calls[uid] = new
            else:
                if old is not None:
                    rows.remove(old)
                rows.append(new)
            before = dirty[uid][0] if uid in dirty else old
            dirty[uid] = (before, new)
        if delta is not None:
            deltas.append(delta)
        results.append(ApplyResult(uid, action))
    _write(session, SESSION_TABLE, dirty_sessions, ("session_time", *SESSION_COUNTERS))
    _write(session, CALL_TABLE, dirty_calls, ("duration",))
    if deltas and usage_sink is not None:
        usage_sink(session, deltas)
    return results


def nas_event_statement(table: Table, r: AcctRecord) -> Update:
    """Close the open rows of the NAS an Accounting-On/Off came from (index nas_id, stopped_at)."""
    closed_by = ClosedBy.NAS_ON if r.status == AcctStatus.ON else ClosedBy.NAS_OFF
    stop_time = case((table.c.updated_at > r.event_at, table.c.updated_at), else_=r.event_at)
    values: dict[str, Any] = {"stopped_at": stop_time}
    if table is SESSION_TABLE:
        values.update(stale_deadline=None, closed_by=closed_by.value,
                      terminate_cause=NAS_REBOOT_CAUSE)
    return (update(table)
            .where(table.c.nas_id == r.nas_id, table.c.nas_identity == r.nas_identity,
                   table.c.stopped_at.is_(None), table.c.started_at <= r.event_at)
            .values(**values))


def _apply_nas_event(session: Session, r: AcctRecord) -> ApplyResult:
    """Accounting-On/Off: the NAS restarted or stops, so none of its sessions is alive."""
    closed = 0
    for table in (SESSION_TABLE, CALL_TABLE):
        result = session.execute(nas_event_statement(table, r))
        closed += result.rowcount  # type: ignore[attr-defined]
    return ApplyResult(f"nas:{r.nas_id}", "closed", closed)


def thd_apply_records(session: Session, records: Sequence[AcctRecord], policy: AcctPolicy,
                      usage_sink: UsageSink | None = None) -> list[ApplyResult]:
    """Apply records in order in the caller's transaction; one result per record.

    Accounting-On/Off split the list: what came before is written first, so the
    NAS event closes exactly the sessions it should, in arrival order.
    """
    results: list[ApplyResult] = []
    segment: list[AcctRecord] = []
    for r in records:
        for hook in policy.record_hooks:
            hook(session, r)
        if r.is_nas_event:
            results.extend(_apply_segment(session, segment, policy, usage_sink))
            segment = []
            results.append(_apply_nas_event(session, r))
        else:
            segment.append(r)
    results.extend(_apply_segment(session, segment, policy, usage_sink))
    return results
