"""Retention of rated usage deltas: ``usage_delta`` (one row per Interim-Update) is pruned.

A delta's money is in the ledger once it is rated (its entry carries the sum), so
``[billing] keep_usage_days`` after the end of its period it is deleted, with the
same guards as accounting's retention (billing.retention_guard): never an unrated
delta, nothing that ended in the open statement period, nothing of a subscriber's
unpaid invoice months, nothing younger than a week. Batches walk the primary key
(rows are inserted in time order) without locks, lock only the rows they delete,
and stop at the first row inserted after the cut-off; each batch is one short
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from twisted.internet import defer, task

from billing.retention_guard import RetentionGuard
from billing.usage import UsageDeltaRow
from core.db.base import utcnow

MIN_AGE = timedelta(days=7)  # as accounting.retention.MIN_AGE


@dataclass(frozen=True)
class UsageBatch:
    read: int
    deleted: dict[str, int]  # YYYY-MM of the delta's period end -> rows
    kept_billing: int
    kept_unrated: int
    cursor: int
    done: bool


@dataclass
class UsageReport:
    dry_run: bool
    cutoff: datetime
    deleted: dict[str, int] = field(default_factory=dict)
    kept_billing: int = 0
    kept_unrated: int = 0
    batches: int = 0
    complete: bool = True

    kind = "usage"

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def describe(self) -> str:
        months = ", ".join(f"{m}: {n}" for m, n in sorted(self.deleted.items())) or "none"
        line = (f"usage: {'would delete' if self.dry_run else 'delete'} {self.total} rated "
                f"deltas that ended before {self.cutoff.isoformat(timespec='seconds')} "
                f"({months}); kept {self.kept_billing} needed by unpaid invoices, "
                f"{self.kept_unrated} not yet rated")
        if not self.complete:
            line += "; stopped at the batch limit, the next run goes on"
        return line


def thd_usage_retention_batch(session: Session, cutoff: datetime, guard: RetentionGuard,
                              batch: int, cursor: int, dry_run: bool = False) -> UsageBatch:
    u = UsageDeltaRow
    rows = session.execute(
        select(u.id, u.subscriber_id, u.rated, u.period_end, u.created_at)
        .where(u.id > cursor).order_by(u.id).limit(batch)).all()
    doomed: dict[int, str] = {}
    kept_billing = kept_unrated = 0
    last = cursor
    done = len(rows) < batch
    for row_id, subscriber_id, rated, period_end, created_at in rows:
        if created_at >= cutoff:
            done = True  # everything after this was stored after the cut-off
            break
        last = row_id
        if period_end >= cutoff:
            continue
        if not rated:
            kept_unrated += 1
            continue
        hold = guard.subscribers.get(subscriber_id)
        if hold is not None and period_end >= hold:
            kept_billing += 1
            continue
        doomed[row_id] = period_end.strftime("%Y-%m")
    deleted: dict[str, int] = {}
    ids = sorted(doomed)
    if ids and not dry_run:
        # By primary key only (see accounting.retention): no other row stays locked.
        locked = session.execute(
            select(u.id, u.rated).with_hint(UsageDeltaRow.__table__, "FORCE INDEX (PRIMARY)",
                                            "mysql")
            .where(u.id.in_(ids)).with_for_update()).all()
        ids = sorted(row_id for row_id, rated in locked if rated)
        if ids:
            session.execute(delete(u).where(u.id.in_(ids))
                            .execution_options(synchronize_session=False))
    for row_id in ids:
        deleted[doomed[row_id]] = deleted.get(doomed[row_id], 0) + 1
    return UsageBatch(read=len(rows), deleted=deleted, kept_billing=kept_billing,
                      kept_unrated=kept_unrated, cursor=last, done=done)


def usage_cutoff(keep_days: int, guard: RetentionGuard, now: datetime,
                 before: datetime | None) -> datetime | None:
    if before is None and keep_days == 0:
        return None
    cutoff = min(before or now - timedelta(days=keep_days), now - MIN_AGE)
    return min(cutoff, guard.floor) if guard.floor is not None else cutoff


@defer.inlineCallbacks
def run_usage_retention(dbpool: Any, keep_days: int, thd_guard: Any, *, batch: int = 500,
                        clock: Any = None, now: datetime | None = None,
                        before: datetime | None = None, dry_run: bool = False,
                        max_batches: int | None = None, pause: float = 0.0) -> Any:
    """Batches until done (or ``max_batches``); returns a UsageReport, or None when off."""
    now = now or utcnow()
    guard = yield dbpool.run(thd_guard, now)
    cutoff = usage_cutoff(keep_days, guard, now, before)
    if cutoff is None:
        return None
    report = UsageReport(dry_run=dry_run, cutoff=cutoff)
    cursor = 0
    while True:
        if max_batches is not None and report.batches >= max_batches:
            report.complete = False
            break
        r = yield dbpool.run(thd_usage_retention_batch, cutoff, guard, batch, cursor, dry_run)
        report.batches += 1
        for month, n in r.deleted.items():
            report.deleted[month] = report.deleted.get(month, 0) + n
        report.kept_billing += r.kept_billing
        report.kept_unrated += r.kept_unrated
        cursor = r.cursor
        if r.done:
            break
        if pause and clock is not None:
            yield task.deferLater(clock, pause, lambda: None)
    return report
