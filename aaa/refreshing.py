"""Read-mostly values from the database, kept in memory and loaded once however many ask.

Why this exists: a cache that simply expires on a timer and reloads on the
next miss lets every request arriving during the reload issue its own query.
On SQLite's single DB thread a few hundred such queries queue behind one
another; every Access-Request waiting on them stalls for about a second, the
UDP receive buffer overflows and requests are lost (bench/auth_bench.py at
half of the peak rate: the billing hook's priced-plan set and the pool hook's
plan routes both did this every 10 s). Here:

* one load per key runs at a time; everyone who needs that key waits for it;
* once a key has been loaded, an expired value keeps answering for up to
  ``grace`` more seconds while one reload runs in the background, so the
  login path does not wait for the database for something it knew ``ttl``
  seconds ago. A value is therefore never older than ``ttl + grace`` plus
  one load; callers that must see a change at once call ``invalidate``.

``ttl <= 0`` turns caching off: every ``get`` is a fresh load, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from aaa.maybe import Maybe

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RefreshingCache(Generic[K, V]):
    def __init__(self, load: Callable[[K], defer.Deferred[V]], now: Callable[[], float],
                 ttl: float, grace: float | None = None, max_entries: int = 10_000,
                 name: str = "cache") -> None:
        self.load = load
        self.now = now
        self.ttl = ttl
        self.grace = ttl if grace is None else grace
        self.max_entries = max_entries
        self.name = name
        self._entries: dict[K, tuple[float, V]] = {}  # key -> (fresh until, value)
        # key -> the requests waiting for the load now running (empty for a background one)
        self._loading: dict[K, list[defer.Deferred[V]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> Maybe[V]:
        """The value at once when it is known, else a Deferred of the load (aaa.maybe)."""
        if self.ttl <= 0:
            return defer.maybeDeferred(self.load, key)
        now = self.now()
        hit = self._entries.get(key)
        if hit is not None:
            if now < hit[0]:
                return hit[1]
            if now < hit[0] + self.grace:
                if key not in self._loading:
                    self._start(key, now, [])
                return hit[1]
        waiting: defer.Deferred[V] = defer.Deferred()
        waiters = self._loading.get(key)
        if waiters is not None:
            waiters.append(waiting)
        else:
            # The waiter is registered before the load starts: a load that fires at once
            # (a test's pool, a failure) must still find it.
            self._start(key, now, [waiting])
        return waiting

    def invalidate(self, key: K | None = None) -> None:
        """Forget one key or everything; a load already running is not stored when it ends."""
        if key is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(key, None)
            self._loading.pop(key, None)

    def _start(self, key: K, started: float, waiters: list[defer.Deferred[V]]) -> None:
        self._loading[key] = waiters
        d = defer.maybeDeferred(self.load, key)
        d.addCallbacks(self._loaded, self._failed, callbackArgs=(key, started, waiters),
                       errbackArgs=(key, waiters))

    def _loaded(self, value: V, key: K, started: float,
                waiters: list[defer.Deferred[V]]) -> None:
        if self._loading.get(key) is waiters:
            # Only a load nobody invalidated meanwhile may be kept: it may have read old rows.
            del self._loading[key]
            self._entries.pop(key, None)
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (started + self.ttl, value)
        for waiting in waiters:
            waiting.callback(value)

    def _failed(self, failure: Failure, key: K, waiters: list[defer.Deferred[V]]) -> None:
        if self._loading.get(key) is waiters:
            del self._loading[key]
        if not waiters:
            log.warning("%s: background reload of %r failed: %s", self.name, key,
                        failure.getErrorMessage())
        for waiting in waiters:
            waiting.errback(failure)
