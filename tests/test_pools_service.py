"""The lease expiry service: a LoopingCall that frees lapsed offers through the DB pool."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest_twisted
from twisted.internet import reactor, task

from core.db.base import utcnow
from core.db.pool import DBPool
from pools.lease import thd_allocate
from pools.models import ItemState, PoolKind
from pools.service import LeaseExpiryService
from tests.pools_support import add_pool, thd_count


@pytest_twisted.inlineCallbacks
def test_expiry_service_frees_lapsed_offers_in_batches(dbpool: DBPool) -> Generator[Any, Any, None]:
    """Started, it expires at once; later ticks free what lapsed since, batch by batch."""
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.0/28")
    past = utcnow() - timedelta(seconds=120)
    for i in range(5):
        dbpool.run_sync(thd_allocate, "p", f"u{i}", offer_seconds=60, now=past)
    dbpool.run_sync(thd_allocate, "p", "fresh", offer_seconds=3600)
    clock = task.Clock()
    service = LeaseExpiryService(dbpool, clock, interval=10, batch=2)  # type: ignore[arg-type]
    service.startService()
    try:
        for _ in range(100):  # the first tick runs in the DB thread pool
            if service.expired_total == 5:
                break
            yield task.deferLater(reactor, 0.02, lambda: None)
        assert service.expired_total == 5
        assert dbpool.run_sync(thd_count, ItemState.OFFERED) == 1
        n = yield service.tick()
        assert n == 0
    finally:
        service.stopService()
    assert not service._loop.running


@pytest_twisted.inlineCallbacks
def test_expiry_tick_survives_a_database_error() -> Generator[Any, Any, None]:
    """A failing tick logs and returns 0 instead of killing the loop."""

    class Broken:
        def run(self, *args: object, **kwargs: object) -> object:
            from twisted.internet import defer

            return defer.fail(RuntimeError("database down"))

    service = LeaseExpiryService(Broken(), task.Clock())  # type: ignore[arg-type]
    n = yield service.tick()
    assert n == 0 and service.expired_total == 0
