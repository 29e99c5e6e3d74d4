"""Resellers' money: prepaid balance drawn by the plan's wholesale share, refusals, scoping."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from billing.cards import Refusal, thd_activate, thd_create_batch
from billing.models import LedgerEntry
from billing.payments import thd_add_payment
from billing.reseller_models import ResellerEntry
from billing.resellers import (
    ResellerFundsExhausted,
    thd_reseller_balance,
    thd_reseller_check,
    thd_set_limit,
    thd_set_wholesale,
    thd_topup,
)
from core.db.models import Reseller, Subscriber
from tests.billing_support import cli_runner, make_plan

Result = tuple[int, str, str]


def _seed(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s, s.begin():
        north, south = Reseller(name="north"), Reseller(name="south")
        s.add_all([north, south])
        s.flush()
        plan = make_plan(s, "resold", monthly_fee=0)
        s.add_all([Subscriber(login="n1", plan_id=plan, reseller_id=north.id, description=""),
                   Subscriber(login="s1", plan_id=plan, reseller_id=south.id, description=""),
                   Subscriber(login="op1", plan_id=plan, description="")])
        thd_set_wholesale(s, "resold", "80")
        return north.id, south.id


def test_payment_draws_wholesale_share_or_is_refused(engine: Engine) -> None:
    """No balance: refused and nothing booked; after a top-up 80% is drawn, once per payment."""
    _seed(engine)
    with pytest.raises(ResellerFundsExhausted), Session(engine) as s, s.begin():
        thd_add_payment(s, "n1", 1000, "USD", "P-1")
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    with Session(engine) as s, s.begin():
        thd_topup(s, "north", 2000, "USD", "T-1")
        thd_topup(s, "north", 2000, "USD", "T-1")  # the same transfer twice: once
        thd_add_payment(s, "n1", 1000, "USD", "P-1")
        thd_add_payment(s, "n1", 1000, "USD", "P-1")  # replay: no second draw
        thd_add_payment(s, "op1", 5000, "USD", "P-2")  # the operator's own: no reseller
        assert thd_reseller_balance(s, "north", "USD").balance == 2000 - 800
    with Session(engine) as s, s.begin():
        thd_set_limit(s, "north", 500, "USD")
    with pytest.raises(ResellerFundsExhausted), Session(engine) as s, s.begin():
        thd_add_payment(s, "n1", 2200, "USD", "P-3")  # needs 17.60, has 12.00 + 5.00
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "n1", 2100, "USD", "P-4")  # 16.80 <= 17.00
        bal = thd_reseller_balance(s, "north", "USD")
    assert (bal.balance, bal.available) == (1200 - 1680, 1200 - 1680 + 500)
    with Session(engine) as s:
        assert thd_reseller_check(s) == []
        kinds = sorted(s.scalars(select(ResellerEntry.kind)))
    assert kinds == ["draw", "draw", "topup"]


def test_reseller_cards_only_for_its_subscribers(engine: Engine) -> None:
    """A reseller's card is refused to another reseller's subscriber and draws for its own."""
    north, _ = _seed(engine)
    with Session(engine) as s, s.begin():
        thd_topup(s, "north", 1000, "USD", "T-2")
        batch = thd_create_batch(s, "N-CARDS", 2, 500, "USD", reseller_id=north)
    (a, pa), _ = [(c.serial, c.pin) for c in batch.cards]
    with Session(engine) as s, s.begin():
        assert thd_activate(s, a, pa, "s1", "USD").refused is Refusal.OTHER_RESELLER
        assert thd_activate(s, a, pa, "op1", "USD").refused is Refusal.OTHER_RESELLER
        assert thd_activate(s, a, pa, "n1", "USD").ok
        assert thd_reseller_balance(s, "north", "USD").balance == 1000 - 400


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """radbill with a config pointing at the test database."""
    yield cli_runner(f'[database]\nurl = {json.dumps(db_url)}\n', tmp_path, capsys)


def test_cli_reseller_money(cli: Callable[..., Result], engine: Engine, tmp_path: Path) -> None:
    """topup/balance/limit/wholesale and card batch --reseller from the CLI; clear refusals."""
    _seed(engine)
    code, out, err = cli("reseller", "topup", "north", "50.00", "--ref", "WIRE-1")
    assert code == 0 and "balance 50.00" in out, err
    assert "nothing changed" in cli("reseller", "topup", "north", "50.00", "--ref", "WIRE-1")[1]
    assert cli("reseller", "wholesale", "resold", "150")[0] == 1
    assert cli("reseller", "wholesale", "resold", "50")[0] == 0
    code, out, err = cli("payment", "add", "n1", "10.00", "--ref", "C-1")
    assert code == 0, err
    code, out, _ = cli("reseller", "balance", "north", "--out", "json")
    assert json.loads(out)["balance"] == "45.00"
    code, _, err = cli("payment", "add", "s1", "10.00", "--ref", "C-2")
    assert code == 1 and "top the reseller up first" in err and "Traceback" not in err
    code, out, err = cli("card", "batch", "NB", "--count", "1", "--value", "1",
                         "--reseller", "north", "--pins", str(tmp_path / "p.csv"))
    assert code == 0, err
    code, _, err = cli("card", "batch", "NX", "--count", "1", "--value", "1",
                       "--reseller", "nobody")
    assert code == 1 and "no such reseller" in err
