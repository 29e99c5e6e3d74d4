"""Session and call reports: who is online, traffic per day, top talkers, calls per prefix.

Ranges are read through the ``started_at`` indexes, so a report's cost is
the number of sessions or calls in its range, not the table's size. Traffic
counts toward the day a session started (a session's octets are totals, not
a time series); the per-hour picture on the dashboard comes from
``webadmin.stats`` samples instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounting.models import AcctCall, AcctSession
from core.db.models import Subscriber


@dataclass(frozen=True)
class DayTraffic:
    day: str  # YYYY-MM-DD in the report's zone
    sessions: int
    input_octets: int
    output_octets: int
    seconds: int


@dataclass(frozen=True)
class TopTalker:
    login: str
    sessions: int
    input_octets: int
    output_octets: int

    @property
    def total(self) -> int:
        return self.input_octets + self.output_octets


@dataclass(frozen=True)
class PrefixCalls:
    prefix: str
    calls: int
    seconds: int


def thd_sessions_online(session: Session) -> int:
    """Open sessions, counted through the stale-deadline index (set only while open)."""
    return int(session.scalar(select(func.count()).select_from(AcctSession)
                              .where(AcctSession.stale_deadline.is_not(None),
                                     AcctSession.stopped_at.is_(None))) or 0)


def thd_traffic_per_day(session: Session, since: datetime, until: datetime,
                        tz: tzinfo) -> list[DayTraffic]:
    q = (select(AcctSession.started_at, AcctSession.input_octets, AcctSession.output_octets,
                AcctSession.session_time)
         .where(AcctSession.started_at >= since, AcctSession.started_at < until))
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for started, i, o, t in session.execute(q):
        a = acc[started.astimezone(tz).strftime("%Y-%m-%d")]
        a[0] += 1
        a[1] += int(i)
        a[2] += int(o)
        a[3] += int(t)
    return [DayTraffic(d, *v) for d, v in sorted(acc.items())]


def thd_top_talkers(session: Session, since: datetime, until: datetime,
                    limit: int = 10) -> list[TopTalker]:
    total = func.sum(AcctSession.input_octets + AcctSession.output_octets)
    q = (select(AcctSession.subscriber_id, func.count(), func.sum(AcctSession.input_octets),
                func.sum(AcctSession.output_octets))
         .where(AcctSession.started_at >= since, AcctSession.started_at < until,
                AcctSession.subscriber_id.is_not(None))
         .group_by(AcctSession.subscriber_id).order_by(total.desc()).limit(max(1, limit)))
    rows = session.execute(q).all()
    logins = dict(session.execute(select(Subscriber.id, Subscriber.login)
                                  .where(Subscriber.id.in_([r[0] for r in rows]))).all()
                  ) if rows else {}
    return [TopTalker(logins.get(r[0], f"#{r[0]}"), int(r[1]), int(r[2] or 0), int(r[3] or 0))
            for r in rows]


def thd_calls_per_prefix(session: Session, since: datetime, until: datetime,
                         digits: int = 3, limit: int = 20) -> list[PrefixCalls]:
    """Calls and connected seconds per leading ``digits`` of the dialled number."""
    digits = max(1, min(int(digits), 8))
    prefix = func.substr(func.coalesce(AcctCall.callee, ""), 1, digits)
    q = (select(prefix, func.count(), func.sum(AcctCall.duration))
         .where(AcctCall.started_at >= since, AcctCall.started_at < until)
         .group_by(prefix).order_by(func.sum(AcctCall.duration).desc(), prefix)
         .limit(max(1, limit)))
    return [PrefixCalls(p or "", int(n), int(s or 0)) for p, n, s in session.execute(q)]
