"""The lease expiry loop: unconfirmed offers and lapsed leases go back to their pools.

It also samples every pool's use every ``sample_every`` seconds
(``pools.usage_history``), for the admin's pool-usage report: this loop is a
cluster singleton, so one process writes the samples.

Allocation also expires leases of a pool it finds full, so a late tick never
causes a false "pool is full"; this loop keeps ``pool list`` honest and the
free index warm. Batches are bounded and taken with SKIP LOCKED, so the loop
never waits behind (or blocks) an allocation.
"""

from __future__ import annotations

import logging

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from core.db.pool import DBPool
from pools.lease import thd_expire_leases
from pools.usage_history import SAMPLE_SECONDS, thd_sample_pool_usage

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0
BATCH = 1000
MAX_BATCHES_PER_TICK = 50


class LeaseExpiryService(service.Service):
    def __init__(self, dbpool: DBPool, clock: IReactorTime,
                 interval: float = DEFAULT_INTERVAL, batch: int = BATCH,
                 sample_every: float = SAMPLE_SECONDS) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.interval = interval
        self.batch = batch
        self.sample_every = sample_every
        self._sampled_at: float | None = None
        self.expired_total = 0
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = clock

    @defer.inlineCallbacks
    def tick(self):
        """Expire in batches until one comes back short; errors are logged, never raised."""
        expired = 0
        try:
            for _ in range(MAX_BATCHES_PER_TICK):
                n = yield self.dbpool.run(thd_expire_leases, None, self.batch)
                expired += n
                if n < self.batch:
                    break
        except Exception as exc:  # the loop must survive a database outage
            log.error("lease expiry failed: %s", exc)
        if expired:
            self.expired_total += expired
            log.info("%d expired lease(s) returned to their pools", expired)
        now = self.clock.seconds()
        if self.sample_every > 0 and (self._sampled_at is None
                                      or now - self._sampled_at >= self.sample_every):
            self._sampled_at = now
            try:
                yield self.dbpool.run(thd_sample_pool_usage)
            except Exception as exc:
                log.error("pool usage sample failed: %s", exc)
        return expired

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=True)

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        return None
