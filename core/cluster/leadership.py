"""Leadership: exactly one process in the whole cluster runs each singleton, by a lease row.

A singleton is a Twisted Service that must not run twice at once: the billing
loop, the lease-expiry sweep, the stale-session sweep, statement runs, the
notification sender. Every radbill process (each worker of each node) runs one
:class:`Leadership` and registers the singletons it could run; every
``lease_seconds / 3`` it claims or renews each one's row in ``cluster_lease``
with one conditional UPDATE (take it when free, expired or already ours) and
writes its heartbeat row in ``cluster_member``, in one transaction. The
process whose claim holds starts the singleton; the others leave it stopped.

Why a row and not ``GET_LOCK``: Galera does not replicate named locks, but it
certifies row writes, so two nodes that claim one row at the same moment
cannot both commit (the loser gets deadlock error 1213 and, on its retry,
sees the winner). A holder that cannot renew stops its singletons before its
lease can have expired (a timer at ``lease_seconds - interval / 2`` after
the start of its last successful claim), so when the lease lapses nobody
runs the singleton any more; a holder killed with -9 simply stops renewing,
and another process takes over at its first claim after expiry: within
``lease_seconds + interval`` (less than two lease periods). A clean stop
releases the leases at once.

Expiry compares wall clocks of different nodes: keep them in NTP sync; skew
eats into the margin of ``interval / 2``. Singletons stay safe even if two
ran at once for a moment (every billing step is idempotent by its ledger
keys, sweeps are idempotent updates); the lease is about not doing the work
twice, the ledger about never counting it twice.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from core.cluster.models import ClusterLease, ClusterMember
from core.db.base import utcnow
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

LEASES = ClusterLease.__table__
MEMBERS = ClusterMember.__table__


@dataclass(frozen=True)
class Identity:
    """One process: its node, its worker number and a token unique to this incarnation."""

    node: str
    worker: int
    token: str

    @property
    def member(self) -> str:
        return f"{self.node}/{self.worker}"


def new_identity(node: str, worker: int = 0) -> Identity:
    return Identity(node, worker, f"{node}/{worker}#{os.getpid()}.{secrets.token_hex(4)}")


@dataclass(frozen=True)
class LeaseView:
    name: str
    held: bool  # by the identity that claimed
    member: str | None
    node: str | None
    expires_at: datetime | None
    generation: int


def _insert_missing(session: Session, names: list[str]) -> None:
    existing = set(session.scalars(select(ClusterLease.name).where(ClusterLease.name.in_(names))))
    missing = [{"name": n, "generation": 0} for n in names if n not in existing]
    if not missing:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sqlite.insert(LEASES).on_conflict_do_nothing(), missing)
    else:
        session.execute(mysql.insert(LEASES).prefix_with("IGNORE"), missing)


def thd_heartbeat(session: Session, ident: Identity, started_at: datetime, now: datetime,
                  version: str) -> str | None:
    """Write this member's heartbeat; returns the token of another live incarnation, if any.

    Another token with a recent heartbeat under the same member name means
    two nodes share a ``node_name``: the caller logs it loudly.
    """
    row = session.get(ClusterMember, ident.member, with_for_update=True)
    other = None
    if row is None:
        session.add(ClusterMember(member=ident.member, node=ident.node, worker=ident.worker,
                                  token=ident.token, pid=os.getpid(), version=version,
                                  started_at=started_at, heartbeat_at=now))
        return None
    if row.token != ident.token and row.heartbeat_at > now - timedelta(seconds=5):
        other = row.token
    row.token, row.pid, row.version = ident.token, os.getpid(), version
    row.started_at, row.heartbeat_at = started_at, now
    return other


def thd_claim(session: Session, names: list[str], ident: Identity, now: datetime,
              lease_seconds: float) -> dict[str, LeaseView]:
    """Take or renew each named lease that is free, expired or already ours."""
    if not names:
        return {}
    _insert_missing(session, names)
    c = LEASES.c
    ours = c.holder == ident.token
    # MariaDB assigns left to right and later assignments see earlier ones: the
    # columns that look at the old holder come before the holder itself.
    session.execute(
        update(LEASES)
        .where(c.name.in_(names),
               or_(ours, c.holder.is_(None), c.expires_at.is_(None), c.expires_at <= now))
        .ordered_values(
            (c.generation, case((ours, c.generation), else_=c.generation + 1)),
            (c.acquired_at, case((ours, c.acquired_at), else_=now)),
            (c.holder, ident.token), (c.member, ident.member), (c.node, ident.node),
            (c.renewed_at, now), (c.expires_at, now + timedelta(seconds=lease_seconds))))
    rows = session.execute(select(c.name, c.holder, c.member, c.node, c.expires_at,
                                  c.generation).where(c.name.in_(names))).all()
    return {r.name: LeaseView(r.name, r.holder == ident.token, r.member, r.node,
                              r.expires_at, int(r.generation)) for r in rows}


def thd_release(session: Session, names: list[str], ident: Identity, now: datetime) -> int:
    """Give up our leases at once (a clean stop): the next claimer need not wait for expiry."""
    if not names:
        return 0
    result = session.execute(update(LEASES).where(LEASES.c.name.in_(names),
                                                   LEASES.c.holder == ident.token)
                             .values(holder=None, expires_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Leadership(service.Service):
    """Claims the leases of the singletons registered with it and runs those it holds."""

    name: str = "leadership"  # type: ignore[assignment]

    def __init__(self, dbpool: DBPool, clock: IReactorTime, ident: Identity,
                 lease_seconds: float = 15.0, version: str = "",
                 now: Callable[[], datetime] = utcnow) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.ident = ident
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / 3.0
        self.version = version
        self.now = now
        self.singletons: dict[str, service.IService] = {}
        self.views: dict[str, LeaseView] = {}
        self.started_at: datetime | None = None
        self.claims_failed = 0
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = clock
        self._deadline: IDelayedCall | None = None
        self._ticking: defer.Deferred[Any] | None = None
        self._warned_duplicate = False

    def register(self, name: str, singleton: service.IService) -> None:
        """Run ``singleton`` (a Service, not started by anyone else) while we hold ``name``."""
        if name in self.singletons:
            raise ValueError(f"singleton {name!r} registered twice")
        self.singletons[name] = singleton

    def holds(self, name: str) -> bool:
        return bool(self.singletons.get(name) and self.singletons[name].running)

    def startService(self) -> None:
        super().startService()
        self.started_at = self.now()
        self._loop.start(self.interval, now=True)

    @defer.inlineCallbacks
    def tick(self) -> Generator[Any, Any, None]:
        """One claim round; never raises (the loop must survive a database outage)."""
        if not self.running:
            return
        started = self.clock.seconds()
        now = self.now()
        names = sorted(self.singletons)
        d = self.dbpool.run(self._thd_round, names, now)
        self._ticking = d
        try:
            views = yield d
        except Exception as exc:
            self.claims_failed += 1
            # An outage is logged once by core.db.outage, not at every renewal.
            log.log(logging.DEBUG if isinstance(exc, DatabaseUnavailable) else logging.WARNING,
                    "cluster: cannot renew leases (%s); singletons stop before they lapse", exc)
            return
        finally:
            self._ticking = None
        if not self.running:
            return
        self.views = views
        held = [n for n in names if views.get(n) is not None and views[n].held]
        if held:
            self._arm_deadline(started)
        for name in names:
            if name in held:
                yield self._start(name)
            else:
                yield self._stop(name)

    def _thd_round(self, session: Session, names: list[str], now: datetime
                   ) -> dict[str, LeaseView]:
        assert self.started_at is not None
        other = thd_heartbeat(session, self.ident, self.started_at, now, self.version)
        if other is not None and not self._warned_duplicate:
            self._warned_duplicate = True
            log.error("cluster: another process (%s) uses the member name %s: give each node "
                      "its own server.node_name", other, self.ident.member)
        return thd_claim(session, names, self.ident, now, self.lease_seconds)

    def _arm_deadline(self, claim_started: float) -> None:
        """Stop every singleton if no later claim succeeds before the lease could lapse."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        delay = max(0.0, claim_started + self.lease_seconds - self.interval / 2
                    - self.clock.seconds())
        self._deadline = self.clock.callLater(delay, self._lapse)

    def _lapse(self) -> None:
        self._deadline = None
        running = [n for n, s in self.singletons.items() if s.running]
        if running:
            log.error("cluster: leases of %s not renewed in time; stopping them here",
                      ", ".join(running))
        for name in running:
            self._stop(name)

    def _start(self, name: str) -> Any:
        singleton = self.singletons[name]
        if singleton.running:
            return None
        log.info("cluster: %s now runs %s", self.ident.member, name)
        try:
            singleton.startService()
        except Exception:
            log.exception("cluster: cannot start %s", name)
        return None

    def _stop(self, name: str) -> defer.Deferred[Any]:
        singleton = self.singletons[name]
        if not singleton.running:
            return defer.succeed(None)
        log.info("cluster: %s no longer runs %s", self.ident.member, name)
        d = defer.maybeDeferred(singleton.stopService)
        d.addErrback(lambda f: log.error("cluster: stopping %s failed: %s", name,
                                         f.getErrorMessage()))
        return d

    @defer.inlineCallbacks
    def stopService(self) -> Generator[Any, Any, None]:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        if self._ticking is not None:
            try:
                yield self._ticking
            except Exception as exc:
                log.debug("cluster: last claim failed during stop: %s", exc)
        held = [n for n, s in self.singletons.items() if s.running]
        yield defer.gatherResults([self._stop(n) for n in held], consumeErrors=True)
        if held:
            try:
                yield self.dbpool.run(thd_release, held, self.ident, self.now())
            except Exception as exc:
                log.warning("cluster: cannot release leases %s (they lapse by themselves): %s",
                            ", ".join(held), exc)
