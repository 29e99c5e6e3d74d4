"""Admin notification ``pool_high``: an address pool above ``[pools] warn_utilization``.

Billing does not read the pools' tables: the usage comes from a callable given at
wiring time (pools.manage.thd_list_pools, adapted by radbill.app). A pool is
reported once when it reaches the threshold (a ``pool_alert_state`` row
remembers it, written with the outbox row in one transaction) and re-armed
when it falls back below, so a pool hovering at the limit does not send a
message every minute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from billing.notify import enqueue_admin
from billing.notify_models import PoolAlertState
from core.db.base import utcnow


@dataclass(frozen=True)
class PoolLoad:
    name: str
    size: int
    used: int

    @property
    def percent(self) -> float:
        return round(100.0 * self.used / self.size, 1) if self.size else 0.0


PoolLoadSource = Callable[[Session], Sequence[PoolLoad]]


def thd_pool_alert_scan(session: Session, loads: PoolLoadSource, warn: int,
                        now: datetime | None = None) -> list[str]:
    """Queue ``pool_high`` for pools newly at or above ``warn`` percent; returns their names."""
    now = now or utcnow()
    current = {p.name: p for p in loads(session)}
    alerted = set(session.scalars(select(PoolAlertState.pool_name)))
    high = {n for n, p in current.items() if p.size > 0 and p.percent >= warn}
    new = sorted(high - alerted)
    for name in new:
        p = current[name]
        session.execute(insert(PoolAlertState).values(pool_name=name, percent=str(p.percent),
                                                      notified_at=now))
        enqueue_admin(session, "pool_high", {"pool": name, "percent": p.percent,
                                             "used": p.used, "size": p.size,
                                             "free": p.size - p.used, "threshold": warn}, now)
    rearm = sorted(alerted - high)
    if rearm:
        session.execute(delete(PoolAlertState).where(PoolAlertState.pool_name.in_(rearm)))
    return new
