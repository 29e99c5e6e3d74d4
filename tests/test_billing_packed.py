"""The charging pass's MariaDB I/O (billing.charging_mysql): literals, locks, packed reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymysql.converters import escape_str
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from billing import charging_mysql as packed
from billing.charging import thd_charge_pending
from billing.errors import PackedResultTruncated
from billing.models import BillingAccount
from billing.money import parse_price
from core.db.models import Subscriber
from core.db.pool import DBPool
from tests.billing_support import delta, make_plan, make_subscriber, record

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def mariadb_only(engine: Engine) -> None:
    if engine.dialect.name != "mysql":
        pytest.skip("MariaDB I/O only")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_sql_str_is_the_drivers_literal(value: str) -> None:
    """sql_str renders every string exactly as PyMySQL's escape_str does."""
    assert packed.sql_str(value, escape_str) == escape_str(value)


def test_sql_str_refuses_to_guess_without_the_driver() -> None:
    """A string that needs escaping is never quoted by hand when no escaper is given."""
    with pytest.raises(ValueError):
        packed.sql_str("it's", None)


def test_literals_round_trip_through_mariadb(engine: Engine) -> None:
    """sql_json, sql_str and sql_time literals come back from MariaDB as the same values."""
    mariadb_only(engine)
    values = ['{"b":{"":[1,2,3]},"c":"1.5","q":2}', '{"b":{"n\\u00e9":[0,0,0]}}',
              "it's", 'say "hi"', "back\\slash", "tab\tnew\nline", "nul\x00", "ünï", ""]
    when = datetime(2024, 5, 1, 12, 0, 1, 250, tzinfo=UTC)
    with engine.connect() as conn:
        esc = packed.escaper(conn)
        for v in values:
            got = conn.exec_driver_sql(f"SELECT {packed.sql_json(v, esc)}, "
                                       f"{packed.sql_str(v, esc)}").one()
            assert tuple(got) == (v, v)
        got_time = conn.exec_driver_sql(f"SELECT CAST({packed.sql_time(when)} AS DATETIME(6))"
                                        ).scalar()
        assert got_time == when.replace(tzinfo=None)


def _accounts(engine: Engine, n: int) -> list[int]:
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(insert(Subscriber), [
            {"login": f"p{i:05d}", "plan_id": None, "status": "active", "chap_enabled": False,
             "description": "", "created_at": now, "updated_at": now} for i in range(n)])
        subs = [int(s) for s in c.execute(select(Subscriber.id).order_by(Subscriber.id)).scalars()]
        c.execute(insert(BillingAccount), [
            {"subscriber_id": s, "currency": "USD", "balance": 0, "status": "active",
             "status_reason": "", "created_at": now, "updated_at": now} for s in subs])
    return subs


def test_locking_thousands_of_accounts_locks_only_those(engine: Engine) -> None:
    """1,500 accounts locked at once leave the others free (no scan that locks them all)."""
    mariadb_only(engine)
    subs = _accounts(engine, 1600)
    with engine.connect() as a, engine.connect() as b:
        with a.begin():
            got = packed.lock_accounts(a, subs[:1500], ("reserved", "active"))
            assert sorted(r.subscriber_id for r in got) == subs[:1500]
            with b.begin():
                b.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
                free = b.execute(text("SELECT id FROM billing_account WHERE subscriber_id = :s "
                                      "FOR UPDATE"), {"s": subs[-1]}).scalar()
                assert free is not None
                with pytest.raises(OperationalError):
                    b.execute(text("SELECT id FROM billing_account WHERE subscriber_id = :s "
                                   "FOR UPDATE"), {"s": subs[0]}).scalar()


def test_truncated_packed_read_refuses_the_batch(engine: Engine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A GROUP_CONCAT cut short raises instead of charging part of a batch; nothing is rated."""
    mariadb_only(engine)
    pool = DBPool(engine)

    def setup(s):
        plan = make_plan(s, "packed", time_price=parse_price("0.60"), time_unit=60,
                         time_increment=60)
        for i in range(30):
            sub = make_subscriber(s, f"t{i}", plan)
            record(s, delta(sub, f"sess{i}", seconds=60, end=NOON))
    pool.run_sync(setup)
    monkeypatch.setattr(packed, "_PACKED", "SET STATEMENT group_concat_max_len = 64 FOR ")
    with pytest.raises(PackedResultTruncated):
        pool.run_sync(thd_charge_pending, "USD", 300, 50_000_000, 5000, NOON)
    monkeypatch.undo()
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT COUNT(*) FROM usage_delta WHERE rated = 1"
                                 ).scalar() == 0
    assert pool.run_sync(thd_charge_pending, "USD", 300, 50_000_000, 5000, NOON).rated == 30
