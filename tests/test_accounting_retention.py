"""Retention of closed sessions and calls (issue 14 point 4), on SQLite and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor, task

from accounting.hygiene import thd_close_stale
from accounting.models import AcctCall, AcctSession
from accounting.retention import (
    NoGuard,
    RetentionSettings,
    archive_name,
    run_retention,
    thd_retention_batch,
)
from accounting.store import STALE_CAUSE
from billing.models import BillingAccount
from billing.retention_guard import make_retention_guard, thd_unpaid_invoice_floors
from billing.statement_models import Invoice, Statement
from billing.statements import StatementSettings
from core.config import parse_config
from core.db.pool import DBPool
from radbill import cli
from tests.billing_support import make_subscriber

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
_ids = count(1)


def add_session(s: Session, start: datetime, stop: datetime | None,
                subscriber_id: int | None = None, user: str = "alice") -> int:
    n = next(_ids)
    row = AcctSession(unique_id=f"s{n:031d}", nas_identity="10.0.0.1", nas_id=1,
                      user_name=user, session_id=f"S{n}", subscriber_id=subscriber_id,
                      started_at=start, updated_at=stop or start, stopped_at=stop,
                      last_seen_at=stop or start, interim_interval=300,
                      stale_deadline=None if stop else start + timedelta(hours=1),
                      closed_by="stop" if stop else None)
    s.add(row)
    s.flush()
    return row.id


def add_call(s: Session, start: datetime, stop: datetime | None, seen: datetime | None = None,
             subscriber_id: int | None = None) -> int:
    n = next(_ids)
    row = AcctCall(unique_id=f"c{n:031d}", nas_identity="10.0.0.9", nas_id=2, user_name="pbx",
                   session_id=f"C{n}", subscriber_id=subscriber_id, started_at=start,
                   updated_at=seen or stop or start, stopped_at=stop,
                   last_seen_at=seen or stop or start, duration=60)
    s.add(row)
    s.flush()
    return row.id


@pytest.fixture(autouse=True)
def no_archives(engine: Engine) -> None:
    """MariaDB keeps tables between tests (only rows are emptied): drop earlier archives."""
    for name in inspect(engine).get_table_names():
        if name.startswith(("acct_session_archive_", "acct_call_archive_")):
            with engine.begin() as c:
                c.execute(text(f"DROP TABLE {name}"))


def day(month: int, d: int) -> datetime:
    return datetime(2024, month, d, 10, 0, tzinfo=UTC)


def live_ids(engine: Engine, model: Any) -> set[int]:
    with Session(engine) as s:
        return set(s.scalars(select(model.id)))


def archived_ids(engine: Engine, kind: str, month: str) -> set[int]:
    name = archive_name(kind, month)
    if not inspect(engine).has_table(name):
        return set()
    with engine.connect() as c:
        return {r[0] for r in c.execute(text(f"SELECT id FROM {name}"))}


def owe_invoice(s: Session, subscriber_id: int, balance: int, *invoices: tuple[str, int]) -> None:
    """A postpaid account with ``balance`` and one invoice per (period, total)."""
    acct = BillingAccount(subscriber_id=subscriber_id, currency="USD", balance=balance,
                          credit_limit=100_000)
    s.add(acct)
    s.flush()
    for n, (period, total) in enumerate(invoices, start=1):
        y, m = map(int, period.split("-"))
        start = datetime(y, m, 1, tzinfo=UTC)
        st = Statement(account_id=acct.id, period=period, period_start=start,
                       period_end=start + timedelta(days=28), currency="USD", opening=0,
                       closing=-total, lines={})
        s.add(st)
        s.flush()
        s.add(Invoice(issuer="default", number=subscriber_id * 100 + n,
                      number_text=f"INV-{subscriber_id}-{n}", account_id=acct.id,
                      statement_id=st.id, period=period, issued_at=start + timedelta(days=32),
                      due_date=start + timedelta(days=46), currency="USD", vat_rate="0",
                      net=total, tax=0, total=total))
    s.flush()


GUARD = make_retention_guard(StatementSettings.from_config(parse_config({})))


@pytest_twisted.inlineCallbacks
def test_old_closed_sessions_move_to_monthly_archive_tables(engine: Engine, dbpool: DBPool):
    """Closed sessions older than keep_days land in acct_session_archive_YYYYMM; the rest stay."""
    with Session(engine) as s, s.begin():
        jan = add_session(s, day(1, 5), day(1, 5) + timedelta(hours=2))
        feb = add_session(s, day(2, 5), day(2, 6))
        still_open = add_session(s, day(1, 20), None)
        recent = add_session(s, day(6, 1), day(6, 2))
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="archive", batch=100)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW)
    assert [r.kind for r in reports] == ["sessions"]  # calls are kept forever (0)
    assert reports[0].moved == {"2024-01": 1, "2024-02": 1}
    assert live_ids(engine, AcctSession) == {still_open, recent}
    assert archived_ids(engine, "sessions", "2024-01") == {jan}
    assert archived_ids(engine, "sessions", "2024-02") == {feb}
    with engine.connect() as c:
        row = c.execute(text(f"SELECT id, stopped_at, archived_at FROM "
                             f"{archive_name('sessions', '2024-02')}")).one()
    assert row[0] == feb and row[1] is not None and row[2] is not None


@pytest_twisted.inlineCallbacks
def test_delete_mode_drops_old_calls_and_keeps_open_ones(engine: Engine, dbpool: DBPool):
    """retention = delete removes old closed calls without creating archive tables."""
    with Session(engine) as s, s.begin():
        add_call(s, day(1, 3), day(1, 3) + timedelta(minutes=5))
        open_call = add_call(s, day(1, 4), None)
        kept = add_call(s, day(6, 10), day(6, 10) + timedelta(minutes=1))
    settings = RetentionSettings(keep_days=0, keep_call_days=30, mode="delete", batch=100)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW)
    assert reports[0].kind == "calls" and reports[0].total == 1
    assert live_ids(engine, AcctCall) == {open_call, kept}
    assert not inspect(engine).has_table(archive_name("calls", "2024-01"))


@pytest_twisted.inlineCallbacks
def test_row_needed_by_an_unpaid_invoice_is_kept(engine: Engine, dbpool: DBPool):
    """A session in the month of an unpaid invoice stays; the same month of a paid one moves."""
    with Session(engine) as s, s.begin():
        debtor = make_subscriber(s, "debtor", None)
        payer = make_subscriber(s, "payer", None)
        owe_invoice(s, debtor, -500, ("2024-02", 500))
        owe_invoice(s, payer, 0, ("2024-02", 500))
        needed = add_session(s, day(2, 10), day(2, 11), subscriber_id=debtor, user="debtor")
        before_invoice = add_session(s, day(1, 10), day(1, 11), subscriber_id=debtor,
                                     user="debtor")
        paid = add_session(s, day(2, 10), day(2, 11), subscriber_id=payer, user="payer")
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="archive", batch=100)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW)
    assert reports[0].kept_billing == 1
    assert live_ids(engine, AcctSession) == {needed}
    assert archived_ids(engine, "sessions", "2024-01") == {before_invoice}
    assert archived_ids(engine, "sessions", "2024-02") == {paid}


def test_unpaid_invoices_are_the_newest_ones_covering_the_debt(engine: Engine) -> None:
    """Owing 700 against invoices of 500 (Jan), 500 (Feb), 200 (Mar): Feb is the oldest unpaid."""
    with Session(engine) as s, s.begin():
        sub = make_subscriber(s, "x", None)
        owe_invoice(s, sub, -700, ("2024-01", 500), ("2024-02", 500), ("2024-03", 200))
        floors = thd_unpaid_invoice_floors(s)
    assert floors == {sub: datetime(2024, 2, 1, tzinfo=UTC)}


@pytest_twisted.inlineCallbacks
def test_open_statement_period_is_never_touched(engine: Engine, dbpool: DBPool):
    """With keep_days=1 nothing that ended in the last closed month (May) or later moves."""
    with Session(engine) as s, s.begin():
        april = add_session(s, day(4, 28), day(4, 29))
        may = add_session(s, day(5, 3), day(5, 4))
        june = add_session(s, day(6, 1), day(6, 2))
    settings = RetentionSettings(keep_days=1, keep_call_days=0, mode="delete", batch=100)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW)
    assert reports[0].cutoff == datetime(2024, 5, 1, tzinfo=UTC)
    assert live_ids(engine, AcctSession) == {may, june}
    assert april not in live_ids(engine, AcctSession)


class CountingPool:
    """The DB pool, recording how many rows each retention batch read."""

    def __init__(self, pool: DBPool) -> None:
        self.pool = pool
        self.batches: list[int] = []

    def run(self, fn: Any, *args: Any) -> Any:
        d = self.pool.run(fn, *args)
        if fn is thd_retention_batch:
            d.addCallback(lambda r: (self.batches.append(r.read), r)[1])
        return d


@pytest_twisted.inlineCallbacks
def test_batches_are_bounded_and_each_is_its_own_transaction(engine: Engine, dbpool: DBPool):
    """23 old rows with batch 5: five transactions of at most 5 rows; a batch limit stops early."""
    with Session(engine) as s, s.begin():
        for i in range(23):
            start = day(1, 1) + timedelta(hours=i)
            add_session(s, start, start + timedelta(minutes=5))
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="archive", batch=5)
    limited = CountingPool(dbpool)
    reports = yield run_retention(limited, settings, GUARD, now=NOW, max_batches=2)
    assert limited.batches == [5, 5] and reports[0].total == 10 and not reports[0].complete
    assert len(live_ids(engine, AcctSession)) == 13
    counting = CountingPool(dbpool)
    reports = yield run_retention(counting, settings, GUARD, now=NOW)
    assert counting.batches == [5, 5, 3] and reports[0].complete
    assert max(counting.batches) <= 5 and reports[0].largest_batch == 5
    assert live_ids(engine, AcctSession) == set()
    assert len(archived_ids(engine, "sessions", "2024-01")) == 23


@pytest_twisted.inlineCallbacks
def test_kept_rows_do_not_stall_the_batches(engine: Engine, dbpool: DBPool):
    """Batches walk past rows they must keep (open sessions), so every old closed row moves."""
    with Session(engine) as s, s.begin():
        for i in range(7):
            add_session(s, day(1, 2) + timedelta(minutes=i), None)
        moved = add_session(s, day(1, 3), day(1, 3) + timedelta(minutes=1))
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="delete", batch=3)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW)
    assert reports[0].total == 1 and reports[0].kept_recent == 7
    assert moved not in live_ids(engine, AcctSession)


@pytest_twisted.inlineCallbacks
def test_dry_run_reports_and_changes_nothing(engine: Engine, dbpool: DBPool):
    """--dry-run counts per month what would move and leaves every row in place."""
    with Session(engine) as s, s.begin():
        ids = {add_session(s, day(1, 5), day(1, 6)), add_session(s, day(3, 5), day(3, 6))}
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="archive", batch=1)
    reports = yield run_retention(dbpool, settings, GUARD, now=NOW, dry_run=True)
    assert reports[0].moved == {"2024-01": 1, "2024-03": 1}
    assert "would archive 2" in reports[0].describe()
    assert live_ids(engine, AcctSession) == ids
    assert not inspect(engine).has_table(archive_name("sessions", "2024-01"))


def test_silent_open_calls_are_closed_as_stale(engine: Engine) -> None:
    """An open call not heard of for stale_call_minutes is closed when last heard of."""
    with Session(engine) as s, s.begin():
        silent = add_call(s, NOW - timedelta(hours=6), None, seen=NOW - timedelta(hours=5))
        talking = add_call(s, NOW - timedelta(hours=6), None, seen=NOW - timedelta(minutes=2))
    with Session(engine) as s, s.begin():
        assert thd_close_stale(s, NOW, timedelta(minutes=240)) == 1
    with Session(engine) as s:
        rows = {r.id: r for r in s.scalars(select(AcctCall))}
    assert rows[silent].stopped_at == NOW - timedelta(hours=5)
    assert rows[silent].disconnect_cause == STALE_CAUSE
    assert rows[talking].stopped_at is None


@pytest_twisted.inlineCallbacks
def test_billing_leader_runs_retention_on_its_scheduler(engine: Engine, dbpool: DBPool,
                                                        tmp_path: Path):
    """make_service hands the retention job to BillingService, whose scheduler runs it."""
    from billing.loop import BillingLoop
    from billing.service import BillingService
    from radbill.app import retention_jobs

    with Session(engine) as s, s.begin():
        add_session(s, day(1, 5), day(1, 6))
    config = parse_config({"accounting": {"keep_days": 30, "retention_interval": 1},
                           "billing": {"loop_interval": 3600}})
    assert retention_jobs(parse_config({}), dbpool, reactor) == []  # keep_days 0: no job
    jobs = retention_jobs(config, dbpool, reactor)
    assert [(name, seconds) for name, seconds, _ in jobs] == [("accounting-retention", 1.0)]
    svc = BillingService(BillingLoop(config, dbpool), reactor, periodic=jobs)
    svc.startService()
    try:
        assert svc.scheduler.get_job("accounting-retention").max_instances == 1  # type: ignore[union-attr]
        for _ in range(100):
            if not live_ids(engine, AcctSession):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
    finally:
        yield defer.maybeDeferred(svc.stopService)
    assert live_ids(engine, AcctSession) == set()


def test_purge_cli_dry_run_then_real_run(engine: Engine, db_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """radbill accounting purge --dry-run prints the plan; without it the rows move."""
    with Session(engine) as s, s.begin():
        add_session(s, datetime(2023, 1, 5, tzinfo=UTC), datetime(2023, 1, 6, tzinfo=UTC))
        add_call(s, datetime(2023, 2, 5, tzinfo=UTC), datetime(2023, 2, 5, 1, tzinfo=UTC))
    conf = tmp_path / "radbill.toml"
    conf.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n'
                    '[accounting]\nkeep_days = 365\nkeep_call_days = 365\n')
    assert cli.main(["--config", str(conf), "accounting", "purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sessions: would archive 1" in out and "2023-01: 1" in out
    assert "calls: would archive 1" in out and "acct_call_archive_202302" in out
    assert len(live_ids(engine, AcctSession)) == 1
    assert cli.main(["--config", str(conf), "accounting", "purge", "--kind", "sessions"]) == 0
    assert "sessions: archive 1" in capsys.readouterr().out
    assert live_ids(engine, AcctSession) == set() and len(live_ids(engine, AcctCall)) == 1
    assert cli.main(["--config", str(conf), "accounting", "purge", "--before", "yesterday"]) == 1
    assert "--before 'yesterday'" in capsys.readouterr().err
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(text("audit_entry"))) == 1


def test_retention_config_is_validated() -> None:
    """keep days below 0 or under a week and an unknown mode are config errors naming the key."""
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_config({"accounting": {"keep_days": -1, "keep_call_days": 3,
                                     "retention": "shred"}})
    for key in ("accounting.keep_days", "accounting.keep_call_days", "accounting.retention"):
        assert key in str(e.value)


@pytest_twisted.inlineCallbacks
def test_nothing_younger_than_a_week_moves(engine: Engine, dbpool: DBPool):
    """--before now still keeps the last 7 days: a replayed spool must find its sessions."""
    from accounting.retention import MIN_AGE

    with Session(engine) as s, s.begin():
        old = add_session(s, NOW - timedelta(days=9), NOW - timedelta(days=8, hours=23))
        young = add_session(s, NOW - timedelta(days=3), NOW - timedelta(days=2))
    settings = RetentionSettings(keep_days=30, keep_call_days=0, mode="delete", batch=10)
    reports = yield run_retention(dbpool, settings, None, now=NOW, before=NOW)
    assert reports[0].cutoff == NOW - MIN_AGE
    assert live_ids(engine, AcctSession) == {young} and old not in live_ids(engine, AcctSession)


def test_no_guard_keeps_nothing_back() -> None:
    """Without billing the guard has no floor and no subscribers."""
    g = NoGuard()
    assert g.floor is None and g.subscribers == {}


def test_accounting_on_from_a_pbx_closes_its_open_calls(engine: Engine) -> None:
    """Accounting-On from a voice gateway closes its open calls, as it does sessions."""
    from accounting.records import AcctStatus
    from accounting.store import AcctPolicy, thd_apply_records
    from tests.test_accounting_store import call
    from tests.test_accounting_support import rec, seed

    with Session(engine) as s, s.begin():
        ids = seed(s)
        cube = ids["cube"]
        thd_apply_records(s, [call(AcctStatus.START, nas_id=cube, call_id="k1",
                                   leg="originate", billable=True, t=0)], AcctPolicy())
    with Session(engine) as s, s.begin():
        thd_apply_records(s, [rec(AcctStatus.ON, nas_id=cube, identity="::1", t=100)],
                          AcctPolicy())
    with Session(engine) as s:
        (row,) = s.scalars(select(AcctCall)).all()
    assert row.stopped_at is not None


@pytest.mark.parametrize("mode", ["delete", "archive"])
def test_a_batch_never_locks_the_rows_it_keeps(engine: Engine, mode: str) -> None:
    """MariaDB: while a batch's transaction is open, accounting can still update an open row."""
    if engine.dialect.name != "mysql":
        pytest.skip("row locks are checked on MariaDB (SQLite has one writer at a time)")
    with Session(engine) as s, s.begin():
        live = add_session(s, day(1, 2), None)  # old but open: the batch reads, never locks it
        for i in range(5):
            start = day(1, 3) + timedelta(hours=i)
            add_session(s, start, start + timedelta(minutes=1))
    batch_session = Session(engine)
    try:
        batch_session.begin()
        result = thd_retention_batch(batch_session, "sessions", datetime(2024, 5, 1, tzinfo=UTC),
                                     NoGuard(), mode, 100, None)
        assert sum(result.moved.values()) == 5 and result.kept_recent == 1
        with engine.connect() as other:  # the accounting side, meanwhile
            other.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            other.execute(text("UPDATE acct_session SET input_octets = 42 WHERE id = :i"),
                          {"i": live})
            other.commit()
        batch_session.commit()
    finally:
        batch_session.close()
    assert live_ids(engine, AcctSession) == {live}
