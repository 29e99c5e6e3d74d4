"""Database outages: noticed once, logged twice (start and end), counted, and not hammered.

Every DB job reports to the tracker: an unreachable database (core.db.pool raises
DatabaseUnavailable) opens an outage with one WARNING naming the cause; the first job that
succeeds afterwards closes it with one WARNING saying how long it lasted and how many jobs
failed meanwhile. In between nothing else is logged for it (the jobs' owners count what they
did instead: accounting spools, auth follows ``radius.on_database_down``) and jobs fail at
once without a connection attempt, except one probe every ``retry_interval`` seconds, so a
dead database does not tie up every DB thread in connect timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge
from twisted.internet.interfaces import IReactorTime

log = logging.getLogger(__name__)

OUTAGES = Counter("radbill_database_outages_total", "Database outages seen by this process")
FAILED_DURING = Counter("radbill_database_outage_failures_total",
                        "Database jobs that failed because the database was unreachable")
DOWN = Gauge("radbill_database_down", "1 while the database is unreachable",
             multiprocess_mode="max")


class OutageTracker:
    def __init__(self, clock: IReactorTime, retry_interval: float = 2.0) -> None:
        self.clock = clock
        self.retry_interval = retry_interval
        self.down_since: float | None = None
        self.failures = 0
        self.outages = 0
        self._last_try = 0.0
        self._listeners: list[Callable[[bool], object]] = []

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def listen(self, fn: Callable[[bool], object]) -> None:
        """``fn(True)`` when an outage starts, ``fn(False)`` when it ends (reactor thread)."""
        self._listeners.append(fn)

    def should_try(self) -> bool:
        """Whether a job should really reach for the database now (always, unless down)."""
        if self.down_since is None:
            return True
        now = self.clock.seconds()
        if now - self._last_try >= self.retry_interval:
            self._last_try = now
            return True
        return False

    def failed(self, why: str) -> None:
        self.failures += 1
        FAILED_DURING.inc()
        if self.down_since is not None:
            return
        self.down_since = self._last_try = self.clock.seconds()
        self.outages += 1
        OUTAGES.inc()
        DOWN.set(1)
        log.warning("database unreachable (%s): accounting goes to the spool, Access-Requests "
                    "follow radius.on_database_down; retrying every %g s", why,
                    self.retry_interval)
        self._tell(True)

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        lasted = self.clock.seconds() - self.down_since
        log.warning("database reachable again after %.1f s (%d database jobs failed meanwhile)",
                    lasted, self.failures)
        self.down_since = None
        self.failures = 0
        DOWN.set(0)
        self._tell(False)

    def _tell(self, down: bool) -> None:
        for fn in self._listeners:
            try:
                fn(down)
            except Exception:
                log.exception("database outage listener failed")
