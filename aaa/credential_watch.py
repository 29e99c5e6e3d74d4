"""Keep cached credentials honest: poll the database for subscriber and plan changes.

The credential cache (aaa.credentials) can then hold entries for minutes, which
keeps the database out of the login path, while a change made by the CLI, the
web admin or another node reaches this server within one poll interval.

Each poll is three cheap queries: the logins whose ``updated_at`` is recent
(an index range scan), the subscriber count and the rows added since the last
poll (a removal leaves no row to see, so a count that moved more than the
additions explain flushes the whole cache), and the plans' count and newest
``updated_at`` (a plan change touches every subscriber on it, so it flushes
everything).

"Recent" is a short tail (``TAIL_WINDOW``) on every poll, and on every
``FULL_EVERY``-th poll also the whole skew window (``SKEW_WINDOW``, which
absorbs clock skew between the nodes that write and transactions that commit
late), read in chunks of ``WINDOW_CHUNK`` rows, each its own short job on the
DB thread. A poll used to read the whole window every second in one query:
after a bulk import, or when the bench had just created 10,000 subscribers,
that was 10,000 rows a second for a minute, and while the DB thread turns
rows into Python objects it holds the GIL and the reactor waits: tens of
milliseconds on the auth port's p99 (bench/auth_bench.py). A change whose
row becomes visible only after it has left the tail is still seen, within
``FULL_EVERY`` polls. ``updated_at`` is read as the driver returns it (no
datetime parsing): it is only ever compared with itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaa.credentials import CredentialStore
from core.db.base import utcnow
from core.db.models import Plan, Subscriber
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SKEW_WINDOW = timedelta(seconds=60)
TAIL_WINDOW = timedelta(seconds=5)
FULL_EVERY = 15
WINDOW_CHUNK = 500

_RECENT = select(Subscriber.login, type_coerce(Subscriber.updated_at, String))
_WINDOW = (select(Subscriber.id, Subscriber.login, type_coerce(Subscriber.updated_at, String))
           .order_by(Subscriber.id))


@dataclass(frozen=True)
class ChangeSnapshot:
    recent: tuple[tuple[str, object], ...]  # (login, updated_at as stored)
    subscribers: int
    max_id: int
    added: int  # rows with an id above the previous snapshot's max_id
    plans: int
    plans_updated: datetime | None
    full: bool = True  # ``recent`` covers the whole skew window, not only the tail


def thd_snapshot(session: Session, since: datetime, after_id: int) -> ChangeSnapshot:
    """The counts and the rows updated since ``since`` (the tail)."""
    recent = tuple(map(tuple, session.execute(_RECENT.where(Subscriber.updated_at >= since))))
    count, max_id = session.execute(select(func.count(), func.max(Subscriber.id))).one()
    added = session.execute(select(func.count()).where(Subscriber.id > after_id)).scalar_one()
    plans, plans_updated = session.execute(select(func.count(), func.max(Plan.updated_at))).one()
    return ChangeSnapshot(recent, count, max_id or 0, added, plans,  # type: ignore[arg-type]
                          plans_updated, full=False)


def thd_window_chunk(session: Session, since: datetime, after_id: int,
                     limit: int) -> list[tuple[int, str, object]]:
    """Up to ``limit`` (id, login, updated_at) rows updated since ``since``, by id."""
    rows = session.execute(_WINDOW.where(Subscriber.updated_at >= since, Subscriber.id > after_id)
                           .limit(limit))
    return list(map(tuple, rows))  # type: ignore[arg-type]


class ChangeTracker:
    """Compares successive snapshots and tells the store what to forget (pure, testable)."""

    def __init__(self, store: CredentialStore) -> None:
        self.store = store
        self.seen: dict[str, object] = {}
        self.subscribers: int | None = None
        self.max_id = 0
        self.plans: tuple[int, datetime | None] | None = None

    def apply(self, snap: ChangeSnapshot) -> str:
        plans = (snap.plans, snap.plans_updated)
        outcome = "none"
        if self.subscribers is not None:
            if plans != self.plans or snap.subscribers != self.subscribers + snap.added:
                # A plan changed, or a subscriber was removed: nothing cheaper is exact.
                self.store.invalidate()
                outcome = "flush"
            else:
                seen = self.seen
                changed = [login for login, when in snap.recent if seen.get(login) != when]
                for login in changed:
                    self.store.invalidate(login)
                if changed:
                    outcome = f"{len(changed)} logins"
        if snap.full:
            self.seen = dict(snap.recent)  # also forgets rows that left the window
        else:
            self.seen.update(snap.recent)
        self.subscribers, self.max_id, self.plans = snap.subscribers, snap.max_id, plans
        return outcome


class CredentialWatcher(service.Service):
    def __init__(self, store: CredentialStore, dbpool: DBPool, clock: IReactorTime,
                 interval: float = 1.0, preload: bool = False,
                 keep_during_outage: bool = False) -> None:
        """``preload``: fill the store with every subscriber at start (CredentialStore.preload).

        ``keep_during_outage`` (radius.on_database_down = "cache"): a poll that fails because
        the database is unreachable keeps the cache, so logins can be answered from it; the
        whole cache is dropped at the first poll that works again, since changes made
        meanwhile may be older than the poll's window.
        """
        self.preload = preload
        self.keep_during_outage = keep_during_outage
        self._flush_when_back = False
        self.tracker = ChangeTracker(store)
        self.dbpool = dbpool
        self.interval = interval
        self._polls = 0
        self._loop = task.LoopingCall(self.poll)
        self._loop.clock = clock

    def poll(self) -> object:
        # The whole window at the first poll (and after a failed one), then every FULL_EVERY.
        self._polls += 1
        full = self.tracker.subscribers is None or self._polls % FULL_EVERY == 0
        now = utcnow()
        d = self.dbpool.run(thd_snapshot, now - TAIL_WINDOW, self.tracker.max_id)
        if full:
            d.addCallback(self._read_window, now - SKEW_WINDOW)
        d.addCallback(self._apply)

        def failed(f: Failure) -> None:
            self.tracker.subscribers = None
            if f.check(DatabaseUnavailable):
                # core.db.outage logs the outage once; a line a second would flood the log.
                log.debug("credential change poll failed: %s", f.getErrorMessage())
                if self.keep_during_outage:
                    self._flush_when_back = True
                    return
            else:
                log.warning("credential change poll failed: %s", f.getErrorMessage())
            # Without a snapshot nothing can be trusted for long: drop the cache.
            self.tracker.store.invalidate()

        return d.addErrback(failed)

    def _apply(self, snap: ChangeSnapshot) -> str:
        if self._flush_when_back:
            self._flush_when_back = False
            self.tracker.store.invalidate()
        return self.tracker.apply(snap)

    @defer.inlineCallbacks
    def _read_window(self, snap: ChangeSnapshot, since: datetime) -> Any:
        """The snapshot with every row of the skew window, read a chunk per DB job."""
        rows = list(snap.recent)
        after = 0
        while True:
            chunk = yield self.dbpool.run(thd_window_chunk, since, after, WINDOW_CHUNK)
            rows.extend((login, when) for _, login, when in chunk)
            if len(chunk) < WINDOW_CHUNK:
                return replace(snap, recent=tuple(rows), full=True)
            after = chunk[-1][0]

    def startService(self) -> None:
        super().startService()
        if self.interval > 0:
            self._loop.start(self.interval, now=True)
        if self.preload:
            def preloaded(kept: int) -> None:
                log.info("preloaded the credentials of %d subscribers", kept)

            def not_preloaded(f: Failure) -> None:
                # Logins load on demand instead (in batches): slower, not wrong.
                log.info("credential preload stopped: %s", f.getErrorMessage())

            self.tracker.store.preload().addCallbacks(preloaded, not_preloaded)

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        if self._loop.running:
            self._loop.stop()
