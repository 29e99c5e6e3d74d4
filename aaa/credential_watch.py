"""Keep cached credentials honest: poll the database for subscriber and plan changes.

The credential cache (aaa.credentials) can then hold entries for minutes, which
keeps the database out of the login path, while a change made by the CLI, the
web admin or another node reaches this server within one poll interval.

Each poll is three cheap queries: the logins whose ``updated_at`` falls in a
trailing window (an index range scan; the window absorbs clock skew between
the nodes that write), the subscriber count and the rows added since the last poll (a removal
leaves no row to see, so a count that moved more than the additions explain
flushes the whole cache),
and the plans' count and newest ``updated_at`` (a plan change touches every
subscriber on it, so it flushes everything).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twisted.application import service
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaa.credentials import CredentialStore
from radbill.db.base import utcnow
from radbill.db.models import Plan, Subscriber
from radbill.db.pool import DBPool

log = logging.getLogger(__name__)

SKEW_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class ChangeSnapshot:
    recent: tuple[tuple[str, datetime], ...]
    subscribers: int
    max_id: int
    added: int  # rows with an id above the previous snapshot's max_id
    plans: int
    plans_updated: datetime | None


def thd_snapshot(session: Session, since: datetime, after_id: int) -> ChangeSnapshot:
    recent = session.execute(select(Subscriber.login, Subscriber.updated_at)
                             .where(Subscriber.updated_at >= since)).all()
    count, max_id = session.execute(select(func.count(), func.max(Subscriber.id))).one()
    added = session.execute(select(func.count()).where(Subscriber.id > after_id)).scalar_one()
    plans, plans_updated = session.execute(select(func.count(), func.max(Plan.updated_at))).one()
    return ChangeSnapshot(tuple((r.login, r.updated_at) for r in recent), count, max_id or 0,
                          added, plans, plans_updated)


class ChangeTracker:
    """Compares successive snapshots and tells the store what to forget (pure, testable)."""

    def __init__(self, store: CredentialStore) -> None:
        self.store = store
        self.seen: dict[str, datetime] = {}
        self.subscribers: int | None = None
        self.max_id = 0
        self.plans: tuple[int, datetime | None] | None = None

    def apply(self, snap: ChangeSnapshot, window_start: datetime) -> str:
        plans = (snap.plans, snap.plans_updated)
        outcome = "none"
        if self.subscribers is not None:
            if plans != self.plans or snap.subscribers != self.subscribers + snap.added:
                # A plan changed, or a subscriber was removed: nothing cheaper is exact.
                self.store.invalidate()
                outcome = "flush"
            else:
                changed = [login for login, when in snap.recent if self.seen.get(login) != when]
                for login in changed:
                    self.store.invalidate(login)
                if changed:
                    outcome = f"{len(changed)} logins"
        self.seen = {login: when for login, when in snap.recent if when >= window_start}
        self.subscribers, self.max_id, self.plans = snap.subscribers, snap.max_id, plans
        return outcome


class CredentialWatcher(service.Service):
    def __init__(self, store: CredentialStore, dbpool: DBPool, clock: IReactorTime,
                 interval: float = 1.0) -> None:
        self.tracker = ChangeTracker(store)
        self.dbpool = dbpool
        self.interval = interval
        self._loop = task.LoopingCall(self.poll)
        self._loop.clock = clock

    def poll(self) -> object:
        window_start = utcnow() - SKEW_WINDOW
        d = self.dbpool.run(thd_snapshot, window_start, self.tracker.max_id)
        d.addCallback(self.tracker.apply, window_start)

        def failed(f: Failure) -> None:
            # Without a snapshot nothing can be trusted for long: drop the cache.
            self.tracker.store.invalidate()
            self.tracker.subscribers = None
            log.warning("credential change poll failed: %s", f.getErrorMessage())

        return d.addErrback(failed)

    def startService(self) -> None:
        super().startService()
        if self.interval > 0:
            self._loop.start(self.interval, now=True)

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        if self._loop.running:
            self._loop.stop()
