"""RefreshingCache: one load per key at a time, stale values answer while a reload runs."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from aaa.refreshing import RefreshingCache
from tests.deferred_support import answered


class Loads:
    """A load function whose Deferreds the test fires by hand."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, defer.Deferred[Any]]] = []

    def __call__(self, key: str) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append((key, d))
        return d

    def fire(self, value: Any) -> None:
        self.pending.pop(0)[1].callback(value)



def test_concurrent_misses_share_one_load() -> None:
    """Many requests for a key nobody has loaded yet cause one load and all get its value."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10)
    waiting = [answered(cache.get("k")) for _ in range(50)]
    assert len(loads.pending) == 1
    loads.fire("v1")
    assert all(w == ["v1"] for w in waiting)
    assert answered(cache.get("k")) == ["v1"] and not loads.pending


def test_expired_value_answers_while_one_reload_runs() -> None:
    """Past the TTL the old value answers at once, one reload starts, its value is used next."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10)
    cache.get("k")
    loads.fire("old")
    now[0] = 12.0
    got = [answered(cache.get("k")) for _ in range(20)]
    assert got == [["old"]] * 20
    assert len(loads.pending) == 1  # one background reload, not twenty
    loads.fire("new")
    assert answered(cache.get("k")) == ["new"]


def test_value_past_the_grace_is_not_served() -> None:
    """A value older than ttl + grace waits for the reload instead of answering stale."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10, grace=5)
    cache.get("k")
    loads.fire("old")
    now[0] = 16.0
    got = answered(cache.get("k"))
    assert got == []
    loads.fire("new")
    assert got == ["new"]


def test_invalidate_during_a_load_does_not_keep_its_result() -> None:
    """A load running when its key is invalidated may have read old rows: not cached."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10)
    first = answered(cache.get("k"))
    cache.invalidate("k")
    loads.fire("read-before-change")
    assert first == ["read-before-change"]  # its own waiter still gets an answer
    second = answered(cache.get("k"))
    assert second == [] and len(loads.pending) == 1  # not served from the cache
    loads.fire("fresh")
    assert second == ["fresh"]


def test_failed_load_reaches_waiters_and_is_retried() -> None:
    """A failing load errbacks its waiters and the next get loads again."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10)
    got = answered(cache.get("k"))
    loads.pending.pop(0)[1].errback(RuntimeError("db down"))
    assert got[0].check(RuntimeError)
    cache.get("k")
    assert len(loads.pending) == 1


def test_failed_background_reload_keeps_the_stale_value() -> None:
    """A background reload that fails leaves the stale value in place, then tries again."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=10)
    cache.get("k")
    loads.fire("old")
    now[0] = 11.0
    assert answered(cache.get("k")) == ["old"]
    loads.pending.pop(0)[1].errback(RuntimeError("db down"))
    assert answered(cache.get("k")) == ["old"]
    assert len(loads.pending) == 1


def test_zero_ttl_loads_every_time() -> None:
    """ttl 0 turns caching off: each get is its own load."""
    loads, now = Loads(), [0.0]
    cache = RefreshingCache(loads, lambda: now[0], ttl=0)
    cache.get("k")
    cache.get("k")
    assert len(loads.pending) == 2


def test_synchronous_load_reaches_its_first_waiter() -> None:
    """A load that has already fired when it returns still answers the request that started it."""
    cache = RefreshingCache(lambda key: defer.succeed(key.upper()), lambda: 0.0, ttl=10)
    assert answered(cache.get("k")) == ["K"]


def test_bounded() -> None:
    """Beyond max_entries the oldest entry goes."""
    cache = RefreshingCache(lambda key: defer.succeed(key), lambda: 0.0, ttl=10, max_entries=2)
    for key in ("a", "b", "c"):
        cache.get(key)
    assert len(cache) == 2
