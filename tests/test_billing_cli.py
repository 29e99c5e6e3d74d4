"""The billing commands in-process on SQLite and MariaDB: prices, payments, ledger, rate, run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

import radbill.cli as cli_module
from billing.models import BillingAccount
from core.db.models import Plan, Subscriber
from tests.billing_support import delta, record

Result = tuple[int, str, str]


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """Run radbill with a config pointing at the test database."""
    config = tmp_path / "radbill.toml"
    config.write_text(f'[database]\nurl = {json.dumps(db_url)}\n[billing]\ncurrency = "USD"\n',
                      encoding="utf-8")

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = cli_module.main(["--config", str(config), *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def ok(r: Result) -> str:
    assert r[0] == 0, r
    return r[1]


def fail(r: Result, code: int = 1) -> str:
    assert r[0] == code, r
    assert "Traceback" not in r[2]
    return r[2].strip()


def seed(engine: Engine, plan: str = "home") -> int:
    with Session(engine) as s, s.begin():
        p = s.query(Plan).filter_by(name=plan).one()
        sub = Subscriber(login="alice", plan_id=p.id, description="")
        s.add(sub)
        s.flush()
        return sub.id


def test_plan_set_prices_and_show(cli: Callable[..., Result], engine: Engine) -> None:
    """plan set takes price flags; plan prices shows them back exactly."""
    ok(cli("plan", "add", "home"))
    out = ok(cli("plan", "set", "home", "--price-per-minute", "0.02", "--increment", "60",
                 "--price-per-mb", "0.001", "--monthly-fee", "9.99", "--credit-limit", "5"))
    assert "prices changed" in out
    shown = json.loads(ok(cli("plan", "prices", "home", "--out", "json")))
    assert shown["time_price"] == "0.02" and shown["time_increment"] == 60
    assert shown["monthly_fee"] == "9.99" and shown["credit_limit_minor"] == 500


def test_plan_set_rejects_bad_price(cli: Callable[..., Result]) -> None:
    """A malformed price is one error line, exit 1."""
    ok(cli("plan", "add", "home"))
    assert "price" in fail(cli("plan", "set", "home", "--price-per-minute", "abc"))


def test_plan_import_toml(cli: Callable[..., Result], tmp_path: Path) -> None:
    """plan import creates plans with bands and voice rates from the documented format."""
    f = tmp_path / "prices.toml"
    f.write_text("""
[plan.voice]
time = { price = "0.06", unit = "minute", increment = 60 }
[[plan.voice.band]]
name = "night"
from = "22:00"
to = "06:00"
time_price = "0.01"
[[plan.voice.voice_rate]]
prefix = "44"
price_per_minute = "0.10"
connect_fee = "0.05"
minimum = 60
increment = 60
""", encoding="utf-8")
    assert "created (1 bands, 1 voice rates)" in ok(cli("plan", "import", str(f)))
    f.write_text("[plan.voice]\nmonthly_fee = 1.5\n", encoding="utf-8")
    assert "quoted" in fail(cli("plan", "import", str(f)))


def test_payment_ledger_and_check(cli: Callable[..., Result], engine: Engine) -> None:
    """payment add is idempotent on --ref; ledger lists it; ledger check passes, then fails."""
    ok(cli("plan", "add", "home"))
    ok(cli("plan", "set", "home", "--price-per-minute", "0.60", "--increment", "60"))
    seed(engine)
    assert "recorded" in ok(cli("payment", "add", "alice", "10.00", "--ref", "EXT-1"))
    assert "already recorded" in ok(cli("payment", "add", "alice", "10.00", "--ref", "EXT-1"))
    ledger = json.loads(ok(cli("ledger", "alice", "--out", "json")))
    assert [e["amount"] for e in ledger] == ["10.00"]
    assert json.loads(ok(cli("ledger", "check", "--out", "json")))["ok"] is True
    with Session(engine) as s, s.begin():
        s.execute(update(BillingAccount).values(balance=1))
    assert "differs" in fail(cli("ledger", "check"))


def test_account_show_after_usage(cli: Callable[..., Result], engine: Engine) -> None:
    """account show gives balance, held money, limit and the last charges."""
    ok(cli("plan", "add", "home"))
    ok(cli("plan", "set", "home", "--price-per-minute", "0.60", "--increment", "60"))
    sid = seed(engine)
    ok(cli("payment", "add", "alice", "10.00"))
    with Session(engine) as s, s.begin():
        record(s, delta(sid, "sess-1", seconds=90, end=datetime.now(UTC)))
    report = json.loads(ok(cli("billing", "run", "--out", "json")))
    assert report["rated"] == 1 and report["charged_minor"] == 120
    acct = json.loads(ok(cli("account", "show", "alice", "--out", "json")))
    assert acct["balance"] == "8.80" and acct["reserved"] == "3.00"
    assert len(acct["last_charges"]) == 1
    text = ok(cli("account", "show", "alice"))
    assert "last charges:" in text and "8.80" in text


def test_rate_dry_run_session_and_call(cli: Callable[..., Result], tmp_path: Path,
                                       engine: Engine) -> None:
    """rate prints the band split and total; --called prints the prefix and call cost."""
    ok(cli("plan", "add", "home"))
    ok(cli("plan", "set", "home", "--price-per-minute", "0.06", "--increment", "60"))
    seed(engine)
    q = json.loads(ok(cli("rate", "--subscriber", "alice", "--duration", "3600",
                          "--at", "2024-05-01T10:00:00+00:00", "--out", "json")))
    assert q["total"] == "3.60" and q["lines"][0]["band"] == "base"
    csv = tmp_path / "rates.csv"
    csv.write_text("prefix,rate,connect_fee,minimum,increment\n44,0.10,0.05,60,60\n"
                   "4420,0.02,0,30,6\n", encoding="utf-8")
    assert "2 voice rates" in ok(cli("rates", "import", "home", str(csv)))
    c = json.loads(ok(cli("rate", "--subscriber", "alice", "--duration", "61", "--called",
                          "+44 20 7946 0000", "--out", "json")))
    assert c["prefix"] == "4420" and c["billed_seconds"] == 66 and c["total"] == "0.02"
    assert "no voice rate" in fail(cli("rate", "--plan", "home", "--called", "331234"))


def test_bad_input_is_one_line(cli: Callable[..., Result]) -> None:
    """Unknown login, bad amount and bad CSV give one error line each, never a traceback."""
    assert "no subscriber" in fail(cli("payment", "add", "ghost", "1.00"))
    ok(cli("plan", "add", "home"))
    assert "decimal places" in fail(cli("payment", "add", "ghost", "1.001"))
    assert fail(cli("rate", "--plan", "home", "--duration", "-5"))
