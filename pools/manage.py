"""Pool administration: add, list, show, remove; static assignments; plans and NAS groups.

Every function is a ``thd_*`` function for DBPool.run / CliContext.run: one
transaction, so a refused or failing command changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Nas, Plan, Subscriber
from core.errors import AlreadyExists, InvalidInput, NotFound
from pools.errors import BadRange, ItemUnavailable, PoolExhausted, PoolInUse, PoolOverlap
from pools.lease import ITEM, PoolRoute, allocate
from pools.logins import parse_pattern
from pools.models import (
    LEASED_KINDS,
    LIVE_STATES,
    NEVER,
    ItemState,
    NasPoolGroup,
    OnExhausted,
    PlanPool,
    Pool,
    PoolItem,
    PoolKind,
    PoolRange,
)
from pools.ranges import ParsedPool, key, normalize_value, parse_pool

INSERT_CHUNK = 5000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
RANGE = cast(Table, PoolRange.__table__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class NewPool:
    name: str
    kind: PoolKind
    ranges: tuple[str | tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    prefix_length: int | None = None
    pattern: str | None = None
    nas_group: str | None = None
    framed_pool_name: str | None = None
    description: str = ""


@dataclass(frozen=True)
class PoolUsage:
    name: str
    kind: PoolKind
    size: int
    used: int
    free: int
    percent: float
    offered: int
    leased: int
    static: int
    issued: int
    warning: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "size": self.size,
                "used": self.used, "free": self.free, "percent": self.percent,
                "offered": self.offered, "leased": self.leased, "static": self.static,
                "issued": self.issued, "warning": self.warning}


@dataclass(frozen=True)
class PlanLink:
    plan: str
    pool: str
    priority: int
    nas_allocates: bool
    on_exhausted: OnExhausted


@dataclass(frozen=True)
class PoolDetail:
    usage: PoolUsage
    prefix_length: int | None
    ranges: tuple[str, ...]
    excluded: tuple[str, ...]
    pattern: str | None
    nas_group: str | None
    framed_pool_name: str | None
    description: str
    created_at: datetime
    plans: tuple[PlanLink, ...] = field(default=())


@dataclass(frozen=True)
class ItemInfo:
    pool: str
    value: str
    state: ItemState
    holder: str | None
    device: str | None
    nas: str | None
    acct_session_id: str | None
    assigned_at: datetime | None
    expires_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "value": self.value, "state": self.state.value,
                "holder": self.holder, "device": self.device, "nas": self.nas,
                "session": self.acct_session_id, "assigned_at": self.assigned_at,
                "expires_at": self.expires_at}


# -- lookups ------------------------------------------------------------------------------

def _pool(session: Session, name: str, lock: bool = False) -> Pool:
    query = select(Pool).where(Pool.name == name)
    if lock:
        query = query.with_for_update()
    pool = session.scalars(query).one_or_none()
    if pool is None:
        raise NotFound(f"no pool named {name!r} (see 'radbill pool list')")
    return pool


def _plan(session: Session, name: str) -> Plan:
    plan = session.scalars(select(Plan).where(Plan.name == name)).one_or_none()
    if plan is None:
        raise NotFound(f"no plan named {name!r}")
    return plan


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidInput(f"pool name {name!r}: use 1-64 letters, digits, '_', '-', '.', ':'")


# -- add ----------------------------------------------------------------------------------

def _check_overlap(session: Session, parsed: ParsedPool) -> None:
    for block in parsed.blocks:
        clash = session.execute(
            select(Pool.name, Pool.kind).join(PoolRange, PoolRange.pool_id == Pool.id)
            .where(PoolRange.family == parsed.family,
                   PoolRange.first_key <= key(block.space_last),
                   PoolRange.last_key >= key(block.space_first)).limit(1)).first()
        if clash is not None:
            raise PoolOverlap(f"range {block.source!r} overlaps pool {clash.name} "
                              f"({clash.kind})")


def thd_add_pool(session: Session, new: NewPool, progress: Progress | None = None) -> PoolUsage:
    """Create a pool and all its items; all or nothing. ``progress(n)`` after each chunk."""
    _check_name(new.name)
    if session.scalar(select(Pool.id).where(Pool.name == new.name)) is not None:
        raise AlreadyExists(f"a pool named {new.name!r} already exists")
    for label, value in (("--nas-group", new.nas_group),
                         ("--framed-pool-name", new.framed_pool_name)):
        if value is not None and not NAME.match(value):
            raise InvalidInput(f"{label} {value!r}: use 1-64 letters, digits, '_', '-', '.'")
    if new.kind is PoolKind.LOGIN:
        if new.ranges or new.exclude or new.prefix_length is not None:
            raise BadRange("login pools take --pattern only")
        if not new.pattern:
            raise BadRange("login pools need --pattern, e.g. 'user{00000}' or 'vpn-{??????}'")
        pattern = parse_pattern(new.pattern)
        pool = Pool(name=new.name, kind=new.kind, pattern=new.pattern, size=pattern.capacity,
                    next_seq=1, ranges=[], excluded=[], nas_group=new.nas_group,
                    framed_pool_name=new.framed_pool_name, description=new.description)
        session.add(pool)
        session.flush()
        return _usage(pool, {})
    if new.pattern:
        raise BadRange("--pattern applies to login pools only")
    parsed = parse_pool(new.kind, new.ranges, new.exclude, new.prefix_length)
    _check_overlap(session, parsed)
    pool = Pool(name=new.name, kind=new.kind, prefix_length=new.prefix_length,
                ranges=list(parsed.sources), excluded=list(parsed.excluded_sources),
                nas_group=new.nas_group, framed_pool_name=new.framed_pool_name,
                description=new.description, size=0)
    session.add(pool)
    session.flush()
    session.execute(insert(RANGE), [
        {"pool_id": pool.id, "family": parsed.family, "first_key": key(b.space_first),
         "last_key": key(b.space_last)} for b in parsed.blocks])
    total = 0
    chunk: list[dict[str, Any]] = []
    try:
        for value in parsed.values():
            chunk.append({"pool_id": pool.id, "kind": new.kind, "value": value,
                          "state": ItemState.FREE, "last_released_at": NEVER})
            if len(chunk) >= INSERT_CHUNK:
                session.execute(insert(ITEM), chunk)
                total += len(chunk)
                chunk = []
                if progress is not None:
                    progress(total)
        if chunk:
            session.execute(insert(ITEM), chunk)
            total += len(chunk)
            if progress is not None:
                progress(total)
    except IntegrityError:
        # Another pool got there first (a concurrent add): the unique key said no.
        raise PoolOverlap(f"pool {new.name}: some identifiers already belong to another "
                          f"{new.kind} pool") from None
    if total == 0:
        raise BadRange("the exclusions leave the pool empty")
    pool.size = total
    session.flush()
    return _usage(pool, {})


# -- list / show --------------------------------------------------------------------------

def _counts(session: Session, pool_ids: Sequence[int] | None = None
            ) -> dict[int, dict[ItemState, int]]:
    query = (select(ITEM.c.pool_id, ITEM.c.state, func.count())
             .where(ITEM.c.state != ItemState.FREE)
             .group_by(ITEM.c.pool_id, ITEM.c.state))
    if pool_ids is not None:
        query = query.where(ITEM.c.pool_id.in_(pool_ids))
    out: dict[int, dict[ItemState, int]] = {}
    for pool_id, state, n in session.execute(query):
        out.setdefault(pool_id, {})[ItemState(state)] = int(n)
    return out


def _usage(pool: Pool, counts: dict[ItemState, int], warn: int = 100) -> PoolUsage:
    offered = counts.get(ItemState.OFFERED, 0)
    leased = counts.get(ItemState.LEASED, 0)
    static = counts.get(ItemState.STATIC, 0)
    issued = counts.get(ItemState.ISSUED, 0)
    used = offered + leased + static + issued
    size = int(pool.size)
    percent = round(100.0 * used / size, 1) if size else 0.0
    return PoolUsage(name=pool.name, kind=PoolKind(pool.kind), size=size, used=used,
                     free=size - used, percent=percent, offered=offered, leased=leased,
                     static=static, issued=issued, warning=size > 0 and percent >= warn)


def thd_list_pools(session: Session, warn_utilization: int = 90) -> list[PoolUsage]:
    pools = session.scalars(select(Pool).order_by(Pool.name)).all()
    counts = _counts(session)
    return [_usage(p, counts.get(p.id, {}), warn_utilization) for p in pools]


def thd_show_pool(session: Session, name: str, warn_utilization: int = 90) -> PoolDetail:
    pool = _pool(session, name)
    counts = _counts(session, [pool.id]).get(pool.id, {})
    links = session.execute(
        select(Plan.name, PlanPool.priority, PlanPool.nas_allocates, PlanPool.on_exhausted)
        .join(PlanPool, PlanPool.plan_id == Plan.id).where(PlanPool.pool_id == pool.id)
        .order_by(Plan.name)).all()
    return PoolDetail(
        usage=_usage(pool, counts, warn_utilization), prefix_length=pool.prefix_length,
        ranges=tuple(pool.ranges or ()), excluded=tuple(pool.excluded or ()),
        pattern=pool.pattern, nas_group=pool.nas_group, framed_pool_name=pool.framed_pool_name,
        description=pool.description, created_at=pool.created_at,
        plans=tuple(PlanLink(r.name, pool.name, r.priority, bool(r.nas_allocates),
                             OnExhausted(r.on_exhausted)) for r in links))


def thd_set_pool(session: Session, name: str, *, nas_group: str | None = None,
                 framed_pool_name: str | None = None,
                 description: str | None = None) -> PoolDetail:
    """Change a pool's NAS group, Framed-Pool name or description ('' clears the first two)."""
    pool = _pool(session, name)
    if nas_group is not None:
        if nas_group and not NAME.match(nas_group):
            raise InvalidInput(f"--nas-group {nas_group!r}: use letters, digits, '_', '-', '.'")
        pool.nas_group = nas_group or None
    if framed_pool_name is not None:
        if framed_pool_name and not NAME.match(framed_pool_name):
            raise InvalidInput(f"--framed-pool-name {framed_pool_name!r}: use letters, "
                               "digits, '_', '-', '.'")
        pool.framed_pool_name = framed_pool_name or None
    if description is not None:
        pool.description = description[:255]
    session.flush()
    return thd_show_pool(session, name)


# -- remove -------------------------------------------------------------------------------

def _held(session: Session, pool_id: int) -> dict[ItemState, int]:
    rows = session.execute(
        select(ITEM.c.state, func.count()).where(
            ITEM.c.pool_id == pool_id,
            ITEM.c.state.in_((*LIVE_STATES, ItemState.STATIC)))
        .group_by(ITEM.c.state)).all()
    return {ItemState(s): int(n) for s, n in rows}


def _refuse_if_held(name: str, held: dict[ItemState, int]) -> None:
    live = held.get(ItemState.OFFERED, 0) + held.get(ItemState.LEASED, 0)
    if live:
        raise PoolInUse(f"pool {name} has {live} live lease(s); they end with their sessions "
                        f"or expire (see 'radbill pool leases {name}')")
    static = held.get(ItemState.STATIC, 0)
    if static:
        raise PoolInUse(f"pool {name} has {static} static assignment(s); release them first "
                        f"('radbill pool release {name} LOGIN')")


def thd_remove_pool(session: Session, name: str) -> int:
    """Delete a pool with no live leases or static assignments; returns the items removed."""
    pool = _pool(session, name, lock=True)
    _refuse_if_held(name, _held(session, pool.id))
    # Delete what is free, then look again: an allocation that slipped in between
    # holds its row, survives the delete, and makes this refuse (and roll back).
    removed = session.execute(delete(ITEM).where(
        ITEM.c.pool_id == pool.id, ITEM.c.state.in_((ItemState.FREE, ItemState.ISSUED))))
    _refuse_if_held(name, _held(session, pool.id))
    session.execute(delete(RANGE).where(RANGE.c.pool_id == pool.id))
    session.execute(delete(PlanPool).where(PlanPool.pool_id == pool.id))
    session.delete(pool)
    session.flush()
    return int(removed.rowcount)  # type: ignore[attr-defined]


# -- leases and static assignments ---------------------------------------------------------

def _item_infos(session: Session, pool: Pool, where: Sequence[Any],
                limit: int | None = None) -> list[ItemInfo]:
    query = (select(ITEM.c.value, ITEM.c.state, ITEM.c.holder, ITEM.c.device, Nas.name,
                    ITEM.c.acct_session_id, ITEM.c.assigned_at, ITEM.c.expires_at)
             .outerjoin(Nas, Nas.id == ITEM.c.nas_id)
             .where(ITEM.c.pool_id == pool.id, *where).order_by(ITEM.c.id))
    if limit is not None:
        query = query.limit(limit)
    return [ItemInfo(pool.name, r.value, ItemState(r.state), r.holder, r.device, r.name,
                     r.acct_session_id, r.assigned_at, r.expires_at)
            for r in session.execute(query)]


def thd_list_leases(session: Session, name: str, states: Sequence[ItemState] | None = None,
                    limit: int | None = None) -> list[ItemInfo]:
    """Held items of a pool (offered, leased, static, issued), in pool order."""
    pool = _pool(session, name)
    wanted = tuple(states) if states else (*LIVE_STATES, ItemState.STATIC, ItemState.ISSUED)
    return _item_infos(session, pool, [ITEM.c.state.in_(wanted)], limit)


def _subscriber_exists(session: Session, login: str) -> None:
    if session.scalar(select(Subscriber.id).where(Subscriber.login == login)) is None:
        raise NotFound(f"no subscriber with login {login!r}")


def thd_assign_static(session: Session, pool_name: str, login: str,
                      value: str | None = None) -> ItemInfo:
    """Reserve an identifier for one subscriber for good; idempotent for the same pair."""
    pool = _pool(session, pool_name)
    kind = PoolKind(pool.kind)
    if kind is PoolKind.LOGIN:
        raise InvalidInput("login pools hand out logins with 'radbill login generate'")
    _subscriber_exists(session, login)
    if value is not None:
        canonical = normalize_value(kind, value, pool.prefix_length)
        row = session.execute(select(ITEM.c.id, ITEM.c.state, ITEM.c.holder)
                              .where(ITEM.c.pool_id == pool.id, ITEM.c.value == canonical)
                              .with_for_update()).first()
        if row is None:
            raise ItemUnavailable(f"{canonical} is not in pool {pool.name}")
        state = ItemState(row.state)
        if state is not ItemState.FREE and row.holder != login:
            raise ItemUnavailable(f"{canonical} is {state.value} to {row.holder}")
        item_id = row.id
    else:
        existing = session.execute(select(ITEM.c.id).where(
            ITEM.c.pool_id == pool.id, ITEM.c.holder == login,
            ITEM.c.state == ItemState.STATIC)).first()
        if existing is not None:
            item_id = existing.id
        else:
            route = PoolRoute(pool.id, pool.name, kind, pool.name, False, OnExhausted.REJECT)
            lease = allocate(session, [route], login)
            if lease is None:
                raise PoolExhausted(pool.name, kind)
            item_id = session.execute(select(ITEM.c.id).where(
                ITEM.c.kind == kind, ITEM.c.value == lease.value)).scalar_one()
    session.execute(update(ITEM).where(ITEM.c.id == item_id).values(
        state=ItemState.STATIC, holder=login, expires_at=None, assigned_at=utcnow()))
    return _item_infos(session, pool, [ITEM.c.id == item_id])[0]


def thd_release_static(session: Session, pool_name: str, who: str) -> list[ItemInfo]:
    """Free the static assignments of a login, or the one of a value; returns what was freed."""
    pool = _pool(session, pool_name)
    kind = PoolKind(pool.kind)
    where: list[Any] = [ITEM.c.state == ItemState.STATIC]
    try:
        canonical = normalize_value(kind, who, pool.prefix_length)
    except BadRange:
        canonical = None
    by_value = []
    if canonical is not None and kind is not PoolKind.LOGIN:
        by_value = _item_infos(session, pool, [ITEM.c.value == canonical])
    if by_value:
        if by_value[0].state is not ItemState.STATIC:
            raise ItemUnavailable(
                f"{canonical} is {by_value[0].state.value}, not a static assignment; a lease "
                "returns by itself when its session stops or the lease expires")
        where.append(ITEM.c.value == canonical)
    else:
        where.append(ITEM.c.holder == who)
    freed = _item_infos(session, pool, where)
    if not freed:
        raise NotFound(f"no static assignment of {who!r} in pool {pool.name}")
    session.execute(update(ITEM).where(ITEM.c.pool_id == pool.id, *where).values(
        state=ItemState.FREE, last_released_at=utcnow(), expires_at=None, nas_id=None,
        acct_session_id=None))
    return freed


# -- plans and NAS groups -----------------------------------------------------------------

def thd_attach(session: Session, plan_name: str, pool_name: str, *, priority: int = 100,
               nas_allocates: bool = False,
               on_exhausted: OnExhausted = OnExhausted.REJECT) -> PlanLink:
    """Let a plan draw from a pool (or change how); ipv4, ipv6 and pd pools only."""
    plan = _plan(session, plan_name)
    pool = _pool(session, pool_name)
    if PoolKind(pool.kind) not in LEASED_KINDS:
        raise InvalidInput(f"pool {pool.name} is a {pool.kind} pool; only ipv4, ipv6 and pd "
                           "pools are handed out at login (use 'radbill pool assign')")
    link = session.get(PlanPool, (plan.id, pool.id))
    if link is None:
        link = PlanPool(plan_id=plan.id, pool_id=pool.id)
        session.add(link)
    link.priority = priority
    link.nas_allocates = nas_allocates
    link.on_exhausted = on_exhausted
    session.flush()
    return PlanLink(plan.name, pool.name, priority, nas_allocates, on_exhausted)


def thd_detach(session: Session, plan_name: str, pool_name: str) -> None:
    plan = _plan(session, plan_name)
    pool = _pool(session, pool_name)
    result = session.execute(delete(PlanPool).where(PlanPool.plan_id == plan.id,
                                                    PlanPool.pool_id == pool.id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"plan {plan.name} does not use pool {pool.name}")


def thd_replace_plan_pools(session: Session, plan_name: str,
                           pool_names: Sequence[str]) -> list[PlanLink]:
    """Make a plan draw from exactly these pools, in this order (``plan add|set --pool``)."""
    plan = _plan(session, plan_name)
    session.execute(delete(PlanPool).where(PlanPool.plan_id == plan.id))
    return [thd_attach(session, plan_name, name, priority=10 * (i + 1))
            for i, name in enumerate(dict.fromkeys(pool_names))]


def thd_plan_pools(session: Session, plan_name: str) -> list[PlanLink]:
    plan = _plan(session, plan_name)
    rows = session.execute(
        select(Pool.name, PlanPool.priority, PlanPool.nas_allocates, PlanPool.on_exhausted)
        .join(PlanPool, PlanPool.pool_id == Pool.id).where(PlanPool.plan_id == plan.id)
        .order_by(PlanPool.priority, Pool.name)).all()
    return [PlanLink(plan.name, r.name, r.priority, bool(r.nas_allocates),
                     OnExhausted(r.on_exhausted)) for r in rows]


def thd_set_nas_group(session: Session, nas_name: str, group: str | None) -> str | None:
    """Put a NAS in a pool group (None or '' takes it out); returns the group."""
    nas = session.scalars(select(Nas).where(Nas.name == nas_name)).one_or_none()
    if nas is None:
        raise NotFound(f"no NAS named {nas_name!r}")
    session.execute(delete(NasPoolGroup).where(NasPoolGroup.nas_id == nas.id))
    if group:
        if not NAME.match(group):
            raise InvalidInput(f"group {group!r}: use letters, digits, '_', '-', '.'")
        session.add(NasPoolGroup(nas_id=nas.id, group_name=group))
        session.flush()
    return group or None


def thd_nas_groups(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(select(Nas.name, NasPoolGroup.group_name)
                           .join(NasPoolGroup, NasPoolGroup.nas_id == Nas.id)
                           .order_by(NasPoolGroup.group_name, Nas.name)).all()
    return [(r[0], r[1]) for r in rows]


__all__ = [
    "ItemInfo", "NewPool", "PlanLink", "PoolDetail", "PoolItem", "PoolUsage",
    "thd_add_pool", "thd_assign_static", "thd_attach", "thd_detach", "thd_list_leases",
    "thd_list_pools", "thd_nas_groups", "thd_plan_pools", "thd_release_static",
    "thd_remove_pool", "thd_replace_plan_pools", "thd_set_nas_group", "thd_set_pool",
    "thd_show_pool",
]
