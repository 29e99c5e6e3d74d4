"""Leases: allocate, confirm, extend, release and expire, each in one short transaction.

Modelled on FreeRADIUS's sqlippool, without its failure modes. An allocation
is at most three statements on one row each (on MariaDB with one pool of a
kind, two: the first two below in one UNION, pools.lease_sql):

1. the rows this login holds or held last in the candidate pools
   (``holder`` index): a static assignment wins; an unconfirmed offer to the
   same device is offered again (a repeated Access-Request); else the free
   item it had before (stickiness);
2. otherwise the least recently used free item, an index seek on
   ``(pool_id, state, last_released_at)`` with ``FOR UPDATE SKIP LOCKED`` on
   MariaDB, so concurrent allocators take different rows instead of waiting
   or deadlocking (SQLite has one writer: BEGIN IMMEDIATE);
3. an UPDATE of that row by primary key, guarded by the state it was read in.

Cost does not depend on how large or how full the pool is. No statement
scans a range another allocator is writing, so REPEATABLE READ gap locks
have nothing to deadlock on either.

All ``thd_*`` functions take the Session first, never commit, and return
frozen dataclasses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.handsql import hand_rendered
from core.errors import NotFound
from pools import lease_sql
from pools.errors import BadRange, PoolExhausted
from pools.models import (
    LIVE_STATES,
    ItemState,
    NasPoolGroup,
    OnExhausted,
    PlanPool,
    Pool,
    PoolItem,
    PoolKind,
)
from pools.ranges import normalize_value

log = logging.getLogger(__name__)

ITEM = cast(Table, PoolItem.__table__)
INLINE_EXPIRY_LIMIT = 100
DEFAULT_OFFER_SECONDS = 60
DEFAULT_LEASE_SECONDS = 3600


@dataclass(frozen=True)
class Lease:
    pool_id: int
    pool: str
    kind: PoolKind
    value: str
    state: ItemState
    holder: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class PoolRoute:
    """A pool a plan draws from, as one NAS sees it."""

    pool_id: int
    pool: str
    kind: PoolKind
    framed_pool_name: str
    nas_allocates: bool
    on_exhausted: OnExhausted


@dataclass(frozen=True)
class Grant:
    """What one kind of identifier comes to in an Access-Accept.

    ``value`` is the address or prefix handed out; ``framed_pool`` the pool
    name to send instead when the NAS allocates (by plan option, or because
    the pool is full and the plan says to fall back).
    """

    kind: PoolKind
    pool: str
    value: str | None = None
    framed_pool: str | None = None
    static: bool = False
    exhausted: bool = False


@dataclass(frozen=True)
class AccessAllocation:
    routes: tuple[PoolRoute, ...]
    login: str
    nas_id: int | None
    device: str | None
    skip_kinds: frozenset[PoolKind] = frozenset()
    offer_seconds: int = DEFAULT_OFFER_SECONDS


@dataclass(frozen=True)
class LeaseUpdate:
    """What one accounting record did to the leases."""

    confirmed: tuple[str, ...] = ()
    released: int = 0
    conflicts: tuple[str, ...] = ()


def read_committed(session: Session) -> None:
    """Run this transaction at READ COMMITTED on MariaDB, whatever the server's default.

    Under REPEATABLE READ and SERIALIZABLE, InnoDB takes gap locks on the
    ranges a locking read scans; two allocators that then write a holder into
    the same gap wait for each other: the deadlock that sinks FreeRADIUS's
    sqlippool. READ COMMITTED takes no gap locks for searches, and an
    allocation needs nothing stronger: every row it writes it has locked
    itself. Must be the transaction's first statement; elsewhere it is a no-op.
    """
    bind = session.get_bind()
    if bind.dialect.name != "mysql" or session.info.get("read_committed"):
        return
    # radbill's engine already is READ COMMITTED (core.db.engine): no extra round trip.
    level = bind.get_execution_options().get("isolation_level") \
        or session.connection().default_isolation_level
    if level == "READ COMMITTED":
        session.info["read_committed"] = True
        return
    try:
        session.execute(text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
    except DBAPIError as exc:  # 1568: a transaction is already running
        log.debug("isolation left as it is: %s", exc.orig)
    session.info["read_committed"] = True


def _now(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def _clip(text: str | None, size: int) -> str | None:
    return text[:size] if text else None


# -- which pools serve a request -----------------------------------------------------------

def thd_plan_routes(session: Session, plan_id: int, nas_id: int | None) -> tuple[PoolRoute, ...]:
    """The pools a plan draws from at this NAS, in priority order (NAS group filter applied)."""
    group = None
    if nas_id is not None:
        group = session.scalar(select(NasPoolGroup.group_name)
                               .where(NasPoolGroup.nas_id == nas_id))
    rows = session.execute(
        select(Pool.id, Pool.name, Pool.kind, Pool.framed_pool_name, Pool.nas_group,
               PlanPool.nas_allocates, PlanPool.on_exhausted)
        .join(PlanPool, PlanPool.pool_id == Pool.id)
        .where(PlanPool.plan_id == plan_id)
        .order_by(PlanPool.priority, Pool.name)).all()
    return tuple(
        PoolRoute(pool_id=r.id, pool=r.name, kind=PoolKind(r.kind),
                  framed_pool_name=r.framed_pool_name or r.name,
                  nas_allocates=bool(r.nas_allocates), on_exhausted=OnExhausted(r.on_exhausted))
        for r in rows if r.nas_group is None or r.nas_group == group)


# -- allocation ---------------------------------------------------------------------------

# The hot path's statements, built once: only their parameters change per allocation.
_TAKE = (update(ITEM)
         .where(ITEM.c.id == bindparam("item_id"), ITEM.c.state == bindparam("observed"))
         .values(state=ItemState.OFFERED, holder=bindparam("new_holder"),
                 device=bindparam("new_device"), nas_id=bindparam("new_nas_id"),
                 assigned_at=bindparam("now"), expires_at=bindparam("new_expires_at")))
_TAKE_NEW_SESSION = _TAKE.values(acct_session_id=None)
_OWN_COLUMNS = (ITEM.c.id, ITEM.c.pool_id, ITEM.c.value, ITEM.c.state, ITEM.c.device,
                ITEM.c.nas_id, ITEM.c.last_released_at)
_OWN = (select(*_OWN_COLUMNS)
        .where(ITEM.c.holder == bindparam("login"),
               ITEM.c.pool_id.in_(bindparam("pool_ids", expanding=True)))
        .with_for_update(skip_locked=True))
_LRU = (select(ITEM.c.id, ITEM.c.value)
        .where(ITEM.c.pool_id == bindparam("pool_id"), ITEM.c.state == ItemState.FREE)
        .order_by(ITEM.c.last_released_at, ITEM.c.id)
        .limit(1)
        .with_for_update(skip_locked=True))


def _take(conn: Connection, item_id: int, observed: ItemState, *, login: str,
          nas_id: int | None, device: str | None, now: datetime, expires_at: datetime,
          keep_session: bool) -> bool:
    """Offer one row, if it is still in the state it was read in (its lock says it is)."""
    device = _clip(device, 64)
    if hand_rendered(conn):
        return lease_sql.take(conn, item_id, observed, login=login, nas_id=nas_id,
                              device=device, now=now, expires_at=expires_at,
                              keep_session=keep_session)
    result = conn.execute(
        _TAKE if keep_session else _TAKE_NEW_SESSION,
        {"item_id": item_id, "observed": observed, "new_holder": login,
         "new_device": device, "new_nas_id": nas_id, "now": now,
         "new_expires_at": expires_at})
    return bool(result.rowcount == 1)


def _own_and_spare(conn: Connection, pool_ids: Sequence[int],
                   login: str) -> tuple[Sequence[Any], Any]:
    """This login's rows in the candidate pools, and on MariaDB with one pool a free spare.

    The spare (None otherwise) is the pool's least recently used free row, already
    locked, for when the login has no row of its own to take back.
    """
    if len(pool_ids) == 1 and hand_rendered(conn):
        return lease_sql.own_or_spare(conn, login, pool_ids[0])
    return conn.execute(_OWN, {"login": login, "pool_ids": list(pool_ids)}).all(), None


def _own_item(rows: Sequence[Any], pool_ids: Sequence[int], nas_id: int | None,
              device: str | None) -> Any:
    """The row this login should get back, if any: static, a repeated offer, or its last one."""
    if not rows:
        return None
    order = {pid: i for i, pid in enumerate(pool_ids)}
    rows = sorted(rows, key=lambda r: order[r.pool_id])
    device = _clip(device, 64)
    for r in rows:
        if r.state == ItemState.STATIC:
            return r
    for r in rows:
        if r.state == ItemState.OFFERED and r.device == device:
            return r
        if r.state == ItemState.LEASED and device and r.device == device \
                and r.nas_id == nas_id:
            # The NAS lost the Stop and the same device is back: it gets its address again.
            return r
    free = [r for r in rows if r.state == ItemState.FREE]
    if free:
        return max(free, key=lambda r: r.last_released_at)
    return None


def _least_recently_used(conn: Connection, pool_id: int) -> Any:
    return conn.execute(_LRU, {"pool_id": pool_id}).first()


def allocate(session: Session, routes: Sequence[PoolRoute], login: str, *,
             nas_id: int | None = None, device: str | None = None,
             offer_seconds: int = DEFAULT_OFFER_SECONDS,
             now: datetime | None = None) -> Lease | None:
    """Offer one identifier from the first of ``routes`` (same kind) that has one; None if full."""
    if not routes:
        return None
    now = _now(now)
    expires_at = now + timedelta(seconds=offer_seconds)
    by_id = {r.pool_id: r for r in routes}
    pool_ids = list(by_id)
    conn = session.connection()
    own_rows, spare = _own_and_spare(conn, pool_ids, login)
    own = _own_item(own_rows, pool_ids, nas_id, device)
    if own is not None:
        route = by_id[own.pool_id]
        if own.state == ItemState.STATIC:
            return Lease(route.pool_id, route.pool, route.kind, own.value, ItemState.STATIC,
                         login, None)
        if _take(conn, own.id, ItemState(own.state), login=login, nas_id=nas_id,
                 device=device, now=now, expires_at=expires_at,
                 keep_session=own.state != ItemState.FREE):
            return Lease(route.pool_id, route.pool, route.kind, own.value, ItemState.OFFERED,
                         login, expires_at)
    for attempt in range(2):
        for route in routes:
            for _ in range(3):
                if spare is not None and spare.pool_id == route.pool_id:
                    row, spare = spare, None
                else:
                    row = _least_recently_used(conn, route.pool_id)
                if row is None:
                    break
                if _take(conn, row.id, ItemState.FREE, login=login, nas_id=nas_id,
                         device=device, now=now, expires_at=expires_at, keep_session=False):
                    return Lease(route.pool_id, route.pool, route.kind, row.value,
                                 ItemState.OFFERED, login, expires_at)
        # Full: return leases the expiry service has not reached yet, then look once more.
        if attempt == 0 and not expire_leases(session, now=now, limit=INLINE_EXPIRY_LIMIT,
                                              pool_ids=pool_ids):
            break
    return None


def thd_allocate(session: Session, pool: str, login: str, *, nas_id: int | None = None,
                 device: str | None = None, offer_seconds: int = DEFAULT_OFFER_SECONDS,
                 now: datetime | None = None) -> Lease:
    """Offer one identifier of the named pool to ``login``; raise PoolExhausted if none is free."""
    read_committed(session)
    row = session.execute(select(Pool.id, Pool.kind).where(Pool.name == pool)).first()
    if row is None:
        raise NotFound(f"no pool named {pool!r}")
    route = PoolRoute(row.id, pool, PoolKind(row.kind), pool, False, OnExhausted.REJECT)
    lease = allocate(session, [route], login, nas_id=nas_id, device=device,
                     offer_seconds=offer_seconds, now=now)
    if lease is None:
        raise PoolExhausted(pool, route.kind)
    return lease


def thd_allocate_for_access(session: Session, request: AccessAllocation,
                            now: datetime | None = None) -> tuple[Grant, ...]:
    """Everything one Access-Accept needs from the pools, in one transaction.

    Raises PoolExhausted (rolling back whatever was offered for other kinds)
    when a kind's pools are full and none of them says to fall back to
    Framed-Pool.
    """
    read_committed(session)
    grants: list[Grant] = []
    for kind in (PoolKind.IPV4, PoolKind.IPV6, PoolKind.PD):
        if kind in request.skip_kinds:
            continue
        routes = [r for r in request.routes if r.kind is kind]
        if not routes:
            continue
        allocating = [r for r in routes if not r.nas_allocates]
        if allocating:
            lease = allocate(session, allocating, request.login, nas_id=request.nas_id,
                             device=request.device, offer_seconds=request.offer_seconds,
                             now=now)
            if lease is not None:
                grants.append(Grant(kind, lease.pool, value=lease.value,
                                    static=lease.state is ItemState.STATIC))
                continue
            fallback = next((r for r in routes if r.nas_allocates
                             or r.on_exhausted is OnExhausted.FRAMED_POOL), None)
            if fallback is None:
                raise PoolExhausted(allocating[0].pool, kind)
            grants.append(Grant(kind, allocating[0].pool, framed_pool=fallback.framed_pool_name,
                                exhausted=True))
        else:
            grants.append(Grant(kind, routes[0].pool, framed_pool=routes[0].framed_pool_name))
    return tuple(grants)


# -- accounting ---------------------------------------------------------------------------

START_TYPES = {"start", "interim-update", "alive"}
STOP_TYPES = {"stop"}
NAS_RESET_TYPES = {"accounting-on", "accounting-off"}
# Acct-Status-Type codes (RFC 2866 section 5.1), for callers holding the number.
STATUS_CODES = {1: "start", 2: "stop", 3: "interim-update", 7: "accounting-on",
                8: "accounting-off"}


def _values(framed_ip: str | None, framed_ipv6_prefix: str | None,
            delegated_prefix: str | None) -> list[tuple[PoolKind, str]]:
    out: list[tuple[PoolKind, str]] = []
    for kind, given in ((PoolKind.IPV4, framed_ip), (PoolKind.IPV6, framed_ipv6_prefix),
                        (PoolKind.PD, delegated_prefix)):
        if not given:
            continue
        try:
            out.append((kind, normalize_value(kind, str(given))))
        except BadRange:
            log.debug("accounting carried an unusable %s value %r", kind, given)
    return out


def thd_lease_on_accounting(session: Session, nas_id: int | None, status_type: str | int,
                            framed_ip: str | None, framed_ipv6_prefix: str | None,
                            delegated_prefix: str | None, login: str | None,
                            acct_session_id: str | None, *,
                            lease_seconds: int = DEFAULT_LEASE_SECONDS,
                            now: datetime | None = None) -> LeaseUpdate:
    """Apply one Accounting-Request to the leases; for accounting's per-record hook.

    - ``Start`` / ``Interim-Update`` (or ``Alive``): the addresses in the
      record become leased to ``login`` until now + ``lease_seconds``. An
      offer is confirmed; a free address (handed out by the NAS from a
      Framed-Pool, or whose lease lapsed while the session lived) is claimed.
      An address held by another login is left alone and reported in
      ``conflicts``.
    - ``Stop``: the addresses return to the pool, unless the lease already
      belongs to a newer session of the same login (other Acct-Session-Id).
    - ``Accounting-On`` / ``Accounting-Off``: every lease and offer of that
      NAS returns to the pool (the NAS rebooted; its sessions are gone).

    ``status_type`` is the Acct-Status-Type name (``"Start"``, ``"Interim-Update"``,
    ``"Stop"``, ``"Accounting-On"``, ``"Accounting-Off"``) or its number (1, 3, 2,
    7, 8). Values are the attribute values as decoded (``"10.0.0.5"``,
    ``"2001:db8:0:1::/64"``); a value that does not parse, or that no pool
    manages, is ignored. Other status types do nothing. Never commits;
    run it in the same transaction as the accounting record.
    """
    now = _now(now)
    if isinstance(status_type, int):
        status = STATUS_CODES.get(int(status_type), "")
    else:
        status = (status_type or "").strip().lower()
    if status in NAS_RESET_TYPES:
        return LeaseUpdate(released=release_nas(session, nas_id, now=now)) \
            if nas_id is not None else LeaseUpdate()
    if status not in START_TYPES and status not in STOP_TYPES:
        return LeaseUpdate()
    if not login:
        return LeaseUpdate()
    session_id = _clip(acct_session_id, 64)
    confirmed: list[str] = []
    conflicts: list[str] = []
    released = 0
    for kind, value in _values(framed_ip, framed_ipv6_prefix, delegated_prefix):
        row = session.connection().execute(
            select(ITEM.c.id, ITEM.c.state, ITEM.c.holder, ITEM.c.acct_session_id)
            .where(ITEM.c.kind == kind, ITEM.c.value == value).with_for_update()).first()
        if row is None or row.state == ItemState.ISSUED:
            continue
        state = ItemState(row.state)
        mine = row.holder == login
        if status in STOP_TYPES:
            if state is ItemState.STATIC and mine:
                session.connection().execute(update(ITEM).where(ITEM.c.id == row.id)
                                .values(nas_id=None, acct_session_id=None))
            elif state in LIVE_STATES and mine and (
                    row.acct_session_id is None or session_id is None
                    or row.acct_session_id == session_id):
                _release(session, [row.id], now)
                released += 1
            continue
        if state is ItemState.STATIC:
            if mine:
                session.connection().execute(update(ITEM).where(ITEM.c.id == row.id)
                                .values(nas_id=nas_id, acct_session_id=session_id))
                confirmed.append(value)
            else:
                conflicts.append(value)
            continue
        if state in LIVE_STATES and not mine:
            conflicts.append(value)
            log.warning("accounting: %s says %s uses %s, which is %s to %s; lease left alone",
                        status_type, login, value, state.value, row.holder)
            continue
        values: dict[str, Any] = {
            "state": ItemState.LEASED, "holder": login, "nas_id": nas_id,
            "acct_session_id": session_id,
            "expires_at": now + timedelta(seconds=lease_seconds)}
        if state is ItemState.FREE:
            values["assigned_at"] = now
        session.connection().execute(update(ITEM).where(ITEM.c.id == row.id).values(**values))
        confirmed.append(value)
    return LeaseUpdate(confirmed=tuple(confirmed), released=released, conflicts=tuple(conflicts))


def _release(session: Session, ids: Sequence[int], now: datetime) -> int:
    result = session.connection().execute(
        update(ITEM).where(ITEM.c.id.in_(ids), ITEM.c.state.in_(LIVE_STATES))
        .values(state=ItemState.FREE, last_released_at=now, expires_at=None, nas_id=None,
                acct_session_id=None))
    return int(result.rowcount)


def release_nas(session: Session, nas_id: int, now: datetime | None = None) -> int:
    """Every offer and lease of one NAS back to the pool (Accounting-On/Off)."""
    now = _now(now)
    result = session.connection().execute(
        update(ITEM).where(ITEM.c.nas_id == nas_id, ITEM.c.state.in_(LIVE_STATES))
        .values(state=ItemState.FREE, last_released_at=now, expires_at=None, nas_id=None,
                acct_session_id=None))
    session.connection().execute(update(ITEM).where(ITEM.c.nas_id == nas_id,
                                       ITEM.c.state == ItemState.STATIC)
                    .values(nas_id=None, acct_session_id=None))
    return int(result.rowcount)


def thd_release(session: Session, pool: str, value: str, now: datetime | None = None) -> bool:
    """Return one offered or leased identifier of a pool to it (tests, tools)."""
    row = session.execute(select(Pool.id, Pool.kind, Pool.prefix_length)
                          .where(Pool.name == pool)).first()
    if row is None:
        raise NotFound(f"no pool named {pool!r}")
    canonical = normalize_value(PoolKind(row.kind), value, row.prefix_length)
    item = session.connection().execute(select(ITEM.c.id).where(ITEM.c.pool_id == row.id,
                                                   ITEM.c.value == canonical)
                           .with_for_update()).first()
    return item is not None and _release(session, [item.id], _now(now)) == 1


# -- expiry -------------------------------------------------------------------------------

def expire_leases(session: Session, *, now: datetime | None = None, limit: int = 1000,
                  pool_ids: Sequence[int] | None = None) -> int:
    """Return up to ``limit`` offers and leases whose time is up; locked rows are skipped."""
    now = _now(now)
    query = (select(ITEM.c.id)
             .where(ITEM.c.state.in_(LIVE_STATES), ITEM.c.expires_at < now)
             .limit(limit).with_for_update(skip_locked=True))
    if pool_ids is not None:
        query = query.where(ITEM.c.pool_id.in_(pool_ids))
    ids = list(session.connection().scalars(query))
    if not ids:
        return 0
    result = session.connection().execute(
        update(ITEM).where(ITEM.c.id.in_(ids), ITEM.c.state.in_(LIVE_STATES),
                           ITEM.c.expires_at < now)
        .values(state=ItemState.FREE, last_released_at=now, expires_at=None, nas_id=None,
                acct_session_id=None))
    return int(result.rowcount)


def thd_expire_leases(session: Session, now: datetime | None = None, limit: int = 1000) -> int:
    """One batch of expiry for the expiry service; it calls again while batches come back full."""
    read_committed(session)
    return expire_leases(session, now=now, limit=limit)
