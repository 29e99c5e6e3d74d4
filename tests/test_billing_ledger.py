"""Ledger, payments, charging pass, fees and reservations on SQLite and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from billing.accounts import thd_account, thd_set_credit_limit
from billing.charging import thd_charge_pending
from billing.errors import BillingError
from billing.fees import thd_charge_fees
from billing.ledger import thd_check, thd_entries
from billing.models import AccountStatus, BillingAccount, ChargingSession, LedgerEntry
from billing.money import parse_price
from billing.payments import thd_add_payment
from billing.reservation import SessionRequest, thd_expire_holds, thd_reserve
from billing.tariffs import AfterAllowance, Allowance, Period
from billing.usage import UsageDeltaRow
from core.db.pool import DBPool
from tests.billing_support import (
    assert_ledger_consistent,
    balances,
    delta,
    ledger_snapshot,
    make_plan,
    make_subscriber,
    record,
)

USD = "USD"
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pool(engine):
    """A DBPool used synchronously (run_sync), no reactor needed."""
    p = DBPool(engine)
    yield p


def setup_sub(pool: DBPool, login: str = "alice", **prices: object) -> tuple[int, int]:
    def fn(s):
        plan = make_plan(s, f"plan-{login}", **(prices or {"time_price": parse_price("0.60"),
                                                            "time_unit": 60,
                                                            "time_increment": 60}))
        return plan, make_subscriber(s, login, plan)
    return pool.run_sync(fn)


def charge(pool: DBPool, now: datetime = NOON, batch: int = 5000):
    return pool.run_sync(thd_charge_pending, USD, 300, 50_000_000, batch, now)


# --- payments and the ledger -------------------------------------------------------------

def test_payment_is_idempotent_on_reference(pool: DBPool) -> None:
    """The same --ref twice posts one entry; a different amount with it is refused."""
    setup_sub(pool)
    first = pool.run_sync(thd_add_payment, "alice", 1000, USD, "EXT-1")
    again = pool.run_sync(thd_add_payment, "alice", 1000, USD, "EXT-1")
    assert first.created and not again.created
    assert again.account.balance == 1000
    with pytest.raises(BillingError, match="different amount"):
        pool.run_sync(thd_add_payment, "alice", 999, USD, "EXT-1")
    pool.run_sync(assert_ledger_consistent)


def test_payment_without_reference_always_posts(pool: DBPool) -> None:
    """Without --ref each payment is new (there is nothing to recognise a retry by)."""
    setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 100, USD)
    result = pool.run_sync(thd_add_payment, "alice", 100, USD)
    assert result.account.balance == 200


def test_ledger_check_finds_a_tampered_balance(pool: DBPool) -> None:
    """ledger check reports an account whose cached balance differs from its entries."""
    setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 500, USD, "P1")
    assert pool.run_sync(thd_check).mismatches == ()
    pool.run_sync(lambda s: s.execute(update(BillingAccount).values(balance=501)))
    bad = pool.run_sync(thd_check).mismatches
    assert len(bad) == 1 and bad[0].cached == 501 and bad[0].ledger_sum == 500


def test_ledger_key_is_unique_in_the_database(pool: DBPool) -> None:
    """The UNIQUE constraint itself refuses a second entry with the same key."""
    setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 500, USD, "P1")

    def dup(s):
        acc = s.scalars(select(BillingAccount)).one()
        s.add(LedgerEntry(account_id=acc.id, kind="payment", amount=1,
                          idempotency_key="payment:P1", description=""))
        s.flush()
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        pool.run_sync(dup)


def test_payment_unblocks_at_once(pool: DBPool) -> None:
    """A blocked prepaid account is unblocked by the payment that lifts it above 0."""
    setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 10, USD, "P1")
    sub = pool.run_sync(lambda s: s.scalars(select(BillingAccount.subscriber_id)).one())
    pool.run_sync(record, delta(sub, "s1", seconds=120))
    charge(pool)
    assert pool.run_sync(thd_account, "alice", USD).status == AccountStatus.BLOCKED
    result = pool.run_sync(thd_add_payment, "alice", 500, USD, "P2")
    assert result.unblocked
    assert result.account.status == AccountStatus.ACTIVE


def test_credit_limit_lets_postpaid_go_negative(pool: DBPool) -> None:
    """With a credit limit of 5.00 an account at -1.10 stays active."""
    _, sub = setup_sub(pool)
    pool.run_sync(thd_set_credit_limit, "alice", 500, USD)
    pool.run_sync(record, delta(sub, "s1", seconds=110))
    charge(pool)
    acct = pool.run_sync(thd_account, "alice", USD)
    assert acct.balance == -120 and acct.status == AccountStatus.ACTIVE
    assert acct.available == 500 - 120 - acct.reserved


# --- the charging pass -------------------------------------------------------------------

def test_deltas_charged_once_even_when_pass_reruns(pool: DBPool) -> None:
    """Interim deltas are charged; a second pass and a replayed delta change nothing."""
    _, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 10_000, USD, "P1")
    d1 = delta(sub, "s1", seconds=30, key="u1")
    d2 = delta(sub, "s1", seconds=45, end=NOON + timedelta(seconds=45), key="u2")
    pool.run_sync(record, d1, d2)
    r = charge(pool)
    assert (r.rated, r.charged) == (2, 120)  # 75 s at a 60 s increment = 2 minutes
    assert charge(pool).rated == 0
    pool.run_sync(record, d1)  # accounting replays it: the usage key dedups
    assert charge(pool).rated == 0
    acct = pool.run_sync(thd_account, "alice", USD)
    assert acct.balance == 10_000 - 120
    pool.run_sync(assert_ledger_consistent)


def test_final_delta_releases_the_hold(pool: DBPool) -> None:
    """A live session holds its next slice; the Stop's delta closes it and frees the money."""
    _, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 10_000, USD, "P1")
    pool.run_sync(record, delta(sub, "s1", seconds=60))
    charge(pool)
    assert pool.run_sync(thd_account, "alice", USD).reserved == 300  # 5 min at 0.60
    pool.run_sync(record, delta(sub, "s1", seconds=60, final=True,
                                end=NOON + timedelta(seconds=60)))
    charge(pool)
    acct = pool.run_sync(thd_account, "alice", USD)
    assert acct.reserved == 0 and acct.balance == 10_000 - 120


def test_call_rated_by_longest_prefix(pool: DBPool) -> None:
    """A call delta is charged by its destination's voice rate with connect fee and 60/60."""
    from billing.tariff_store import thd_import_rates
    from billing.tariffs import parse_rates_csv

    _, sub = setup_sub(pool)
    pool.run_sync(thd_import_rates, "plan-alice",
                  parse_rates_csv("44,0.10,0.05,60,60\n4420,0.02,0,30,6\n"))
    pool.run_sync(thd_add_payment, "alice", 1000, USD, "P1")
    pool.run_sync(record, delta(sub, "c1", seconds=61, source="call",
                                destination="+4416329600", final=True))
    charge(pool)
    entries = pool.run_sync(thd_entries, pool.run_sync(thd_account, "alice", USD).id)
    assert [e.amount for e in entries if e.kind == "charge"] == [-25]


def test_allowance_then_charge(pool: DBPool) -> None:
    """10 free minutes per month, then 0.60/min."""
    from billing.tariff_store import thd_apply_spec
    from billing.tariffs import TariffSpec

    _, sub = setup_sub(pool)
    pool.run_sync(thd_apply_spec, TariffSpec(plan_name="plan-alice", allowance=Allowance(
        Period.MONTH, seconds=600, after=AfterAllowance.CHARGE)))
    pool.run_sync(thd_add_payment, "alice", 10_000, USD, "P1")
    pool.run_sync(record, delta(sub, "s1", seconds=900, final=True))
    charge(pool)
    assert pool.run_sync(thd_account, "alice", USD).balance == 10_000 - 300


def test_monthly_fee_once_per_period(pool: DBPool) -> None:
    """A monthly fee is charged once per month, catching up missed months, never twice."""
    setup_sub(pool, "bob", monthly_fee=parse_price("9.99"))
    now = datetime(2024, 5, 10, tzinfo=UTC)
    r1 = pool.run_sync(thd_charge_fees, USD, now)
    r2 = pool.run_sync(thd_charge_fees, USD, now)
    assert (r1.entries, r2.entries) == (1, 0)
    r3 = pool.run_sync(thd_charge_fees, USD, datetime(2024, 7, 2, tzinfo=UTC))
    assert r3.entries == 2  # June and July
    assert pool.run_sync(thd_account, "bob", USD).balance == -3 * 999
    pool.run_sync(assert_ledger_consistent)


# --- reservations ---------------------------------------------------------------------------

def request(plan: int, sub: int, asid: str) -> SessionRequest:
    return SessionRequest(subscriber_id=sub, plan_id=plan, user_name="alice", nas_id=None,
                          acct_session_id=asid)


def test_reservation_grants_what_money_buys(pool: DBPool) -> None:
    """1.00 at 0.60/min buys one minute (increment 60): Session-Timeout 60, hold 0.60."""
    plan, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 100, USD, "P1")
    g = pool.run_sync(thd_reserve, request(plan, sub, "a"), USD, 300, 0, NOON)
    assert g.ok and g.session_timeout == 60 and g.reserved == 100


def test_two_sessions_cannot_hold_the_same_money(pool: DBPool) -> None:
    """The first session's hold is not available to the second."""
    plan, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 300, USD, "P1")
    g1 = pool.run_sync(thd_reserve, request(plan, sub, "a"), USD, 300, 0, NOON)
    g2 = pool.run_sync(thd_reserve, request(plan, sub, "b"), USD, 300, 0, NOON)
    assert g1.ok and g1.reserved == 300
    assert not g2.ok and g2.message == "Insufficient balance"


def test_expired_hold_frees_money(pool: DBPool) -> None:
    """A hold never claimed by usage lapses and the money is available again."""
    plan, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 300, USD, "P1")
    pool.run_sync(thd_reserve, request(plan, sub, "a"), USD, 300, 0, NOON)
    assert pool.run_sync(thd_expire_holds, NOON + timedelta(hours=1)) == 1
    g = pool.run_sync(thd_reserve, request(plan, sub, "b"), USD, 300, 0,
                      NOON + timedelta(hours=1))
    assert g.ok


def test_usage_claims_the_hold(pool: DBPool) -> None:
    """The first delta of a session binds the Access-Request's hold (no double hold)."""
    plan, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 1000, USD, "P1")
    pool.run_sync(thd_reserve, request(plan, sub, "a"), USD, 300, 0, NOON)
    pool.run_sync(record, delta(sub, "uniq-a", seconds=60, end=NOON + timedelta(seconds=60)))
    charge(pool, NOON + timedelta(seconds=60))
    rows = pool.run_sync(lambda s: s.execute(select(ChargingSession.source_id,
                                                    ChargingSession.state)).all())
    assert [tuple(r) for r in rows] == [("uniq-a", "active")]
    acct = pool.run_sync(thd_account, "alice", USD)
    assert acct.balance == 940 and acct.reserved == 300


def test_running_out_marks_session_to_cut_and_blocks(pool: DBPool) -> None:
    """Usage that eats the last money blocks the account and marks the session exhausted."""
    plan, sub = setup_sub(pool)
    pool.run_sync(thd_add_payment, "alice", 120, USD, "P1")
    pool.run_sync(thd_reserve, request(plan, sub, "a"), USD, 300, 0, NOON)
    pool.run_sync(record, delta(sub, "uniq-a", seconds=120, end=NOON + timedelta(seconds=120)))
    r = charge(pool, NOON + timedelta(seconds=120))
    assert r.blocked
    cs = pool.run_sync(lambda s: s.execute(select(ChargingSession.reserved,
                                                  ChargingSession.exhausts_at)).one())
    assert cs[0] == 0 and cs[1] is not None
    g = pool.run_sync(thd_reserve, request(plan, sub, "b"), USD, 300, 0, NOON)
    assert not g.ok


def test_usage_rows_marked_rated(pool: DBPool) -> None:
    """Rated deltas stay stored, flagged, so accounting's replay dedup still works."""
    _, sub = setup_sub(pool)
    pool.run_sync(record, delta(sub, "s1", seconds=10))
    charge(pool)
    flags = pool.run_sync(lambda s: s.scalars(select(UsageDeltaRow.rated)).all())
    assert flags == [True]
    snap = pool.run_sync(ledger_snapshot)
    assert len(snap) == 1 and snap[0][2] == -60
    assert pool.run_sync(balances)


def test_sqlite_or_mariadb_has_the_billing_schema(pool: DBPool) -> None:
    """The migration created every billing table (smoke check on both backends)."""
    names = {"billing_account", "ledger_entry", "tariff", "tariff_band", "voice_rate",
             "charging_session", "allowance_usage", "billing_event"}
    with pool.engine.connect() as c:
        if pool.engine.dialect.name == "sqlite":
            have = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master"))}
        else:
            have = {r[0] for r in c.execute(text("SHOW TABLES"))}
    assert names <= have
