"""Helpers for billing tests: plans with prices, subscribers, usage deltas, ledger snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.ledger import thd_check
from billing.models import BillingAccount, LedgerEntry
from billing.tariff_store import thd_apply_spec
from billing.tariffs import TariffSpec
from billing.usage import UsageDelta, UsageDeltaRow, thd_record_usage
from core.db.models import Plan, Subscriber

_seq = count(1)


def make_plan(session: Session, name: str, **values: object) -> int:
    """A plan with the given tariff values (micro-unit prices)."""
    applied = thd_apply_spec(session, TariffSpec(plan_name=name, values=values),
                             create_plan=True)
    return int(session.scalars(select(Plan.id).where(Plan.name == applied.plan)).one())


def make_subscriber(session: Session, login: str, plan_id: int | None) -> int:
    sub = Subscriber(login=login, plan_id=plan_id, description="")
    session.add(sub)
    session.flush()
    return sub.id


def delta(subscriber_id: int, source_id: str, seconds: int = 0, octets_in: int = 0,
          octets_out: int = 0, end: datetime | None = None, final: bool = False,
          source: str = "session", destination: str | None = None,
          key: str | None = None) -> UsageDelta:
    end = end or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return UsageDelta(subscriber_id=subscriber_id, source=source,  # type: ignore[arg-type]
                      source_id=source_id, seconds=seconds, octets_in=octets_in,
                      octets_out=octets_out, period_start=end - timedelta(seconds=seconds),
                      period_end=end, idempotency_key=key or f"k{next(_seq)}",
                      destination=destination, final=final)


def record(session: Session, *deltas: UsageDelta) -> None:
    thd_record_usage(session, list(deltas))


def ledger_snapshot(session: Session) -> list[tuple[int, str, int, str]]:
    """Every entry as (account, kind, amount, key), in key order: comparable across runs."""
    rows = session.execute(select(LedgerEntry.account_id, LedgerEntry.kind, LedgerEntry.amount,
                                  LedgerEntry.idempotency_key)
                           .order_by(LedgerEntry.idempotency_key)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def balances(session: Session) -> dict[int, int]:
    return {sid: bal for sid, bal in session.execute(
        select(BillingAccount.subscriber_id, BillingAccount.balance)).all()}


def delta_entries(session: Session) -> list[tuple[str, int]]:
    """(key of the ledger entry carrying it, cost) of every charged delta, in id order."""
    rows = session.execute(
        select(UsageDeltaRow.ledger_batch, UsageDeltaRow.charged, BillingAccount.id)
        .join(BillingAccount, BillingAccount.subscriber_id == UsageDeltaRow.subscriber_id)
        .where(UsageDeltaRow.ledger_batch.is_not(None)).order_by(UsageDeltaRow.id)).all()
    return [(f"usage:{aid}:{batch}", int(charged)) for batch, charged, aid in rows]


def assert_ledger_consistent(session: Session) -> None:
    """Balances equal their ledgers, and each usage entry equals the deltas it carries."""
    result = thd_check(session)
    assert result.mismatches == (), result.mismatches
    total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)))
    assert total == sum(balances(session).values())
    carried: dict[str, int] = {}
    for key, charged in delta_entries(session):
        carried[key] = carried.get(key, 0) + charged
    entries = dict(session.execute(
        select(LedgerEntry.idempotency_key, LedgerEntry.amount)
        .where(LedgerEntry.kind == "charge", LedgerEntry.idempotency_key.like("usage:%"))
        ).all())
    assert {k: -int(v) for k, v in entries.items()} == {k: int(v) for k, v in carried.items()}


CliResult = tuple[int, str, str]


def cli_runner(config_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
               ) -> Callable[..., CliResult]:
    """radbill in-process with a config file holding ``config_text``: (code, stdout, stderr)."""
    import radbill.cli as cli_module

    config = tmp_path / "radbill.toml"
    config.write_text(config_text, encoding="utf-8")

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            code = cli_module.main(["--config", str(config), *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run
