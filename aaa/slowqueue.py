"""A small, bounded queue for the slow password checks (argon2, legacy hashes, rehashing).

Why: argon2 costs tens of milliseconds and 64 MiB on purpose. Run for every request as it
arrives, a flood of wrong passwords (each one a full check) filled every in-flight slot,
took minutes to drain and left valid logins waiting (issue 12). Here at most ``running``
checks use the CPU at once and at most ``waiting`` wait; what does not fit is shed (the
request gets no reply, the NAS retries later), counted and logged under a line budget.

Waiting checks are served by priority: a login with no recent failures first, then
logins or NAS ports that failed lately (aaa.throttle), then background work (storing a
new hash after an import). When the queue is full a newcomer displaces the newest
waiting check of a lower priority, so a flood of suspects never keeps a clean login
out. A check that waited longer than ``max_wait`` is shed when its turn comes: the NAS
has given up on that request and resent it, and the resend is in the queue too.
Cheap answers (a verifier match, aaa.verifier) never enter the queue at all.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge
from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from aaa.errors import Shed
from aaa.loglimit import LineBudget, suffix

log = logging.getLogger(__name__)

SHED = Counter("radbill_password_checks_shed_total",
               "Slow password checks dropped because their queue was full or they waited "
               "too long", ["priority"])
WAITING = Gauge("radbill_password_checks_waiting", "Slow password checks waiting",
                multiprocess_mode="livesum")


class Priority(enum.IntEnum):
    LOGIN = 0       # a login with no recent failures
    SUSPECT = 1     # its login or NAS port failed lately
    BACKGROUND = 2  # nobody waits for it (storing a hash after an import)


_Job = tuple[float, Callable[..., Any], tuple[Any, ...], "defer.Deferred[Any]"]


#: Niceness of the slow-check threads (Linux: per thread, inherited by argon2's own lane
#: threads): under contention the reactor thread, which answers every cheap request,
#: gets the CPU first, so a flood of argon2 work cannot push valid logins' latency up.
SLOW_NICENESS = 10
_niced = threading.local()


def _run_niced(fn: Callable[..., Any], *args: Any) -> Any:
    if not getattr(_niced, "done", False):
        _niced.done = True
        if sys.platform.startswith("linux"):
            try:  # with a thread id, PRIO_PROCESS means this thread only on Linux
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SLOW_NICENESS)
            except OSError as exc:
                log.debug("cannot lower the slow-check thread's priority: %s", exc)
    return fn(*args)


class SlowCheckQueue:
    def __init__(self, reactor: Any, running: int = 2, waiting: int = 64,
                 max_wait: float = 5.0, lines_per_minute: int = 60,
                 dedicated: bool = False) -> None:
        """``dedicated``: run checks in threads of their own at low CPU priority (the
        server); else in the reactor's pool (tests with fake threads)."""
        self.reactor = reactor
        self._pool: ThreadPool | None = None
        if dedicated:
            self._pool = ThreadPool(minthreads=0, maxthreads=running, name="radbill-slow")
            self._pool_started = False
        self.limit = running
        self.max_waiting = waiting
        self.max_wait = max_wait
        self.running = 0
        self.shed = 0
        self._queues: list[deque[_Job]] = [deque() for _ in Priority]
        self._budget = LineBudget(reactor, lines_per_minute)

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues)

    def submit(self, priority: Priority, fn: Callable[..., Any], *args: Any
               ) -> defer.Deferred[Any]:
        """``fn(*args)`` in the reactor's thread pool when a slot is free; may fail with Shed."""
        d: defer.Deferred[Any] = defer.Deferred()
        ahead = any(self._queues[p] for p in range(priority + 1))  # as deserving, earlier
        if self.running < self._limit_for(priority) and not ahead:
            self._start(fn, args, d)
            return d
        if self.waiting >= self.max_waiting and not self._displace(priority):
            self._shed(priority, d, "the queue is full")
            return d
        self._queues[priority].append((self.reactor.seconds(), fn, args, d))
        WAITING.inc()
        return d

    def admits(self, priority: Priority) -> bool:
        """Whether submit() would take a check of this priority now (else it would shed it).

        Lets a caller shed a flood's excess without building a Deferred per request.
        """
        if self.running < self._limit_for(priority) and \
                not any(self._queues[p] for p in range(priority + 1)):
            return True
        if self.waiting < self.max_waiting:
            return True
        return any(self._queues[p] for p in range(len(self._queues) - 1, priority, -1))

    def refuse(self, priority: Priority, why: str = "the queue is full") -> None:
        """Count and log a check shed before it was submitted (see admits)."""
        self.shed += 1
        SHED.labels(priority.name.lower()).inc()
        allowed, left_out = self._budget.allow(f"shed-{priority.name}")
        if priority != Priority.BACKGROUND and allowed:
            log.warning("dropped a %s password check: %s (%d running, %d waiting)%s",
                        priority.name.lower(), why, self.running, self.waiting,
                        suffix(left_out))

    def _limit_for(self, priority: int) -> int:
        """Background work leaves one slot free for logins (when there are two or more)."""
        return max(1, self.limit - 1) if priority == Priority.BACKGROUND else self.limit

    def _displace(self, priority: Priority) -> bool:
        """Shed the newest waiting check of a lower priority than ``priority``, if any."""
        for lower in range(len(self._queues) - 1, priority, -1):
            queue = self._queues[lower]
            if queue:
                _, _, _, d = queue.pop()
                WAITING.dec()
                self._shed(Priority(lower), d, "a more deserving check needed its place")
                return True
        return False

    def _shed(self, priority: Priority, d: defer.Deferred[Any], why: str) -> None:
        self.shed += 1
        SHED.labels(priority.name.lower()).inc()
        allowed, left_out = self._budget.allow(f"shed-{priority.name}")
        if priority == Priority.BACKGROUND:
            # Expected under load: the work is retried at the subscriber's next login.
            log.debug("postponed background password work: %s", why)
        elif allowed:
            log.warning("dropped a %s password check: %s (%d running, %d waiting)%s",
                        priority.name.lower(), why, self.running, self.waiting,
                        suffix(left_out))
        d.errback(Failure(Shed(why)))

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...],
               d: defer.Deferred[Any]) -> None:
        self.running += 1
        pool = self._pool
        if pool is None:
            work = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), fn,
                                             *args)
        else:
            if not self._pool_started:
                self._pool_started = True
                pool.start()
                self.reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
            work = threads.deferToThreadPool(self.reactor, pool, _run_niced, fn, *args)
        work.addBoth(self._finished, d)

    def _finished(self, result: Any, d: defer.Deferred[Any]) -> None:
        self.running -= 1
        self._next()
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)

    def _next(self) -> None:
        now = self.reactor.seconds()
        for priority, queue in enumerate(self._queues):
            while queue and self.running < self._limit_for(priority):
                queued_at, fn, args, d = queue.popleft()
                WAITING.dec()
                if now - queued_at > self.max_wait:
                    self._shed(Priority(priority), d, f"it waited over {self.max_wait:g} s")
                    continue
                self._start(fn, args, d)
