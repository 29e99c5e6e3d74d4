"""Forgetting old Idempotency-Keys: an hourly delete of those older than 30 days.

Run by every process that serves the API (``radbill serve`` with [web], ``radbill
web``); several at once are harmless (the same DELETE). A retry a month later is a
new request: clients retry within minutes or hours, and the payment's own
reference still keeps a bank transfer exactly once for ever.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.application import service
from twisted.internet import task

from webadmin.service.idempotency import KEEP, thd_expire

log = logging.getLogger(__name__)
INTERVAL = 3600.0


class IdempotencyExpiry(service.Service):
    def __init__(self, dbpool: Any, reactor: Any, interval: float = INTERVAL) -> None:
        self.dbpool, self.reactor, self.interval = dbpool, reactor, interval
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.expire)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False)

    def stopService(self) -> Any:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def _expire(self) -> int:
        n = await self.dbpool.run(thd_expire, KEEP)
        if n:
            log.info("forgot %d Idempotency-Keys older than %d days", n, KEEP.days)
        return int(n)

    def expire(self) -> Any:
        from twisted.internet import defer

        d = defer.ensureDeferred(self._expire())
        d.addErrback(lambda f: log.warning("expiring Idempotency-Keys failed: %s",
                                           f.getErrorMessage()))
        return d
