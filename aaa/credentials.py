"""What authentication needs to know about a subscriber, loaded and cached.

Every Access-Request needs the subscriber's credentials, status and plan. The
lookup runs in the DB thread pool; results (including "no such login") are
kept for ``ttl`` seconds so a burst of logins costs one query per subscriber.
A cache hit is answered as a plain value, a miss with a Deferred (aaa.maybe).
A change made by the CLI or another node is seen within ``ttl``; balances and
leases are never cached here.

This is the hottest database read radbill has (bench/auth_bench.py: with the
default ttl, 10,000 subscribers cycling reload about 1,000 rows a second), so
it is one Core SELECT rather than an ORM query with joinedload, which cost
about twice as much CPU per row; and a cache hit costs no Deferred at all.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaa.maybe import Maybe
from aaa.models import PapVerifier
from core.db.models import Plan, Subscriber, SubscriberStatus
from core.db.pool import DBPool


@dataclass(frozen=True)
class PlanService:
    id: int
    name: str
    rate_limit: str | None
    session_timeout: int | None
    idle_timeout: int | None
    interim_interval: int | None
    simultaneous_use: int | None
    framed_protocol: str | None
    extra_reply: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SubscriberAuth:
    id: int
    login: str
    status: SubscriberStatus
    password_hash: str | None
    nt_hash: bytes | None
    chap_enabled: bool
    cleartext: bytes | None
    static_ip: str | None
    plan: PlanService | None
    legacy_hash: str | None = None  # an imported FreeRADIUS hash (aaa.legacy_passwords)
    pap_verifier: bytes | None = None  # aaa.models.PapVerifier.tag, loaded in the same SELECT

    def __repr__(self) -> str:
        return f"SubscriberAuth(id={self.id}, login={self.login!r}, status={self.status})"


_S = Subscriber.__table__.c
_P = Plan.__table__.c
_V = PapVerifier.__table__.c
_COLUMNS = (
    select(_S.id, _S.login, _S.status, _S.password_hash, _S.nt_hash, _S.legacy_hash,
           _S.chap_enabled,
           _S.cleartext_password, _S.static_ip, _P.id.label("plan_id"),
           _P.name.label("plan_name"), _P.rate_limit, _P.session_timeout, _P.idle_timeout,
           _P.interim_interval, _P.simultaneous_use, _P.framed_protocol, _P.extra_reply,
           _V.tag.label("pap_verifier"))
    .select_from(Subscriber.__table__.outerjoin(Plan.__table__, _S.plan_id == _P.id)
                 .outerjoin(PapVerifier.__table__, _V.subscriber_id == _S.id))
)
_LOAD_SUBSCRIBER = _COLUMNS.where(_S.login == bindparam("login"))
_LOAD_SUBSCRIBERS = _COLUMNS.where(_S.login.in_(bindparam("logins", expanding=True)))

#: Logins per batched load: one SELECT instead of up to 500 (a restart's login storm).
BATCH = 500


def thd_load_subscriber(session: Session, login: str) -> SubscriberAuth | None:
    row = session.execute(_LOAD_SUBSCRIBER, {"login": login}).one_or_none()
    return None if row is None else _subscriber(row)


def thd_load_subscribers(session: Session, logins: list[str]
                         ) -> dict[str, SubscriberAuth | None]:
    """Several logins in one SELECT; every asked login is a key (None: no such login)."""
    found: dict[str, SubscriberAuth | None] = dict.fromkeys(logins)
    for row in session.execute(_LOAD_SUBSCRIBERS, {"logins": sorted(set(logins))}):
        found[row.login] = _subscriber(row)
    return found


def thd_load_chunk(session: Session, after_id: int, limit: int) -> list[SubscriberAuth]:
    """Up to ``limit`` subscribers with an id above ``after_id``, by id (the preload)."""
    rows = session.execute(_COLUMNS.where(_S.id > after_id).order_by(_S.id).limit(limit))
    return [_subscriber(row) for row in rows]


def _subscriber(row: Any) -> SubscriberAuth:
    plan = None
    if row.plan_id is not None:
        plan = PlanService(id=row.plan_id, name=row.plan_name, rate_limit=row.rate_limit,
                           session_timeout=row.session_timeout, idle_timeout=row.idle_timeout,
                           interim_interval=row.interim_interval,
                           simultaneous_use=row.simultaneous_use,
                           framed_protocol=row.framed_protocol,
                           extra_reply=tuple((str(a), str(v)) for a, v in (row.extra_reply or [])))
    return SubscriberAuth(
        id=row.id, login=row.login, status=SubscriberStatus(row.status),
        password_hash=row.password_hash,
        nt_hash=bytes.fromhex(row.nt_hash) if row.nt_hash else None,
        chap_enabled=row.chap_enabled,
        cleartext=(row.cleartext_password.encode() if row.chap_enabled
                   and row.cleartext_password is not None else None),
        static_ip=row.static_ip, plan=plan, legacy_hash=row.legacy_hash,
        pap_verifier=bytes.fromhex(row.pap_verifier) if row.pap_verifier else None)


class CredentialStore:
    """Subscribers by login, cached for ``ttl`` seconds; see the module docstring.

    Expiry times and entries live in two dicts, not one dict of tuples, and every
    subscriber on a plan shares one PlanService: with 10,000 subscribers cached,
    those tuples and copies were 20,000 more objects for every full garbage
    collection to walk (bench/auth_bench.py, gc.get_objects()).
    """

    MAX_PLANS = 10_000

    def __init__(self, dbpool: DBPool, clock: IReactorTime, ttl: float = 10.0,
                 max_entries: int = 200_000, max_loads: int | None = None) -> None:
        """``max_loads``: loads running at once; misses beyond wait and go in batches.

        None starts one load per missing login at once. With a bound, a storm of
        misses (every subscriber after a restart) costs one SELECT per BATCH
        logins instead of one each: the cold login rate of bench/pap_cold_bench.py.
        """
        self.max_loads = max_loads
        self._generation = 0  # moved by every invalidation (the preload checks it)
        self._loads_running = 0
        self._waiting_loads: deque[tuple[str, float, list[Any]]] = deque()
        self.dbpool = dbpool
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._expires: dict[str, float] = {}  # insertion order is load order
        self._entries: dict[str, SubscriberAuth | None] = {}
        self._plans: dict[PlanService, PlanService] = {}
        # Logins being loaded now -> the Deferreds of the requests waiting for that load,
        # so a burst of requests for one subscriber costs one query (only when caching).
        self._loading: dict[str, list[defer.Deferred[SubscriberAuth | None]]] = {}

    def get(self, login: str) -> Maybe[SubscriberAuth | None]:
        now = self.clock.seconds()
        expires = self._expires.get(login)
        if expires is not None and expires > now:
            return self._entries[login]
        waiting: defer.Deferred[SubscriberAuth | None] = defer.Deferred()
        waiters = self._loading.get(login)
        if waiters is not None:
            waiters.append(waiting)
            return waiting
        waiters = [waiting]
        if self.ttl > 0:  # ttl 0 promises a fresh read for every request: no sharing
            self._loading[login] = waiters
        if self.max_loads is None:
            d = self.dbpool.run(thd_load_subscriber, login)
            d.addCallbacks(self._loaded, self._failed, callbackArgs=(login, now, waiters),
                           errbackArgs=(login, waiters))
        elif self._loads_running < self.max_loads:
            self._load_batch([(login, now, waiters)])
        else:
            self._waiting_loads.append((login, now, waiters))
        return waiting

    def _load_batch(self, items: list[tuple[str, float, list[Any]]]) -> None:
        self._loads_running += 1
        d = self.dbpool.run(thd_load_subscribers, [login for login, _, _ in items])

        def loaded(found: dict[str, SubscriberAuth | None]) -> None:
            for login, started, waiters in items:
                self._loaded(found.get(login), login, started, waiters)

        def failed(failure: Failure) -> None:
            for login, _, waiters in items:
                self._failed(failure, login, waiters)

        d.addCallbacks(loaded, failed)
        d.addBoth(self._batch_done)

    def _batch_done(self, _: object) -> None:
        self._loads_running -= 1
        if self._waiting_loads:
            take = min(BATCH, len(self._waiting_loads))
            self._load_batch([self._waiting_loads.popleft() for _ in range(take)])

    def _loaded(self, result: SubscriberAuth | None, login: str, started: float,
                waiters: list[defer.Deferred[SubscriberAuth | None]]) -> None:
        if self._loading.get(login) is waiters:
            # Kept only when nobody invalidated the login meanwhile: the load may have
            # read the row before the change the invalidation was about.
            del self._loading[login]
            result = self._share_plan(result)
            self._forget(login)
            if len(self._expires) >= self.max_entries:
                self._forget(next(iter(self._expires)))
            # Up to a fifth shorter at random: subscribers loaded together (a first pass,
            # a flush) then expire spread out instead of all reloading in the same second.
            self._expires[login] = started + self.ttl * (1.0 - 0.2 * random.random())
            self._entries[login] = result
        for waiting in waiters:
            waiting.callback(result)

    def _share_plan(self, sub: SubscriberAuth | None) -> SubscriberAuth | None:
        own = getattr(sub, "plan", None)
        if own is None:
            return sub
        if len(self._plans) >= self.MAX_PLANS:
            self._plans.clear()
        plan = self._plans.setdefault(own, own)
        return sub if plan is own else replace(sub, plan=plan)  # type: ignore[type-var]

    def _forget(self, login: str) -> None:
        if self._expires.pop(login, None) is not None:
            del self._entries[login]

    def _failed(self, failure: Failure, login: str,
                waiters: list[defer.Deferred[SubscriberAuth | None]]) -> None:
        if self._loading.get(login) is waiters:
            del self._loading[login]
        for waiting in waiters:
            waiting.errback(failure)

    @defer.inlineCallbacks
    def preload(self, chunk: int = BATCH) -> Any:
        """Fill the cache with every subscriber (up to max_entries), a chunk per DB job.

        After a restart the first login of every subscriber would otherwise wait for its
        own load (bench/pap_cold_bench.py: the cold rate). A chunk read while anything was
        invalidated is dropped, not cached: it may hold the row before the change; those
        logins load on demand as usual. Fires with the number of entries kept.
        """
        after, kept = 0, 0
        while self.ttl > 0 and len(self._expires) < self.max_entries:
            generation = self._generation
            started = self.clock.seconds()
            subs = yield self.dbpool.run(thd_load_chunk, after, chunk)
            if generation == self._generation:
                for sub in subs:
                    if sub.login in self._expires or sub.login in self._loading or \
                            len(self._expires) >= self.max_entries:
                        continue
                    self._expires[sub.login] = started + self.ttl * (1.0 - 0.2 * random.random())
                    self._entries[sub.login] = self._share_plan(sub)
                    kept += 1
            if len(subs) < chunk:
                break
            after = subs[-1].id
        return kept

    def known(self, login: str) -> bool:
        """An entry (maybe expired, maybe "no such login") is held for ``login``."""
        return login in self._entries

    def stale(self, login: str) -> SubscriberAuth | None:
        """The last entry loaded for a login, expired or not (radius.on_database_down = cache)."""
        return self._entries.get(login)

    def invalidate(self, login: str | None = None) -> None:
        # A load already running may have read the old row: later requests start a new one.
        self._generation += 1
        if login is None:
            self._expires.clear()
            self._entries.clear()
            self._plans.clear()
            self._loading.clear()
        else:
            self._forget(login)
            self._loading.pop(login, None)
