"""The cluster tables (Alembic branch ``cluster``): members' heartbeats and singleton leases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime


class ClusterMember(Base):
    """One radbill process: ``<node>/<worker>``, refreshed every heartbeat."""

    __tablename__ = "cluster_member"

    member: Mapped[str] = mapped_column(String(80), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), index=True)
    worker: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(120))  # this incarnation (pid + random)
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClusterLease(Base):
    """Who runs one singleton until when; ``generation`` counts changes of holder."""

    __tablename__ = "cluster_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))  # a member's token
    member: Mapped[str | None] = mapped_column(String(80))
    node: Mapped[str | None] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
