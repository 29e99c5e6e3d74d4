"""What authentication needs to know about a subscriber, loaded and cached.

Every Access-Request needs the subscriber's credentials, status and plan. The
lookup runs in the DB thread pool; results (including "no such login") are
kept for ``ttl`` seconds so a burst of logins costs one query per subscriber.
A change made by the CLI or another node is seen within ``ttl``; balances and
leases are never cached here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from radbill.db.models import Subscriber, SubscriberStatus
from radbill.db.pool import DBPool


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

    def __repr__(self) -> str:
        return f"SubscriberAuth(id={self.id}, login={self.login!r}, status={self.status})"


def thd_load_subscriber(session: Session, login: str) -> SubscriberAuth | None:
    row = session.scalars(select(Subscriber).options(joinedload(Subscriber.plan))
                          .where(Subscriber.login == login)).one_or_none()
    if row is None:
        return None
    plan = None
    if row.plan is not None:
        p = row.plan
        plan = PlanService(id=p.id, name=p.name, rate_limit=p.rate_limit,
                           session_timeout=p.session_timeout, idle_timeout=p.idle_timeout,
                           interim_interval=p.interim_interval,
                           simultaneous_use=p.simultaneous_use,
                           framed_protocol=p.framed_protocol,
                           extra_reply=tuple((str(a), str(v)) for a, v in (p.extra_reply or [])))
    return SubscriberAuth(
        id=row.id, login=row.login, status=SubscriberStatus(row.status),
        password_hash=row.password_hash,
        nt_hash=bytes.fromhex(row.nt_hash) if row.nt_hash else None,
        chap_enabled=row.chap_enabled,
        cleartext=(row.cleartext_password.encode() if row.chap_enabled
                   and row.cleartext_password is not None else None),
        static_ip=row.static_ip, plan=plan)


class CredentialStore:
    def __init__(self, dbpool: DBPool, clock: IReactorTime, ttl: float = 10.0,
                 max_entries: int = 200_000) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, SubscriberAuth | None]] = OrderedDict()

    @defer.inlineCallbacks
    def get(self, login: str):  # type: ignore[no-untyped-def]
        now = self.clock.seconds()
        hit = self._cache.get(login)
        if hit is not None and hit[0] > now:
            return hit[1]
        result = yield self.dbpool.run(thd_load_subscriber, login)
        if self.ttl > 0:
            self._cache.pop(login, None)
            if len(self._cache) >= self.max_entries:
                self._cache.popitem(last=False)
            self._cache[login] = (now + self.ttl, result)
        return result

    def invalidate(self, login: str | None = None) -> None:
        if login is None:
            self._cache.clear()
        else:
            self._cache.pop(login, None)
