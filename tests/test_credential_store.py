"""CredentialStore: shared loads, expiry spread, and no stale row kept after an invalidation."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from aaa.credentials import CredentialStore
from tests.deferred_support import answered


class ManualPool:
    """A DBPool whose loads the test answers by hand."""

    def __init__(self) -> None:
        self.pending: list[defer.Deferred[Any]] = []

    def run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(d)
        return d



def test_concurrent_misses_share_one_query() -> None:
    """Requests for a login being loaded wait for that load instead of starting their own."""
    pool, clock = ManualPool(), Clock()
    store = CredentialStore(pool, clock, ttl=60)  # type: ignore[arg-type]
    waiting = [answered(store.get("alice")) for _ in range(5)]
    assert len(pool.pending) == 1
    pool.pending.pop().callback("row")
    assert waiting == [["row"]] * 5
    assert answered(store.get("alice")) == ["row"] and not pool.pending


def test_invalidated_while_loading_is_not_cached() -> None:
    """A load that was running when the login changed answers its requests but is not kept."""
    pool, clock = ManualPool(), Clock()
    store = CredentialStore(pool, clock, ttl=60)  # type: ignore[arg-type]
    first = answered(store.get("alice"))
    store.invalidate("alice")
    pool.pending.pop().callback("old row")
    assert first == ["old row"]
    later = answered(store.get("alice"))
    assert later == [] and len(pool.pending) == 1  # a fresh read, not the old row
    pool.pending.pop().callback("new row")
    assert later == ["new row"]


def test_entries_expire_spread_within_the_ttl() -> None:
    """Loaded together, entries expire between 0.8 and 1.0 times the TTL, not all at once."""
    pool, clock = ManualPool(), Clock()
    store = CredentialStore(pool, clock, ttl=100)  # type: ignore[arg-type]
    for i in range(200):
        store.get(f"u{i}")
    while pool.pending:
        pool.pending.pop().callback("row")
    clock.advance(79.9)
    for i in range(200):
        store.get(f"u{i}")
    assert not pool.pending  # nothing expires before 0.8 x ttl
    clock.advance(10)
    for i in range(200):
        store.get(f"u{i}")
    assert 20 < len(pool.pending) < 180  # some, not all, expired by 0.9 x ttl
    clock.advance(10.1)
    for i in range(200):
        store.get(f"u{i}")
    assert len(pool.pending) == 200  # all expired by 1.0 x ttl (the earlier reloads still run)


def test_subscribers_of_one_plan_share_its_object_and_the_cache_is_bounded() -> None:
    """Equal plans loaded for two logins become one object; beyond max_entries the oldest go."""
    from aaa.credentials import PlanService, SubscriberAuth
    from core.db.models import SubscriberStatus

    def sub(login: str) -> SubscriberAuth:
        plan = PlanService(id=1, name="home", rate_limit="1M/1M", session_timeout=None,
                           idle_timeout=None, interim_interval=None, simultaneous_use=None,
                           framed_protocol=None, extra_reply=())
        return SubscriberAuth(id=1, login=login, status=SubscriberStatus.ACTIVE,
                              password_hash=None, nt_hash=None, chap_enabled=False,
                              cleartext=None, static_ip=None, plan=plan)

    pool, clock = ManualPool(), Clock()
    store = CredentialStore(pool, clock, ttl=60, max_entries=2)  # type: ignore[arg-type]
    alice, bob, carol = (answered(store.get(name)) for name in ("alice", "bob", "carol"))
    for d, login in zip(pool.pending, ("alice", "bob", "carol"), strict=True):
        d.callback(sub(login))
    assert alice[0].plan is bob[0].plan is carol[0].plan
    assert alice[0].plan == sub("x").plan and alice[0].login == "alice"
    assert answered(store.get("carol")) == carol and answered(store.get("bob")) == bob
    pool.pending.clear()
    store.get("alice")
    assert len(pool.pending) == 1  # evicted when carol came in
