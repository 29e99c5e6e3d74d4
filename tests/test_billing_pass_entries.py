"""One ledger entry per account per charging transaction (issue 15's ledger decision).

The entry is the exact sum of the account's deltas rated in that transaction;
each delta keeps its own cost and the entry's key; re-running a pass, or
recording the same usage again, changes nothing; balances equal ledgers.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from billing.charging import thd_charge_pending
from billing.models import BillingAccount, LedgerEntry
from billing.money import parse_price
from billing.usage import UsageDeltaRow
from tests.billing_support import (
    assert_ledger_consistent,
    delta,
    make_plan,
    make_subscriber,
    record,
)

USD = "USD"


def seed(engine: Engine) -> dict[str, int]:
    """Three subscribers at 1 cent per second; alice has two sessions and a free delta."""
    with Session(engine) as s, s.begin():
        plan = make_plan(s, "metered", time_price=parse_price("0.60"), time_unit=60,
                         time_increment=1)
        subs = {login: make_subscriber(s, login, plan) for login in ("alice", "bob", "carol")}
        record(s, delta(subs["alice"], "a-1", seconds=30, key="a1"),
               delta(subs["alice"], "a-1", seconds=12, key="a2"),
               delta(subs["alice"], "a-2", seconds=5, key="a3"),
               delta(subs["alice"], "a-2", seconds=0, key="a4"),
               delta(subs["bob"], "b-1", seconds=7, key="b1"))
    return subs


def test_one_entry_per_account_with_the_exact_sum(engine: Engine) -> None:
    """alice: one entry of 47 cents over three charged deltas, bob one of 7; carol none."""
    subs = seed(engine)
    with Session(engine) as s, s.begin():
        r = thd_charge_pending(s, USD, 300, 10**8)
    assert (r.rated, r.charged, r.entries) == (5, 54, 2)
    with Session(engine) as s:
        entries = s.execute(select(LedgerEntry.idempotency_key, LedgerEntry.amount,
                                   LedgerEntry.source_id)
                            .where(LedgerEntry.kind == "charge")
                            .order_by(LedgerEntry.amount)).all()
        accounts = dict(s.execute(select(BillingAccount.subscriber_id, BillingAccount.id)).all())
        rows = {d.idempotency_key: (d.rated, d.charged, None if d.ledger_batch is None
                                    else f"usage:{accounts[d.subscriber_id]}:{d.ledger_batch}")
                for d in s.scalars(select(UsageDeltaRow))}
        assert_ledger_consistent(s)
    (alice_key, alice_amount, alice_source), (bob_key, bob_amount, bob_source) = entries
    assert (alice_amount, bob_amount) == (-47, -7)  # cents
    assert alice_source is None and bob_source == "b-1"  # one source: named; several: not
    with Session(engine) as s:
        descriptions = s.scalars(select(LedgerEntry.description)
                                 .where(LedgerEntry.kind == "charge")).all()
    # statements tell sessions from calls by this prefix (billing.classify)
    assert all(d.startswith("session ") for d in descriptions), descriptions
    assert rows == {"a1": (True, 30, alice_key), "a2": (True, 12, alice_key),
                    "a3": (True, 5, alice_key), "a4": (True, 0, None),
                    "b1": (True, 7, bob_key)}
    assert alice_key.startswith("usage:") and bob_key.startswith("usage:")
    assert subs  # seeded


def test_rerun_and_resend_change_nothing(engine: Engine) -> None:
    """A second pass finds nothing; the same usage recorded again adds no delta and no entry."""
    subs = seed(engine)
    with Session(engine) as s, s.begin():
        thd_charge_pending(s, USD, 300, 10**8)
    with Session(engine) as s, s.begin():
        assert thd_charge_pending(s, USD, 300, 10**8).rated == 0
        record(s, delta(subs["bob"], "b-1", seconds=7, key="b1"))
    with Session(engine) as s, s.begin():
        assert thd_charge_pending(s, USD, 300, 10**8).rated == 0
    with Session(engine) as s:
        assert len(s.scalars(select(LedgerEntry.id).where(LedgerEntry.kind == "charge")).all()
                   ) == 2
        assert_ledger_consistent(s)


def test_batches_give_one_entry_each_and_the_same_total(engine: Engine) -> None:
    """Rated two deltas at a time, alice gets one entry per batch; the total is the same."""
    seed(engine)
    for _ in range(4):
        with Session(engine) as s, s.begin():
            thd_charge_pending(s, USD, 300, 10**8, batch=2)
    with Session(engine) as s:
        amounts = s.scalars(select(LedgerEntry.amount).where(LedgerEntry.kind == "charge")
                            ).all()
        assert sum(amounts) == -54 and len(amounts) == 3
        assert_ledger_consistent(s)


def test_migration_0350_fills_cost_and_key_of_deltas_charged_before(engine: Engine) -> None:
    """Deltas charged one entry each (usage:<delta id>) get that entry's cost and key."""
    from sqlalchemy import text

    from billing.accounts import thd_account
    from core.db import schema

    schema.downgrade(engine, "0321_billing_statements")  # back to before 0350
    with Session(engine) as s, s.begin():
        plan = make_plan(s, "old", time_price=parse_price("0.60"), time_unit=60)
        sub = make_subscriber(s, "old", plan)
        acct = thd_account(s, "old", USD).id
    with engine.begin() as c:
        for key, rated in (("old-1", 1), ("old-2", 1), ("old-3", 0)):
            c.execute(text(
                "INSERT INTO usage_delta (idempotency_key, subscriber_id, source, source_id, "
                "seconds, octets_in, octets_out, total_seconds, final, period_start, "
                "period_end, created_at, rated) VALUES (:k, :sub, 'session', 's', 25, 0, 0, "
                "25, 0, :t, :t, :t, :rated)"),
                {"k": key, "sub": sub, "t": "2024-01-01 00:00:00", "rated": rated})
        first = c.execute(text("SELECT MIN(id) FROM usage_delta")).scalar_one()
        c.execute(text("INSERT INTO ledger_entry (account_id, kind, amount, idempotency_key, "
                       "description, created_at) VALUES (:a, 'charge', -25, :k, '', :t)"),
                  {"a": acct, "k": f"usage:{first}", "t": "2024-01-01 00:00:00"})
    schema.upgrade(engine)
    with engine.connect() as c:
        got = c.execute(text("SELECT idempotency_key, charged, ledger_batch FROM usage_delta "
                             "ORDER BY id")).all()
    assert [tuple(r) for r in got] == [("old-1", 25, None), ("old-2", 0, None),
                                       ("old-3", 0, None)]
