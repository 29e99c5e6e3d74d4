"""Retention: closed sessions and calls older than ``[accounting] keep_days`` leave the live tables.

``retention = "archive"`` moves them into one table per month of their start
(``acct_session_archive_YYYYMM``, ``acct_call_archive_YYYYMM``: same columns plus
``archived_at``), which an operator queries like the live table and drops
whole when that month is no longer wanted; ``"delete"`` drops the rows.

Small batches, each its own transaction, so the live tables are never locked
for more than a moment: a batch reads ``batch`` candidate rows in (started_at,
id) order through the started_at index without locks, locks only the rows it
will move (closed, ended before the cut-off, not kept for billing), copies them
into their archive tables and deletes them, and commits. The next batch goes
on after the last row read, so kept rows are read once per run, not once per
batch. A session reopened by a late packet between the read and the lock no
longer matches the locking SELECT and stays.

What billing still needs is asked through a callable passed in at wiring time
(billing.retention_guard): the open statement period (nothing that ended after
its start moves) and, per subscriber, the month of its oldest unpaid invoice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Index,
    MetaData,
    Select,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Session
from twisted.internet import defer, task

from accounting.models import AcctCall, AcctSession
from core.db.base import UTCDateTime, utcnow

log = logging.getLogger(__name__)

KINDS = ("sessions", "calls")
LIVE: dict[str, Table] = {"sessions": AcctSession.__table__,  # type: ignore[dict-item]
                          "calls": AcctCall.__table__}  # type: ignore[dict-item]
ARCHIVE_PREFIX = {"sessions": "acct_session_archive_", "calls": "acct_call_archive_"}
MODES = ("archive", "delete")


class GuardLike(Protocol):
    """What billing says must stay (billing.retention_guard.RetentionGuard)."""

    @property
    def floor(self) -> datetime | None: ...

    @property
    def subscribers(self) -> dict[int, datetime]: ...


#: ``thd_guard(session, now)``; None (no billing) keeps nothing back.
ThdGuard = Callable[[Session, datetime], GuardLike]


@dataclass(frozen=True)
class NoGuard:
    floor: datetime | None = None
    subscribers: dict[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionSettings:
    keep_days: int  # sessions; 0 = forever
    keep_call_days: int  # calls; 0 = forever
    mode: str = "archive"
    batch: int = 500

    @classmethod
    def from_config(cls, config: Any) -> RetentionSettings:
        a = config.accounting
        return cls(keep_days=a.keep_days, keep_call_days=a.keep_call_days, mode=a.retention,
                   batch=a.retention_batch)

    def keep(self, kind: str) -> int:
        return self.keep_days if kind == "sessions" else self.keep_call_days


@dataclass(frozen=True)
class Cursor:
    started_at: datetime
    id: int


@dataclass(frozen=True)
class BatchResult:
    read: int
    moved: dict[str, int]  # YYYY-MM -> rows
    kept_billing: int  # closed and old, but an unpaid invoice still needs them
    kept_recent: int  # started before the cut-off but still open or ended after it
    cursor: Cursor | None
    done: bool


@dataclass
class RetentionReport:
    kind: str
    mode: str
    dry_run: bool
    requested: datetime  # now - keep days, or --before
    cutoff: datetime  # what was applied: never after billing's open period
    moved: dict[str, int] = field(default_factory=dict)
    kept_billing: int = 0
    kept_recent: int = 0
    batches: int = 0
    largest_batch: int = 0
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.moved.values())

    def describe(self) -> str:
        verb = ("would " if self.dry_run else "") + ("archive" if self.mode == "archive"
                                                     else "delete")
        months = ", ".join(f"{m}: {n}" for m, n in sorted(self.moved.items())) or "none"
        line = (f"{self.kind}: {verb} {self.total} closed before "
                f"{self.cutoff.isoformat(timespec='seconds')} ({months}); kept "
                f"{self.kept_billing} needed by unpaid invoices")
        if self.mode == "archive" and self.moved:
            line += "; into " + ", ".join(archive_name(self.kind, m) for m in sorted(self.moved))
        if not self.complete:
            line += "; stopped at the batch limit, the next run goes on"
        return line


def archive_name(kind: str, month: str) -> str:
    """``acct_session_archive_202405`` for sessions that started in May 2024 (UTC)."""
    return ARCHIVE_PREFIX[kind] + month.replace("-", "")


_ARCHIVES: dict[tuple[str, str], Table] = {}


def archive_table(kind: str, month: str) -> Table:
    """The archive table's definition: the live columns, no foreign keys, and archived_at."""
    name = archive_name(kind, month)
    key = (kind, name)
    if key not in _ARCHIVES:
        live = LIVE[kind]
        cols = [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                       autoincrement=False) for c in live.columns]
        cols.append(Column("archived_at", UTCDateTime(), nullable=True))
        table = Table(name, MetaData(), *cols)
        Index(f"ix_{name}_started_at", table.c.started_at)
        Index(f"ix_{name}_subscriber_id_started_at", table.c.subscriber_id, table.c.started_at)
        _ARCHIVES[key] = table
    return _ARCHIVES[key]


def _ensure_archive(session: Session, table: Table) -> None:
    # On MariaDB a CREATE commits implicitly; it runs before this batch locks anything.
    table.create(session.connection(), checkfirst=True)


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


#: Nothing younger moves, whatever was asked: a spool replayed after a long outage or a
#: NAS's late Interim-Update must still find its session (an archived one would be
#: recreated from zero and its usage charged again).
MIN_AGE = timedelta(days=7)


def effective_cutoff(requested: datetime, guard: GuardLike, now: datetime) -> datetime:
    cutoff = min(requested, now - MIN_AGE)
    return min(cutoff, guard.floor) if guard.floor is not None else cutoff


def thd_retention_guard(session: Session, thd_guard: ThdGuard | None,
                        now: datetime) -> GuardLike:
    return NoGuard() if thd_guard is None else thd_guard(session, now)


def batch_read_statement(kind: str, cutoff: datetime, cursor: Cursor | None,
                         batch: int) -> Select[Any]:
    """The next ``batch`` rows that started before the cut-off, along the started_at index."""
    t = LIVE[kind]
    q = select(t.c.id, t.c.subscriber_id, t.c.started_at, t.c.stopped_at).where(
        t.c.started_at < cutoff)
    if cursor is not None:
        q = q.where(t.c.started_at >= cursor.started_at,
                    or_(t.c.started_at > cursor.started_at,
                        and_(t.c.started_at == cursor.started_at, t.c.id > cursor.id)))
    return q.order_by(t.c.started_at, t.c.id).limit(batch)


def thd_retention_batch(session: Session, kind: str, cutoff: datetime, guard: GuardLike,
                        mode: str, batch: int, cursor: Cursor | None,
                        dry_run: bool = False) -> BatchResult:
    """One bounded batch: read up to ``batch`` rows, move the movable ones, commit (caller)."""
    t = LIVE[kind]
    rows = session.execute(batch_read_statement(kind, cutoff, cursor, batch)).all()
    movable: dict[int, str] = {}
    kept_billing = kept_recent = 0
    for row_id, subscriber_id, started_at, stopped_at in rows:
        if stopped_at is None or stopped_at >= cutoff:
            kept_recent += 1
            continue
        hold = guard.subscribers.get(subscriber_id) if subscriber_id is not None else None
        if hold is not None and stopped_at >= hold:
            kept_billing += 1
            continue
        movable[row_id] = month_of(started_at)
    last = Cursor(rows[-1].started_at, rows[-1].id) if rows else cursor
    moved: dict[str, int] = {}
    if movable and not dry_run:
        # Lock by primary key only, and re-check in Python: a condition on stopped_at lets
        # MariaDB pick a covering secondary index, scan it and keep rows locked that this
        # batch does not move (an open session accounting must update meanwhile).
        locked = session.execute(
            select(t.c.id, t.c.stopped_at).with_hint(t, "FORCE INDEX (PRIMARY)", "mysql")
            .where(t.c.id.in_(sorted(movable))).with_for_update()).all()
        still = {row_id for row_id, stopped in locked
                 if stopped is not None and stopped < cutoff}
        by_month: dict[str, list[int]] = {}
        for row_id in sorted(still):
            by_month.setdefault(movable[row_id], []).append(row_id)
        if mode == "archive":
            now = utcnow()
            names = [c.name for c in t.columns]
            for month, ids in by_month.items():
                archive = archive_table(kind, month)
                _ensure_archive(session, archive)
                session.execute(insert(archive).from_select(
                    [*names, "archived_at"],
                    select(*t.c, _literal_time(now)).where(t.c.id.in_(ids))))
        if still:
            session.execute(delete(t).where(t.c.id.in_(sorted(still)))
                            .execution_options(synchronize_session=False))
        moved = {m: len(ids) for m, ids in by_month.items()}
        kept_recent += len(movable) - len(still)
    elif movable:
        for month in movable.values():
            moved[month] = moved.get(month, 0) + 1
    return BatchResult(read=len(rows), moved=moved, kept_billing=kept_billing,
                       kept_recent=kept_recent, cursor=last, done=len(rows) < batch)


def _literal_time(now: datetime) -> Any:
    from sqlalchemy import literal

    return literal(now, UTCDateTime()).label("archived_at")


def requested_cutoff(settings: RetentionSettings, kind: str, now: datetime,
                     before: datetime | None) -> datetime | None:
    """``before`` if given, else now - keep days; None when the kind is kept forever."""
    if before is not None:
        return before
    days = settings.keep(kind)
    return None if days == 0 else now - timedelta(days=days)


@defer.inlineCallbacks
def run_retention(dbpool: Any, settings: RetentionSettings, thd_guard: ThdGuard | None,
                  *, clock: Any = None, now: datetime | None = None,
                  before: datetime | None = None, dry_run: bool = False,
                  kinds: tuple[str, ...] = KINDS, max_batches: int | None = None,
                  pause: float = 0.0) -> Any:
    """Run batches until each kind is done (or ``max_batches``); returns the reports.

    Each batch is one ``dbpool.run`` (one short transaction); ``pause`` seconds
    between batches leave room for the DB pool's other work.
    """
    now = now or utcnow()
    guard = yield dbpool.run(thd_retention_guard, thd_guard, now)
    reports = []
    for kind in kinds:
        requested = requested_cutoff(settings, kind, now, before)
        if requested is None:
            continue
        report = RetentionReport(kind=kind, mode=settings.mode, dry_run=dry_run,
                                 requested=requested,
                                 cutoff=effective_cutoff(requested, guard, now))
        cursor: Cursor | None = None
        while True:
            if max_batches is not None and report.batches >= max_batches:
                report.complete = False
                break
            result = yield dbpool.run(thd_retention_batch, kind, report.cutoff, guard,
                                      settings.mode, settings.batch, cursor, dry_run)
            report.batches += 1
            report.largest_batch = max(report.largest_batch, result.read)
            for month, n in result.moved.items():
                report.moved[month] = report.moved.get(month, 0) + n
            report.kept_billing += result.kept_billing
            report.kept_recent += result.kept_recent
            cursor = result.cursor
            if result.done:
                break
            if pause and clock is not None:
                yield task.deferLater(clock, pause, lambda: None)
        if report.total or not dry_run:
            log.log(logging.INFO if report.total else logging.DEBUG,
                    "accounting retention: %s", report.describe())
        reports.append(report)
    return reports
