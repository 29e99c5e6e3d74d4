"""The charging pass: rate a batch of usage deltas and charge them, exactly once.

One transaction per batch does everything a delta causes: lock the accounts
involved (in id order, so two passes cannot deadlock), rate each delta against
its session's running state (billing.rating), write ONE ledger entry per
account (and kind of source: sessions, calls) for all its deltas in the batch
(their sum; idempotency key
``usage:<account id>:<lowest delta id>``, UNIQUE, and each delta row keeps
its own cost and that lowest id: ``usage_delta.charged`` / ``ledger_batch``), move
the cached balances, advance the allowances, hold the next slice for sessions still
running, block accounts now out of money, and mark the deltas rated. A crash
or kill anywhere before the commit leaves nothing behind; after it, nothing
is left to redo. Two passes at once (the service and a cron ``billing run``)
skip each other's rows (``SKIP LOCKED``) on MariaDB and queue on SQLite.

Written with SQLAlchemy Core rather than the ORM: it is the hot path of the
bench. On MariaDB the reads and writes go through billing.charging_mysql
(packed reads, literals rendered by type), because PyMySQL's per-value
decoding and escaping were most of the pass's CPU.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, false, func, insert, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from billing import charging_mysql as packed
from billing.accounts import out_of_money
from billing.models import (
    HOLDING_STATES,
    AccountStatus,
    AllowanceUsage,
    BillingAccount,
    BillingEvent,
    ChargingSession,
    ChargingState,
    EntryKind,
    LedgerEntry,
)
from billing.rating import (
    AllowanceLeft,
    SessionRating,
    rate_call_delta,
    rate_delta,
    rate_delta_charge,
    seconds_affordable,
    slice_cost,
    utc_ts,
)
from billing.reservation import period_key
from billing.tariff_store import thd_load_tariffs, thd_voice_rate
from billing.tariffs import Tariff, VoiceRate
from billing.usage import UsageDeltaRow
from core.db.base import utcnow
from core.db.handsql import hand_rendered
from core.db.models import Subscriber

log = logging.getLogger(__name__)

UD = cast(Table, UsageDeltaRow.__table__)
CS = cast(Table, ChargingSession.__table__)
ACC = cast(Table, BillingAccount.__table__)
LE = cast(Table, LedgerEntry.__table__)
AU = cast(Table, AllowanceUsage.__table__)
EV = cast(Table, BillingEvent.__table__)
SUB = cast(Table, Subscriber.__table__)

DEFAULT_BATCH = 5000
# Enum values read once: an Enum member's .value is a descriptor call, per record here.
_CHARGE = EntryKind.CHARGE.value
_ACTIVE = AccountStatus.ACTIVE.value


@dataclass
class _Sess:
    id: int | None
    account_id: int
    subscriber_id: int
    source: str
    source_id: str
    state: str
    reserved: int
    charged: int
    rating: SessionRating
    destination: str | None
    exhausts_at: datetime | None
    throttled: bool
    last_usage_at: datetime | None
    bound_reservation: bool = False
    charged_now: int = 0
    final: bool = False
    dirty: bool = False


@dataclass
class _Acct:
    id: int
    subscriber_id: int
    currency: str
    balance: int
    credit_limit: int | None
    status: str
    held: int = 0          # money held by the account's live sessions
    delta: int = 0         # balance change in this batch


@dataclass(frozen=True)
class PassResult:
    rated: int
    charged: int                      # minor units charged in this batch
    entries: int
    blocked: tuple[int, ...] = ()     # accounts blocked by this batch
    throttled: tuple[int, ...] = ()   # charging sessions whose allowance ran out (throttle)
    allowance_cut: tuple[int, ...] = ()
    events: tuple[str, ...] = field(default_factory=tuple)


def _in_chunks(values: list[Any], size: int = 900) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _insert_accounts(conn: Connection, sub_ids: list[int], currency: str,
                     now: datetime) -> None:
    rows = [{"subscriber_id": s, "currency": currency, "balance": 0, "credit_limit": None,
             "status": AccountStatus.ACTIVE.value, "status_reason": "",
             "status_changed_at": None, "next_fee_at": None, "created_at": now,
             "updated_at": now} for s in sub_ids]
    if conn.dialect.name == "mysql":
        conn.execute(mysql.insert(ACC).prefix_with("IGNORE"), rows)
    else:
        conn.execute(sqlite.insert(ACC).on_conflict_do_nothing(), rows)


def _lock_accounts(conn: Connection, sub_ids: list[int], currency: str, now: datetime,
                   plan_of: dict[int, int | None]) -> dict[int, _Acct]:
    """Accounts of these subscribers (created if missing), row-locked in id order.

    Subscribers without an account get one and are locked in a second round.
    """
    out: dict[int, _Acct] = {}

    held = (select(func.coalesce(func.sum(CS.c.reserved), 0))
            .where(CS.c.account_id == ACC.c.id, CS.c.state.in_(HOLDING_STATES))
            .scalar_subquery())
    plan = select(SUB.c.plan_id).where(SUB.c.id == ACC.c.subscriber_id).scalar_subquery()

    def lock(ids: list[int]) -> None:
        if hand_rendered(conn):
            for a in packed.lock_accounts(conn, ids, HOLDING_STATES):
                out[a.subscriber_id] = _Acct(a.id, a.subscriber_id, a.currency, a.balance,
                                             a.credit_limit, a.status, held=a.held)
                plan_of[a.subscriber_id] = a.plan_id
            return
        for chunk in _in_chunks(sorted(ids)):
            # Subqueries, not a join: the lock must go through the unique index on
            # subscriber_id (a join lets the optimiser scan, and lock, every account).
            q = (select(ACC.c.id, ACC.c.subscriber_id, ACC.c.currency, ACC.c.balance,
                        ACC.c.credit_limit, ACC.c.status, plan, held)
                 .where(ACC.c.subscriber_id.in_(chunk)).order_by(ACC.c.id).with_for_update())
            for r in conn.execute(q):
                out[r[1]] = _Acct(r[0], r[1], r[2], int(r[3]), r[4], r[5], held=int(r[7]))
                plan_of[r[1]] = r[6]

    lock(sub_ids)
    missing = [sid for sid in sub_ids if sid not in out]
    if missing:
        _insert_accounts(conn, missing, currency, now)
        lock(missing)
    return out


def _load_sessions(conn: Connection, keys: set[tuple[str, str]], delta_ids: list[int]
                   ) -> dict[tuple[str, str], _Sess]:
    """Sessions by (source, source_id), through the unique index on that pair."""
    out: dict[tuple[str, str], _Sess] = {}
    if hand_rendered(conn):
        for r in packed.load_sessions(conn, delta_ids):
            out[(r.source, r.source_id)] = _Sess(
                r.id, r.account_id, r.subscriber_id, r.source, r.source_id, r.state, r.reserved,
                r.charged, SessionRating.from_json(r.rating), r.destination, None, r.throttled,
                None)
        return out
    by_source: dict[str, list[str]] = {}
    for source, sid in keys:
        by_source.setdefault(source, []).append(sid)
    for source, ids in sorted(by_source.items()):
        for chunk in _in_chunks(sorted(ids)):
            q = select(CS.c.id, CS.c.account_id, CS.c.subscriber_id, CS.c.source,
                       CS.c.source_id, CS.c.state, CS.c.reserved, CS.c.charged, CS.c.rating,
                       CS.c.destination, CS.c.throttled).where(CS.c.source == source,
                                                               CS.c.source_id.in_(chunk))
            for r in conn.execute(q):
                out[(r[3], r[4])] = _Sess(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]),
                                          int(r[7]), SessionRating.from_json(r[8]), r[9], None,
                                          bool(r[10]), None)
    return out


def _unbound_reservations(conn: Connection, sub_ids: list[int]) -> dict[int, list[Any]]:
    """Holds made at Access-Request that no usage has claimed yet, oldest first."""
    out: dict[int, list[Any]] = {}
    for chunk in _in_chunks(sorted(sub_ids)):
        q = (select(CS.c.id, CS.c.subscriber_id, CS.c.reserved, CS.c.destination,
                    CS.c.throttled)
             .where(CS.c.subscriber_id.in_(chunk), CS.c.source.is_(None),
                    CS.c.state == ChargingState.RESERVED.value).order_by(CS.c.id))
        for r in conn.execute(q):
            out.setdefault(r[1], []).append(r)
    return out


class _Context:
    """What one batch needs in memory: accounts, tariffs, sessions, allowances, outputs."""

    def __init__(self, session: Session, currency: str, reserve_seconds: int,
                 reserve_octets: int, now: datetime) -> None:
        self.session = session
        self.conn = session.connection()
        self.currency = currency
        self.reserve_seconds = reserve_seconds
        self.reserve_octets = reserve_octets
        self.now = now
        self.plan_of: dict[int, int | None] = {}
        self.accounts: dict[int, _Acct] = {}
        self.tariffs: dict[int, Tariff] = {}
        self.sessions: dict[tuple[str, str], _Sess] = {}
        self.voice: dict[tuple[int, str], VoiceRate | None] = {}
        self.allowance: dict[tuple[int, str], list[int]] = {}
        self.allowance_loaded: set[tuple[int, str]] = set()
        self.ledger: list[dict[str, Any]] = []
        # (account id, source kind) -> [total, lowest delta id, deltas, sources, description]
        self.usage: dict[tuple[int, str], list[Any]] = {}
        # delta id -> (charge, (account id, source kind))
        self.costs: dict[int, tuple[int, tuple[int, str]]] = {}
        self.events: list[dict[str, Any]] = []
        self.throttled: list[int] = []
        self.allowance_cut: list[int] = []


def thd_charge_pending(session: Session, currency: str, reserve_seconds: int,
                       reserve_octets: int, batch: int = DEFAULT_BATCH,
                       now: datetime | None = None) -> PassResult:
    """Rate and charge up to ``batch`` unrated deltas in one transaction."""
    now = now or utcnow()
    conn = session.connection()
    deltas: Sequence[Any]
    if hand_rendered(conn) and batch <= packed.MAX_PACKED_BATCH:
        deltas = packed.select_deltas(conn, batch)
    else:
        deltas = _select_deltas(conn, batch)
    if not deltas:
        return PassResult(0, 0, 0)
    ctx = _Context(session, currency, reserve_seconds, reserve_octets, now)
    sub_ids = sorted({d.subscriber_id for d in deltas})
    ctx.accounts = _lock_accounts(conn, sub_ids, currency, now, ctx.plan_of)
    deltas = [d for d in deltas if d.subscriber_id in ctx.accounts]  # subscriber deleted
    ctx.tariffs = thd_load_tariffs(session, {p for p in ctx.plan_of.values() if p})
    keys = {(d.source, d.source_id) for d in deltas}
    delta_ids = [d.id for d in deltas]
    ctx.sessions = _load_sessions(conn, keys, delta_ids)
    _bind_new_sessions(ctx, deltas, keys)
    total = 0
    for d in deltas:
        total += _charge_one(ctx, d)
    _usage_entries(ctx)
    _hold_next_slices(ctx)
    blocked = _write(ctx, delta_ids)
    return PassResult(rated=len(deltas), charged=total, entries=len(ctx.ledger),
                      blocked=tuple(blocked), throttled=tuple(ctx.throttled),
                      allowance_cut=tuple(ctx.allowance_cut))


def _select_deltas(conn: Connection, batch: int) -> Sequence[Any]:
    """The oldest unrated deltas (SQLite: the writer lock keeps other passes out)."""
    q = (select(UD.c.id, UD.c.subscriber_id, UD.c.source, UD.c.source_id, UD.c.seconds,
                UD.c.octets_in, UD.c.octets_out, UD.c.destination, UD.c.final,
                UD.c.period_end)
         .where(UD.c.rated == false()).order_by(UD.c.id).limit(batch))
    if conn.dialect.name == "mysql":
        q = q.with_for_update(skip_locked=True)
    return conn.execute(q).all()


def _bind_new_sessions(ctx: _Context, deltas: Sequence[Any], keys: set[tuple[str, str]]) -> None:
    """First usage of a session claims the oldest unclaimed hold of its subscriber, if any."""
    missing = [k for k in sorted(keys) if k not in ctx.sessions]
    if not missing:
        return
    first: dict[tuple[str, str], Any] = {}
    for d in deltas:
        first.setdefault((d.source, d.source_id), d)
    holds = _unbound_reservations(ctx.conn, sorted({first[k].subscriber_id for k in missing}))
    for key in missing:
        d = first[key]
        acct = ctx.accounts[d.subscriber_id]
        pending = holds.get(d.subscriber_id)
        if pending:
            h = pending.pop(0)
            ctx.sessions[key] = _Sess(h[0], acct.id, d.subscriber_id, key[0], key[1],
                                      ChargingState.ACTIVE.value, int(h[2]), 0, SessionRating(),
                                      d.destination or h[3], None, bool(h[4]), None,
                                      bound_reservation=True, dirty=True)
        else:
            ctx.sessions[key] = _Sess(None, acct.id, d.subscriber_id, key[0], key[1],
                                      ChargingState.ACTIVE.value, 0, 0, SessionRating(),
                                      d.destination, None, False, None, dirty=True)


def _allowance_left(ctx: _Context, acct: _Acct, tariff: Tariff, when: datetime
                    ) -> tuple[AllowanceLeft, tuple[int, str] | None]:
    a = tariff.allowance
    if a is None:
        return AllowanceLeft(), None
    key = (acct.id, period_key(tariff, when, a.period))
    if key not in ctx.allowance_loaded:
        row = ctx.conn.execute(select(AU.c.seconds, AU.c.octets).where(
            AU.c.account_id == key[0], AU.c.period == key[1])).first()
        ctx.allowance[key] = [int(row[0]), int(row[1])] if row else [0, 0]
        ctx.allowance_loaded.add(key)
    used = ctx.allowance[key]
    return AllowanceLeft(seconds=max(0, a.seconds - used[0]), octets=max(0, a.octets - used[1]),
                         has_seconds=a.seconds > 0, has_octets=a.octets > 0), key


def _charge_one(ctx: _Context, d: Any) -> int:
    acct = ctx.accounts[d.subscriber_id]
    sess = ctx.sessions[(d.source, d.source_id)]
    plan_id = ctx.plan_of.get(d.subscriber_id)
    tariff = ctx.tariffs.get(plan_id) if plan_id else None
    sess.dirty = True
    sess.last_usage_at = d.period_end
    if d.final:
        sess.final = True
    seconds, oin, oout = max(0, int(d.seconds)), max(0, int(d.octets_in)), \
        max(0, int(d.octets_out))
    charge = 0
    what = ""
    if d.source == "call":
        number = d.destination or sess.destination or ""
        sess.destination = sess.destination or d.destination
        rate = None
        if plan_id and number:
            vkey = (plan_id, number)
            if vkey not in ctx.voice:
                ctx.voice[vkey] = thd_voice_rate(ctx.session, plan_id, number)
            rate = ctx.voice[vkey]
        if rate is not None:
            r = rate_call_delta(rate, sess.rating, seconds, acct.currency)
            sess.rating, charge = r.state, r.charge
            what = f"call {number} +{seconds}s @{rate.prefix}"
        elif seconds:
            log.warning("call %s to %r of subscriber %d: no voice rate, not charged",
                        d.source_id, number, d.subscriber_id)
    elif tariff is not None and tariff.allowance is None:
        sess.rating, charge = rate_delta_charge(tariff, sess.rating,
                                                utc_ts(d.period_end) - seconds, seconds, oin,
                                                oout, acct.currency)
        what = f"session +{seconds}s in {oin} out {oout}"
    elif tariff is not None:
        left, akey = _allowance_left(ctx, acct, tariff, d.period_end)
        start = utc_ts(d.period_end) - seconds
        r = rate_delta(tariff, sess.rating, start, seconds, oin, oout, acct.currency, left)
        sess.rating, charge = r.state, r.charge
        if akey is not None:
            ctx.allowance[akey][0] += r.allowance_seconds_used
            ctx.allowance[akey][1] += r.allowance_octets_used
            if r.past_allowance or r.allowance_exhausted:
                _allowance_action(ctx, acct, tariff, sess)
        what = f"session +{seconds}s in {oin} out {oout}"
    if charge > 0:
        sess.charged += charge
        sess.charged_now += charge
        acct.balance -= charge
        acct.delta -= charge
        group = (acct.id, d.source)
        ctx.costs[d.id] = (charge, group)
        agg = ctx.usage.get(group)
        if agg is None:
            ctx.usage[group] = [charge, d.id, 1, {d.source_id}, what]
        else:
            agg[0] += charge
            agg[1] = min(agg[1], d.id)
            agg[2] += 1
            agg[3].add(d.source_id)
    return charge


def _usage_entries(ctx: _Context) -> None:
    """One ledger entry per account and kind of source: the sum of those deltas' charges.

    Sessions and calls get separate entries, so statements can still tell
    them apart by the description ("session ...", "call ..."). The key names
    the account and the lowest delta id; a delta is rated in exactly one
    committed transaction, so no two entries share a key, and a transaction
    that rolls back leaves neither the entry nor the rated marks.
    """
    for aid, source in sorted(ctx.usage):
        amount, first, count, sources, what = ctx.usage[(aid, source)]
        if count == 1:
            description = what
        else:
            plural = "calls" if source == "call" else "sessions"
            description = f"{source} usage: {count} records of {len(sources)} {plural}"
        ctx.ledger.append({
            "account_id": aid, "kind": _CHARGE, "amount": -amount,
            "idempotency_key": f"usage:{aid}:{first}", "reference": None,
            "source_id": next(iter(sources)) if len(sources) == 1 else None,
            "description": description[:255], "created_at": ctx.now})



def _allowance_action(ctx: _Context, acct: _Acct, tariff: Tariff, sess: _Sess) -> None:
    from billing.tariffs import AfterAllowance

    a = tariff.allowance
    if a is None or a.after is AfterAllowance.CHARGE or sess.throttled:
        return
    sess.throttled = True
    kind = "throttle" if a.after is AfterAllowance.THROTTLE else "allowance-cutoff"
    ctx.events.append({"account_id": acct.id, "kind": kind,
                       "detail": f"included allowance used up ({sess.source_id})",
                       "created_at": ctx.now})
    if sess.id is not None:
        (ctx.throttled if kind == "throttle" else ctx.allowance_cut).append(sess.id)


def _hold_next_slices(ctx: _Context) -> None:
    """Sessions still running hold their next slice, or are marked to be cut when short."""
    at = utc_ts(ctx.now)
    slices: dict[tuple[int, str], int] = {}
    for sess in ctx.sessions.values():
        acct = ctx.accounts[sess.subscriber_id]
        before = sess.reserved if sess.state in HOLDING_STATES else 0
        if sess.final:
            sess.state = ChargingState.CLOSED.value
            sess.reserved = 0
            sess.exhausts_at = None
            acct.held -= before
            continue
        plan_id = ctx.plan_of.get(sess.subscriber_id)
        tariff = ctx.tariffs.get(plan_id) if plan_id else None
        limit = acct.credit_limit if acct.credit_limit is not None else (
            tariff.credit_limit if tariff else 0)
        others = acct.held - before
        available = acct.balance + limit - others
        if sess.source == "call":
            # A call keeps what is left of the hold made for its granted duration.
            sess.reserved = max(0, min(before - sess.charged_now, available))
        elif tariff is None:
            sess.reserved = 0
        else:
            skey = (tariff.plan_id, acct.currency)
            want = slices.get(skey)
            if want is None:
                want = slices[skey] = slice_cost(tariff, at, ctx.reserve_seconds,
                                                 ctx.reserve_octets, acct.currency)
            if available >= want:
                sess.reserved, sess.exhausts_at = want, None
            elif available > 0:
                sess.reserved = available
                secs = seconds_affordable(tariff, available, at, acct.currency)
                sess.exhausts_at = ctx.now + timedelta(seconds=secs) if secs is not None \
                    else None
            else:
                sess.reserved, sess.exhausts_at = 0, ctx.now
        acct.held = others + sess.reserved


def _write(ctx: _Context, delta_ids: list[int]) -> list[int]:
    conn, _now = ctx.conn, ctx.now
    mysql_db = hand_rendered(conn)
    if ctx.ledger and mysql_db:
        esc, lit = packed.escaper(conn), packed.sql_str
        stamp = packed.sql_time(ctx.now)
        packed.execute_values(
            conn, "INSERT INTO ledger_entry (account_id, kind, amount, idempotency_key, "
                  "reference, source_id, description, created_at) VALUES ",
            [f"({int(e['account_id'])},{lit(e['kind'], esc)},{int(e['amount'])},"
             f"{lit(e['idempotency_key'], esc)},{lit(e['reference'], esc)},"
             f"{lit(e['source_id'], esc)},{lit(e['description'], esc)},{stamp})"
             for e in ctx.ledger])
    elif ctx.ledger:
        conn.execute(insert(LE), ctx.ledger)
    balance_updates = [{"aid": a.id, "delta": a.delta} for a in ctx.accounts.values() if a.delta]
    if balance_updates and mysql_db:
        packed.update_join(conn, "billing_account", "tmp_billing_balance",
                           [("delta", "BIGINT NOT NULL")],
                           [f"({int(r['aid'])},{int(r['delta'])})"
                            for r in sorted(balance_updates, key=lambda r: r["aid"])],
                           "t.balance = t.balance + u.delta")
    elif balance_updates:
        conn.execute(update(ACC).where(ACC.c.id == bindparam("aid"))
                     .values(balance=ACC.c.balance + bindparam("delta")), balance_updates)
    _write_sessions(ctx)
    if ctx.allowance:
        rows = [{"account_id": k[0], "period": k[1], "seconds": v[0], "octets": v[1]}
                for k, v in ctx.allowance.items()]
        if conn.dialect.name == "mysql":
            stmt = mysql.insert(AU)
            conn.execute(stmt.on_duplicate_key_update(seconds=stmt.inserted.seconds,
                                                      octets=stmt.inserted.octets), rows)
        else:
            st = sqlite.insert(AU)
            conn.execute(st.on_conflict_do_update(
                index_elements=["account_id", "period"],
                set_={"seconds": st.excluded.seconds, "octets": st.excluded.octets}), rows)
    blocked = _settle_accounts(ctx)
    if ctx.events:
        conn.execute(insert(EV), ctx.events)
    _mark_rated(ctx, delta_ids)
    return blocked


def _mark_rated(ctx: _Context, delta_ids: list[int]) -> None:
    """Rated, with each delta's own cost and the batch (lowest delta id) of its entry."""
    conn = ctx.conn
    free = [i for i in delta_ids if i not in ctx.costs]
    for chunk in _in_chunks(free, 5000):
        # ids are integers read from the database: inlined, they cost no escaping
        conn.exec_driver_sql("UPDATE usage_delta SET rated = 1 WHERE id IN ("
                             + ",".join(str(int(i)) for i in chunk) + ")")
    if not ctx.costs:
        return
    batch = {group: agg[1] for group, agg in ctx.usage.items()}
    if hand_rendered(conn):
        packed.update_join(
            conn, "usage_delta", "tmp_usage_cost",
            [("charged", "BIGINT NOT NULL"), ("ledger_batch", "BIGINT NOT NULL")],
            [f"({int(i)},{int(c)},{int(batch[a])})" for i, (c, a) in sorted(ctx.costs.items())],
            "t.rated = 1, t.charged = u.charged, t.ledger_batch = u.ledger_batch")
        return
    conn.execute(update(UD).where(UD.c.id == bindparam("did"))
                 .values(rated=True, charged=bindparam("cost"), ledger_batch=bindparam("b")),
                 [{"did": i, "cost": c, "b": batch[a]} for i, (c, a) in sorted(ctx.costs.items())])


def _write_sessions(ctx: _Context) -> None:
    if hand_rendered(ctx.conn):
        _write_sessions_mysql(ctx)
        return
    conn, now = ctx.conn, ctx.now
    new_rows, upd_rows = [], []
    for s in ctx.sessions.values():
        if not s.dirty:
            continue
        values = {"state": s.state, "reserved": s.reserved, "charged": s.charged,
                  "rating": s.rating.to_json(), "exhausts_at": s.exhausts_at,
                  "throttled": s.throttled, "last_usage_at": s.last_usage_at,
                  "destination": s.destination, "updated_at": now}
        if s.id is None:
            new_rows.append({**values, "account_id": ctx.accounts[s.subscriber_id].id,
                             "subscriber_id": s.subscriber_id, "source": s.source,
                             "source_id": s.source_id, "nas_id": None, "acct_session_id": None,
                             "user_name": "", "framed_ip": None, "grant_seconds": None,
                             "cut_requested_at": None, "cut_result": None, "expires_at": None,
                             "created_at": now})
        else:
            upd_rows.append({**values, "cid": s.id, "src": s.source, "srcid": s.source_id})
    if new_rows:
        conn.execute(insert(CS), new_rows)
    if upd_rows:
        conn.execute(update(CS).where(CS.c.id == bindparam("cid")).values(
            source=bindparam("src"), source_id=bindparam("srcid"),
            **{k: bindparam(k) for k in ("state", "reserved", "charged", "rating",
                                         "exhausts_at", "throttled", "last_usage_at",
                                         "destination", "updated_at")}), upd_rows)


#: What every charge changes in a session row (the temporary table's columns) ...
SESSION_COLUMNS = [
    ("state", "VARCHAR(10)"), ("reserved", "BIGINT"), ("charged", "BIGINT"),
    ("rating", "LONGTEXT"), ("exhausts_at", "DATETIME(6) NULL"), ("throttled", "TINYINT"),
    ("last_usage_at", "DATETIME(6) NULL"), ("destination", "VARCHAR(64) NULL")]
#: ... and what only the first usage of a reservation adds (it binds it to its source).
BIND_COLUMNS = [("source", "VARCHAR(8)"), ("source_id", "VARCHAR(64)")]


def _write_sessions_mysql(ctx: _Context) -> None:
    """Sessions rendered by column type: new ones inserted, the others updated by JOIN."""
    conn = ctx.conn
    esc, lit, when, lit_json = packed.escaper(conn), packed.sql_str, packed.sql_time, \
        packed.sql_json
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    stamp = when(ctx.now)
    new_rows, upd_rows, bind_rows = [], [], []
    for s in sorted((s for s in ctx.sessions.values() if s.dirty),
                    key=lambda s: s.id or 0):
        common = (f"{lit(s.state, esc)},{int(s.reserved)},{int(s.charged)},"
                  f"{lit_json(dumps(s.rating.to_json()), esc)},{when(s.exhausts_at)},"
                  f"{int(s.throttled)},{when(s.last_usage_at)},{lit(s.destination, esc)}")
        if s.id is None:
            new_rows.append(f"({int(ctx.accounts[s.subscriber_id].id)},{int(s.subscriber_id)},"
                            f"{lit(s.source, esc)},{lit(s.source_id, esc)},'',{common},"
                            f"{stamp},{stamp})")
        elif s.bound_reservation:
            bind_rows.append(f"({int(s.id)},{common},{lit(s.source, esc)},"
                             f"{lit(s.source_id, esc)})")
        else:
            upd_rows.append(f"({int(s.id)},{common})")
    if new_rows:
        packed.execute_values(
            conn, "INSERT INTO charging_session (account_id, subscriber_id, source, source_id, "
                  "user_name, " + ", ".join(c for c, _ in SESSION_COLUMNS)
                  + ", created_at, updated_at) VALUES ", new_rows)
    for tmp, columns, rows in (("tmp_billing_session", SESSION_COLUMNS, upd_rows),
                               ("tmp_billing_bind", SESSION_COLUMNS + BIND_COLUMNS, bind_rows)):
        if rows:
            packed.update_join(conn, "charging_session", tmp, columns, rows,
                               ", ".join(f"t.{c} = u.{c}" for c, _ in columns)
                               + f", t.updated_at = {stamp}")


def _settle_accounts(ctx: _Context) -> list[int]:
    """Block accounts this batch took below their limit (their sessions are cut next)."""
    blocked = []
    for acct in ctx.accounts.values():
        if acct.status != _ACTIVE or not acct.delta:
            continue
        plan_id = ctx.plan_of.get(acct.subscriber_id)
        tariff = ctx.tariffs.get(plan_id) if plan_id else None
        limit = acct.credit_limit if acct.credit_limit is not None else (
            tariff.credit_limit if tariff else 0)
        if out_of_money(acct.balance, limit, tariff, has_voice_rates=True):
            blocked.append(acct.id)
            reason = f"out of money: balance {acct.balance}, limit {limit}"
            ctx.events.append({"account_id": acct.id, "kind": "blocked", "detail": reason,
                               "created_at": ctx.now})
            log.info("billing account %d: blocked, %s", acct.id, reason)
    if blocked:
        from billing.notify import enqueue_accounts

        enqueue_accounts(ctx.conn, "cut_off", [(aid, {"reason": "out of money"})
                                               for aid in blocked], ctx.now)
        for chunk in _in_chunks(blocked):
            ctx.conn.execute(update(ACC).where(and_(ACC.c.id.in_(chunk))).values(
                status=AccountStatus.BLOCKED.value, status_reason="out of money",
                status_changed_at=ctx.now))
    return blocked
