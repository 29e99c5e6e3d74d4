"""What ``radbill cluster status`` shows: nodes with their last heartbeat, and who runs what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cluster.models import ClusterLease, ClusterMember


@dataclass(frozen=True)
class MemberStatus:
    member: str
    worker: int
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    alive: bool


@dataclass(frozen=True)
class NodeStatus:
    node: str
    heartbeat_at: datetime
    alive: bool
    members: tuple[MemberStatus, ...]


@dataclass(frozen=True)
class SingletonStatus:
    name: str
    node: str | None  # None: nobody holds it (free, released or lapsed)
    member: str | None
    expires_at: datetime | None
    generation: int


@dataclass(frozen=True)
class ClusterStatus:
    nodes: tuple[NodeStatus, ...]
    singletons: tuple[SingletonStatus, ...]


def thd_cluster_status(session: Session, now: datetime, lease_seconds: float
                       ) -> ClusterStatus:
    """A member is alive when it beat within two lease periods (it beats every third of one)."""
    cutoff = now - timedelta(seconds=2 * lease_seconds)
    by_node: dict[str, list[MemberStatus]] = {}
    for m in session.scalars(select(ClusterMember).order_by(ClusterMember.node,
                                                            ClusterMember.worker)):
        by_node.setdefault(m.node, []).append(MemberStatus(
            m.member, m.worker, m.pid, m.version, m.started_at, m.heartbeat_at,
            m.heartbeat_at >= cutoff))
    nodes = tuple(NodeStatus(node, max(m.heartbeat_at for m in members),
                             any(m.alive for m in members), tuple(members))
                  for node, members in by_node.items())
    singletons = []
    for lease in session.scalars(select(ClusterLease).order_by(ClusterLease.name)):
        live = lease.holder is not None and lease.expires_at is not None \
            and lease.expires_at > now
        singletons.append(SingletonStatus(lease.name, lease.node if live else None,
                                          lease.member if live else None,
                                          lease.expires_at if live else None,
                                          int(lease.generation)))
    return ClusterStatus(nodes, tuple(singletons))
