"""Cached credentials follow database changes through the change poll, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_twisted
from sqlalchemy import Engine, delete, update
from sqlalchemy.orm import Session
from twisted.internet import reactor
from twisted.internet.task import Clock

from aaa import credential_watch
from aaa.credential_watch import ChangeSnapshot, ChangeTracker, CredentialWatcher
from aaa.credentials import CredentialStore
from core.db.models import Plan, Subscriber, SubscriberStatus
from core.db.pool import DBPool

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingStore:
    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def invalidate(self, login: str | None = None) -> None:
        self.calls.append(login)


def snap(recent: dict[str, datetime], count: int, max_id: int, added: int = 0,
         plans: int = 1, plans_updated: datetime = T0, full: bool = True) -> ChangeSnapshot:
    return ChangeSnapshot(tuple(recent.items()), count, max_id, added, plans, plans_updated,
                          full)


def test_tracker_invalidates_only_new_or_changed_logins() -> None:
    """A login updated in the window is invalidated once, not again on the next poll."""
    store = RecordingStore()
    tracker = ChangeTracker(store)  # type: ignore[arg-type]
    tracker.apply(snap({}, 10, 10))
    assert store.calls == []
    tracker.apply(snap({"alice": T0}, 10, 10))
    assert store.calls == ["alice"]
    tracker.apply(snap({"alice": T0}, 10, 10))
    assert store.calls == ["alice"]
    tracker.apply(snap({"alice": T0 + timedelta(seconds=1)}, 10, 10))
    assert store.calls == ["alice", "alice"]


def test_tracker_flushes_on_removal_and_plan_change() -> None:
    """A count that drops (a removal) or a changed plan flushes everything; additions do not."""
    store = RecordingStore()
    tracker = ChangeTracker(store)  # type: ignore[arg-type]
    tracker.apply(snap({}, 10, 10))
    tracker.apply(snap({"new": T0}, 11, 11, added=1))
    assert store.calls == ["new"]
    tracker.apply(snap({"new": T0}, 10, 11))
    assert store.calls == ["new", None]
    tracker.apply(snap({"new": T0}, 10, 11, plans_updated=T0 + timedelta(seconds=5)))
    assert store.calls == ["new", None, None]


def test_tail_polls_keep_the_window_and_full_polls_catch_late_rows() -> None:
    """A tail poll forgets nothing seen before; a row visible late is caught by a full poll."""
    store = RecordingStore()
    tracker = ChangeTracker(store)  # type: ignore[arg-type]
    window = {f"u{i}": T0 for i in range(100)}
    tracker.apply(snap(window, 100, 100))
    tracker.apply(snap({"u1": T0 + timedelta(seconds=2)}, 100, 100, full=False))
    assert store.calls == ["u1"]
    # The next full poll: u1 as changed, plus u7 whose change committed too late for a tail.
    late = {**window, "u1": T0 + timedelta(seconds=2), "u7": T0 + timedelta(seconds=1)}
    tracker.apply(snap(late, 100, 100))
    assert store.calls == ["u1", "u7"]


def _add(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        plan = Plan(name="p", rate_limit="1M/1M")
        s.add(plan)
        s.flush()
        s.add_all([Subscriber(login="alice", plan_id=plan.id), Subscriber(login="bob")])


@pytest_twisted.inlineCallbacks
def test_block_reaches_cached_server_after_one_poll(engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """A status change, a plan change and a removal made in the DB reach the cache via poll."""
    _add(engine)
    store = CredentialStore(dbpool, Clock(), ttl=3600)
    watcher = CredentialWatcher(store, dbpool, Clock(), interval=1.0)
    yield watcher.poll()
    alice = yield store.get("alice")
    assert alice.status is SubscriberStatus.ACTIVE
    with Session(engine) as s, s.begin():
        s.execute(update(Subscriber).where(Subscriber.login == "alice")
                  .values(status=SubscriberStatus.BLOCKED))
    cached = yield store.get("alice")
    assert cached.status is SubscriberStatus.ACTIVE  # still cached: no poll yet
    yield watcher.poll()
    fresh = yield store.get("alice")
    assert fresh.status is SubscriberStatus.BLOCKED
    with Session(engine) as s, s.begin():
        s.execute(update(Plan).values(rate_limit="2M/2M"))
    yield watcher.poll()
    fresh = yield store.get("alice")
    assert fresh.plan is not None and fresh.plan.rate_limit == "2M/2M"
    bob = yield store.get("bob")
    assert bob is not None
    with Session(engine) as s, s.begin():
        s.execute(delete(Subscriber).where(Subscriber.login == "bob"))
    yield watcher.poll()
    gone = yield store.get("bob")
    assert gone is None


@pytest_twisted.inlineCallbacks
def test_full_poll_reads_the_window_in_chunks(engine: Engine, dbpool: DBPool,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch):
    """Every row of the window arrives however small the chunks; a late change is invalidated."""
    monkeypatch.setattr(credential_watch, "WINDOW_CHUNK", 2)
    with Session(engine) as s, s.begin():
        s.add_all([Subscriber(login=f"u{i}") for i in range(7)])
    store = RecordingStore()
    watcher = CredentialWatcher(store, dbpool, Clock(), interval=1.0)  # type: ignore[arg-type]
    yield watcher.poll()  # the first poll is a full one
    assert sorted(watcher.tracker.seen) == [f"u{i}" for i in range(7)]
    # A change stamped before the tail, as a late commit would be: only a full poll sees it.
    with Session(engine) as s, s.begin():
        s.execute(update(Subscriber).where(Subscriber.login == "u5")
                  .values(updated_at=datetime.now(UTC) - timedelta(seconds=30)))
    yield watcher.poll()
    assert store.calls == []
    watcher._polls = credential_watch.FULL_EVERY - 1
    yield watcher.poll()
    assert store.calls == ["u5"]


def test_watcher_is_wired_into_the_service(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """make_service builds a CredentialWatcher polling at the configured interval."""
    from core.config import parse_config
    from radbill.app import make_service

    config = parse_config({"database": {"url": "sqlite://"},
                           "server": {"data_dir": str(tmp_path)},
                           "radius": {"credential_poll_interval": 2.5}})
    app = make_service(config, reactor, check_schema=False)  # type: ignore[arg-type]
    watchers = [s for s in app.root if isinstance(s, CredentialWatcher)]
    assert len(watchers) == 1 and watchers[0].interval == 2.5
    app.dbpool.engine.dispose()
