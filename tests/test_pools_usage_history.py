"""Pool usage samples: taken by the lease loop, kept in the right table, read per hour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from twisted.internet import task

from core.db.base import utcnow
from core.db.pool import DBPool
from pools.lease import thd_allocate
from pools.manage import NewPool, thd_add_pool
from pools.models import Pool, PoolKind
from pools.service import LeaseExpiryService
from pools.usage_history import PoolUsageSample, thd_pool_usage_history, thd_sample_pool_usage
from webadmin.errors import Forbidden
from webadmin.roles import Caller, cli_caller
from webadmin.service.reports import thd_pool_usage


def setup(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        thd_add_pool(s, NewPool("edge", PoolKind.IPV4, ranges=("100.64.0.0/29",)))


def test_samples_read_back_per_hour_with_the_peak(engine: Engine) -> None:
    """Two samples in one hour give that hour's higher use; old samples are pruned."""
    setup(engine)
    now = utcnow().replace(minute=30)
    with Session(engine) as s, s.begin():
        assert thd_sample_pool_usage(s, now - timedelta(minutes=20)) == 1
        thd_allocate(s, "edge", "alice")
        thd_allocate(s, "edge", "bob")
        thd_sample_pool_usage(s, now - timedelta(minutes=10))
        pool_id = s.scalar(select(Pool.id).where(Pool.name == "edge"))
        s.add(PoolUsageSample(pool_id=pool_id, sampled_at=now - timedelta(days=500), used=1,
                              size=8))
    with Session(engine) as s, s.begin():
        thd_sample_pool_usage(s, now)  # prunes the 500-day-old row
        points = thd_pool_usage_history(s, now - timedelta(hours=2), now + timedelta(hours=1))
        assert s.scalar(select(func.count()).select_from(PoolUsageSample)) == 3
    assert [(p.pool, p.used) for p in points] == [("edge", 2)]
    assert points[0].size == 6  # a /29 less network and broadcast
    with Session(engine) as s:
        rows = thd_pool_usage(s, cli_caller("t"), now - timedelta(days=1),
                              now + timedelta(hours=1), ZoneInfo("Europe/Moscow"), "day")
        assert [(r.pool, r.used) for r in rows] == [("edge", 2)]
        reseller = Caller(actor="operator:r", role="reseller", reseller_id=1)
        with pytest.raises(Forbidden):
            thd_pool_usage(s, reseller, now - timedelta(days=1), now, ZoneInfo("UTC"))


@pytest_twisted.inlineCallbacks
def test_lease_loop_samples_every_interval(engine: Engine, dbpool: DBPool) -> Any:
    """The lease-expiry singleton samples on its first tick, then once per sample_every."""
    setup(engine)
    clock = task.Clock()
    svc = LeaseExpiryService(dbpool, clock, interval=10, sample_every=300)
    yield svc.tick()
    clock.advance(100)
    yield svc.tick()
    clock.advance(250)
    yield svc.tick()
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(PoolUsageSample)) == 2


def test_migration_matches_the_model(engine: Engine) -> None:
    """0800 creates exactly what the model declares (autogenerate finds no difference)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.db.base import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diff if "pool_usage_sample" in repr(d)]
    assert mine == []
