"""Retention of rated usage deltas ([billing] keep_usage_days), on SQLite and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from billing.usage import UsageDeltaRow
from billing.usage_retention import run_usage_retention, thd_usage_retention_batch
from core.db.pool import DBPool
from radbill import cli
from tests.billing_support import make_subscriber
from tests.test_accounting_retention import GUARD, owe_invoice

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
_keys = count(1)


def add_delta(s: Session, subscriber_id: int, end: datetime, rated: bool = True,
              stored: datetime | None = None) -> int:
    result = s.execute(insert(UsageDeltaRow).values(
        idempotency_key=f"d{next(_keys)}", subscriber_id=subscriber_id, source="session",
        source_id="x", seconds=60, octets_in=0, octets_out=0, period_start=end - timedelta(
            seconds=60), period_end=end, created_at=stored or end, rated=rated, charged=1))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def ids(engine: Engine) -> set[int]:
    with Session(engine) as s:
        return set(s.scalars(select(UsageDeltaRow.id)))


@pytest_twisted.inlineCallbacks
def test_rated_old_deltas_go_unrated_and_invoiced_ones_stay(engine: Engine, dbpool: DBPool):
    """Rated deltas older than keep_usage_days are deleted; unrated, unpaid-invoice, recent stay."""
    with Session(engine) as s, s.begin():
        alice = make_subscriber(s, "alice", None)
        debtor = make_subscriber(s, "debtor", None)
        owe_invoice(s, debtor, -500, ("2024-02", 500))
        gone = add_delta(s, alice, datetime(2024, 1, 5, tzinfo=UTC))
        unrated = add_delta(s, alice, datetime(2024, 1, 6, tzinfo=UTC), rated=False)
        invoiced = add_delta(s, debtor, datetime(2024, 2, 7, tzinfo=UTC))
        debtor_before = add_delta(s, debtor, datetime(2024, 1, 7, tzinfo=UTC))
        recent = add_delta(s, alice, datetime(2024, 6, 1, tzinfo=UTC))
    report = yield run_usage_retention(dbpool, 30, GUARD, now=NOW)
    assert report.deleted == {"2024-01": 2} and report.kept_unrated == 1
    assert report.kept_billing == 1
    assert ids(engine) == {unrated, invoiced, recent}
    assert gone not in ids(engine) and debtor_before not in ids(engine)


@pytest_twisted.inlineCallbacks
def test_usage_batches_are_bounded_and_stop_at_new_rows(engine: Engine, dbpool: DBPool):
    """12 old deltas, batch 5: reads of 5, 5, 3; the row stored after the cut-off ends the run."""
    reads: list[int] = []

    class Counting:
        def run(self, fn: Any, *args: Any) -> Any:
            d = dbpool.run(fn, *args)
            if fn is thd_usage_retention_batch:
                d.addCallback(lambda r: (reads.append(r.read), r)[1])
            return d

    with Session(engine) as s, s.begin():
        sub = make_subscriber(s, "alice", None)
        for i in range(12):
            add_delta(s, sub, datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i))
        late = add_delta(s, sub, datetime(2024, 1, 2, tzinfo=UTC), stored=NOW)  # a replay
    report = yield run_usage_retention(Counting(), 30, GUARD, batch=5, now=NOW)
    assert reads == [5, 5, 3] and report.total == 12 and report.complete
    assert ids(engine) == {late}  # stored after the cut-off: a later run takes it


def test_purge_cli_usage_dry_run(engine: Engine, db_url: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """radbill accounting purge --kind usage --dry-run reports per month and deletes nothing."""
    with Session(engine) as s, s.begin():
        sub = make_subscriber(s, "alice", None)
        add_delta(s, sub, datetime(2023, 3, 5, tzinfo=UTC))
    conf = tmp_path / "radbill.toml"
    conf.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n'
                    '[billing]\nkeep_usage_days = 90\n')
    assert cli.main(["--config", str(conf), "accounting", "purge", "--kind", "usage",
                     "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "usage: would delete 1 rated deltas" in out and "2023-03: 1" in out
    assert len(ids(engine)) == 1
    assert cli.main(["--config", str(conf), "accounting", "purge"]) == 0
    out = capsys.readouterr().out
    assert "usage: delete 1" in out and "sessions: kept forever" in out
    assert ids(engine) == set()
