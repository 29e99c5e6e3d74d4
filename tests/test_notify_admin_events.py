"""Admin notifications pool_high and db_outage (issue 13 point 4), on SQLite and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor

from billing.notify_delivery import NotificationService
from billing.notify_models import Notification
from billing.pool_alerts import PoolLoad, thd_pool_alert_scan
from core.config import parse_config
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable
from pools.models import PoolKind
from radbill.app import pool_alert_jobs
from tests.pools_support import add_pool


def admin_rows(engine: Engine, event: str) -> list[Notification]:
    with Session(engine) as s:
        return list(s.scalars(select(Notification).where(Notification.event == event)
                              .order_by(Notification.id)))


def test_pool_high_once_per_crossing(engine: Engine) -> None:
    """A pool at 90 % is reported once; below it re-arms; crossing again reports again."""
    load = {"wifi": PoolLoad("wifi", 100, 95), "dsl": PoolLoad("dsl", 100, 10)}

    def scan() -> list[str]:
        with Session(engine) as s, s.begin():
            return thd_pool_alert_scan(s, lambda _s: list(load.values()), 90)

    assert scan() == ["wifi"]
    assert scan() == []  # still high: already told
    load["wifi"] = PoolLoad("wifi", 100, 50)
    assert scan() == []
    load["wifi"] = PoolLoad("wifi", 100, 90)
    assert scan() == ["wifi"]
    rows = admin_rows(engine, "pool_high")
    assert [r.payload["pool"] for r in rows] == ["wifi", "wifi"]
    assert rows[0].channel == "admin" and rows[0].payload["percent"] == 95.0
    assert rows[1].payload["free"] == 10 and rows[1].payload["threshold"] == 90


@pytest_twisted.inlineCallbacks
def test_pool_alert_job_reads_the_real_pools(engine: Engine, dbpool: DBPool):
    """The billing leader's pool-alerts job sees a real pool's static addresses fill it."""
    from pools.manage import thd_assign_static
    from tests.pools_support import thd_demo_rows

    add_pool(dbpool, "tiny", PoolKind.IPV4, "100.64.9.0/30")  # 2 usable addresses
    with Session(engine) as s, s.begin():
        thd_demo_rows(s, logins=("a", "b"))
    for login in ("a", "b"):
        yield dbpool.run(thd_assign_static, "tiny", login)
    config = parse_config({"notify": {"enabled": True}, "pools": {"warn_utilization": 90}})
    off = parse_config({"notify": {"enabled": False}})
    assert pool_alert_jobs(off, dbpool) == []  # notifications off: no job
    [(name, seconds, run)] = pool_alert_jobs(config, dbpool)
    assert (name, seconds) == ("pool-alerts", 60.0)
    new = yield run()
    assert new == ["tiny"]
    assert [(r.payload["used"], r.payload["size"]) for r in admin_rows(engine, "pool_high")] \
        == [(2, 2)]


class FlakyPool:
    """The DB pool, unreachable for the first ``down`` calls."""

    def __init__(self, pool: DBPool, down: int) -> None:
        self.pool, self.down = pool, down

    def run(self, fn: Any, *args: Any) -> Any:
        if self.down > 0:
            self.down -= 1
            return defer.fail(DatabaseUnavailable("connection refused"))
        return self.pool.run(fn, *args)


@pytest_twisted.inlineCallbacks
def test_db_outage_is_reported_when_the_database_is_back(engine: Engine, dbpool: DBPool):
    """Claims failing with DatabaseUnavailable, then working: one db_outage admin row."""
    config = parse_config({"notify": {"enabled": True}})
    svc = NotificationService(config, FlakyPool(dbpool, down=2), reactor)
    for _ in range(2):
        sent = yield svc.run_once()
        assert sent == 0
    assert admin_rows(engine, "db_outage") == []  # nothing can be written while it is down
    yield svc.run_once()
    rows = admin_rows(engine, "db_outage")
    assert len(rows) == 1 and rows[0].channel == "admin"
    assert isinstance(rows[0].payload["seconds"], int) and rows[0].payload["seconds"] >= 0
    yield svc.run_once()
    assert len(admin_rows(engine, "db_outage")) == 1  # one outage, one notification
