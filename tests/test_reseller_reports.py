"""Resellers (issue 13 point 8): their own statements, revenue by reseller, scoping of each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.payments import thd_add_payment
from billing.resellers import thd_set_wholesale, thd_topup
from core.db.models import Reseller, Subscriber
from core.errors import NotFound
from tests.billing_support import cli_runner, make_plan
from webadmin.errors import Forbidden
from webadmin.roles import Caller
from webadmin.service import reseller_money
from webadmin.service.reseller_reports import (
    thd_reseller_statement,
    thd_revenue_by_plan,
    thd_revenue_by_reseller,
)

UTCZ = ZoneInfo("UTC")
APRIL = datetime(2024, 4, 20, 12, 0, tzinfo=UTC)
MAY = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
JUNE = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
ADMIN = Caller(actor="cli:test", role="admin")


def seed(engine: Engine) -> dict[str, Caller]:
    """north and south each with a subscriber, an operator subscriber; money in April and May."""
    with Session(engine) as s, s.begin():
        north, south = Reseller(name="north"), Reseller(name="south")
        s.add_all([north, south])
        s.flush()
        plan = make_plan(s, "resold", monthly_fee=0)
        s.add_all([Subscriber(login="n1", plan_id=plan, reseller_id=north.id, description=""),
                   Subscriber(login="s1", plan_id=plan, reseller_id=south.id, description=""),
                   Subscriber(login="op1", plan_id=plan, description="")])
        thd_set_wholesale(s, "resold", "80")
        thd_topup(s, "north", 10_000, "USD", "T-apr", now=APRIL)
        thd_topup(s, "north", 5_000, "USD", "T-may", now=MAY)
        thd_topup(s, "south", 3_000, "USD", "T-s", now=MAY)
        thd_add_payment(s, "n1", 1_000, "USD", "P-apr", now=APRIL)  # draws 800 in April
        thd_add_payment(s, "n1", 2_000, "USD", "P-may", now=MAY)  # draws 1600 in May
        thd_add_payment(s, "s1", 500, "USD", "P-s", now=MAY)  # draws 400
        thd_add_payment(s, "op1", 7_000, "USD", "P-op", now=MAY)  # the operator's own
        thd_topup(s, "north", -100, "USD", "fix-1", now=MAY)  # a correction: adjustment
        accounts = {sub.login: a.id for a, sub in _accounts(s)}
        for login, amount in (("n1", -300), ("s1", -200), ("op1", -900)):
            s.add(LedgerEntry(account_id=accounts[login], kind=EntryKind.CHARGE.value,
                              amount=amount, idempotency_key=f"c-{login}", description="",
                              created_at=MAY))
        return {"north": Caller(actor="operator:n", role="reseller", reseller_id=north.id,
                                reseller="north"),
                "south": Caller(actor="operator:s", role="reseller", reseller_id=south.id,
                                reseller="south")}


def _accounts(s: Session) -> list[tuple[BillingAccount, Subscriber]]:
    from sqlalchemy import select

    return list(s.execute(select(BillingAccount, Subscriber)
                          .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)))


def test_reseller_statement_opening_lines_closing(engine: Engine) -> None:
    """May's statement opens with April's closing, lists May's entries, closes at their sum."""
    seed(engine)
    with Session(engine) as s:
        april = thd_reseller_statement(s, ADMIN, "north", "2024-04", UTCZ, "USD")
        may = thd_reseller_statement(s, ADMIN, "north", "2024-05", UTCZ, "USD")
        june = thd_reseller_statement(s, ADMIN, "north", "2024-06", UTCZ, "USD")
    assert (april.opening, april.closing) == (0, 10_000 - 800)
    assert may.opening == april.closing
    assert may.totals == {"topup": 5_000, "draw": -1_600, "adjustment": -100}
    assert may.closing == 9_200 + 5_000 - 1_600 - 100
    assert [line.kind for line in may.lines] == ["topup", "draw", "adjustment"]
    assert (june.opening, june.closing, june.lines) == (may.closing, may.closing, [])


def test_revenue_split_by_reseller(engine: Engine) -> None:
    """Per month: each reseller's billed revenue, payments, wholesale drawn and margin."""
    seed(engine)
    with Session(engine) as s:
        rows = thd_revenue_by_reseller(s, ADMIN, datetime(2024, 4, 1, tzinfo=UTC), JUNE, UTCZ)
    got = {(r.period, r.reseller): (r.revenue, r.payments, r.wholesale, r.margin) for r in rows}
    assert got == {("2024-04", "north"): (0, 1_000, 800, 200),
                   ("2024-05", "north"): (300, 2_000, 1_600, 400),
                   ("2024-05", "south"): (200, 500, 400, 100),
                   ("2024-05", "(operator)"): (900, 7_000, 0, 7_000)}


def test_every_reseller_operation_is_scoped(engine: Engine) -> None:
    """A reseller reads only its own statement, revenue and balance; money changes are admin's."""
    callers = seed(engine)
    north, south = callers["north"], callers["south"]
    with Session(engine) as s:
        assert thd_reseller_statement(s, north, "north", "2024-05", UTCZ, "USD").reseller == \
            "north"
        with pytest.raises(NotFound):
            thd_reseller_statement(s, north, "south", "2024-05", UTCZ, "USD")
        own = thd_revenue_by_reseller(s, south, datetime(2024, 4, 1, tzinfo=UTC), JUNE, UTCZ)
        assert {r.reseller for r in own} == {"south"}
        with pytest.raises(NotFound):
            thd_revenue_by_reseller(s, south, datetime(2024, 4, 1, tzinfo=UTC), JUNE, UTCZ,
                                    reseller="north")
        with pytest.raises(Forbidden):
            thd_revenue_by_plan(s, north, datetime(2024, 4, 1, tzinfo=UTC), JUNE, UTCZ)
        assert reseller_money.thd_balance(s, north, "north", "USD")["reseller"] == "north"
        with pytest.raises(NotFound):
            reseller_money.thd_balance(s, north, "south", "USD")
        with pytest.raises(Forbidden):
            reseller_money.thd_topup(s, north, "north", 100, "USD", "self-topup")
        with pytest.raises(Forbidden):
            reseller_money.thd_set_limit(s, north, "north", 100, "USD")
        with pytest.raises(Forbidden):
            reseller_money.thd_set_wholesale(s, north, "resold", "10")
        subscriber = Caller(actor="subscriber:n1", role="subscriber", subscriber="n1")
        with pytest.raises(Forbidden):
            thd_reseller_statement(s, subscriber, "north", "2024-05", UTCZ, "USD")
        with pytest.raises(Forbidden):
            thd_revenue_by_reseller(s, subscriber, datetime(2024, 4, 1, tzinfo=UTC), JUNE, UTCZ)
        cashier = Caller(actor="operator:c", role="cashier")
        assert thd_reseller_statement(s, cashier, "south", "2024-05", UTCZ, "USD").closing == \
            3_000 - 400


def test_cli_reseller_statement_and_revenue_report(engine: Engine, db_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """radbill reseller statement and radbill report revenue --by reseller|plan, text and JSON."""
    seed(engine)
    run = cli_runner(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n',
                     tmp_path, capsys)
    code, out, err = run("reseller", "statement", "north", "--period", "2024-05", "--out", "json")
    assert code == 0, err
    st = json.loads(out)
    assert (st["opening"], st["closing"], st["total_draw"]) == ("92.00", "125.00", "-16.00")
    assert [line["kind"] for line in st["lines"]] == ["topup", "draw", "adjustment"]
    code, out, _ = run("reseller", "statement", "north", "--period", "2024-05")
    assert code == 0 and "closing" in out and "T-may" in out
    code, out, _ = run("report", "revenue", "--by", "reseller", "--period", "2024-05",
                       "--out", "json")
    assert code == 0
    rows = {r["reseller"]: r for r in json.loads(out)}
    assert rows["north"]["wholesale"] == "16.00" and rows["(operator)"]["payments"] == "70.00"
    code, out, _ = run("report", "revenue", "--by", "plan", "--from", "2024-04-01", "--to",
                       "2024-06-01")
    assert code == 0 and "resold" in out and "2024-04" in out
    code, _, err = run("report", "revenue", "--period", "2024-13")
    assert code == 1 and "2024-13" in err
    code, _, err = run("report", "revenue", "--from", "2024-05-01")
    assert code == 1 and "--to" in err
    code, _, err = run("reseller", "statement", "nobody", "--period", "2024-05")
    assert code == 1 and "nobody" in err


def test_cli_money_changes_are_audited(engine: Engine, db_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """reseller topup, limit and wholesale from the CLI go through the service layer's audit."""
    from sqlalchemy import select

    from core.db.access import AuditEntry

    seed(engine)
    run = cli_runner(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n',
                     tmp_path, capsys)
    assert run("reseller", "topup", "south", "12.00", "--ref", "W-1")[0] == 0
    code, out, _ = run("reseller", "topup", "south", "12.00", "--ref", "W-1")
    assert code == 0 and "already recorded" in out
    assert run("reseller", "limit", "south", "5.00")[0] == 0
    assert run("reseller", "wholesale", "resold", "70")[0] == 0
    code, out, _ = run("reseller", "balance", "south", "--out", "json")
    assert code == 0 and json.loads(out)["balance"] == "38.00"
    with Session(engine) as s:
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["reseller.topup", "reseller.limit", "reseller.wholesale"]
