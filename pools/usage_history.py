"""Pool usage over time: a sample of every pool's used and size, every few minutes.

The lease-expiry singleton (``pools.service``) takes the sample, so one process
in the cluster writes it whatever the number of nodes; a sample is one
``INSERT`` of one row per pool, and samples older than ``KEEP_DAYS`` are
deleted as new ones come. The report reads the highest use per pool and hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db.base import Base, UTCDateTime, utcnow
from pools.models import MYSQL, Pool

SAMPLE_SECONDS = 300.0
KEEP_DAYS = 400


class PoolUsageSample(Base):
    __tablename__ = "pool_usage_sample"
    __table_args__ = (Index("ix_pool_usage_sample_at", "sampled_at", "pool_id"), MYSQL)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"))
    sampled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)


def thd_sample_pool_usage(session: Session, now: datetime | None = None) -> int:
    """One row per pool with its current use; returns how many pools were sampled."""
    from pools.manage import thd_list_pools

    now = now or utcnow()
    ids = dict(session.execute(select(Pool.name, Pool.id)).all())
    rows = [{"pool_id": ids[p.name], "sampled_at": now, "used": p.used, "size": p.size}
            for p in thd_list_pools(session) if p.name in ids]
    if rows:
        session.execute(insert(PoolUsageSample), rows)
    session.execute(delete(PoolUsageSample).where(
        PoolUsageSample.sampled_at < now - timedelta(days=KEEP_DAYS)))
    return len(rows)


@dataclass(frozen=True)
class UsagePoint:
    pool: str
    bucket: str  # 'YYYY-MM-DD HH' (UTC)
    used: int  # the most used in that hour
    size: int


def thd_pool_usage_history(session: Session, since: datetime,
                           until: datetime) -> list[UsagePoint]:
    """The highest use per pool and hour between two instants, oldest first."""
    col = PoolUsageSample.sampled_at
    bucket = (func.strftime("%Y-%m-%d %H", col) if session.get_bind().dialect.name == "sqlite"
              else func.date_format(col, "%Y-%m-%d %H")).label("bucket")
    q = (select(Pool.name, bucket, func.max(PoolUsageSample.used),
                func.max(PoolUsageSample.size))
         .join(Pool, Pool.id == PoolUsageSample.pool_id)
         .where(col >= since, col < until)
         .group_by(Pool.name, bucket).order_by(bucket, Pool.name))
    return [UsagePoint(n, b, int(u or 0), int(s or 0)) for n, b, u, s in session.execute(q)]
