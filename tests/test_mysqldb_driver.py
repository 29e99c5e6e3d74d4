"""mysql+mysqldb:// (mysqlclient, the C driver): accounting and billing through SQLAlchemy's own
statements give the same stored rows and ledger as PyMySQL's hand-rendered ones."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from accounting.records import AcctStatus
from accounting.store import AcctPolicy, thd_apply_records
from billing.charging import thd_charge_pending
from billing.money import parse_price
from billing.usage import thd_record_usage
from core.db.engine import make_engine
from core.db.handsql import hand_rendered
from tests.billing_support import assert_ledger_consistent, ledger_snapshot, make_plan
from tests.test_accounting_support import all_sessions, rec, seed


def test_mysqldb_takes_plain_statements_and_stores_the_same(engine: Engine, db_url: str) -> None:
    """Sessions, usage and the ledger written through mysqlclient are those PyMySQL writes."""
    if not db_url.startswith("mysql+pymysql://"):
        pytest.skip("MariaDB only")
    pytest.importorskip("MySQLdb")
    c_engine = make_engine(db_url.replace("+pymysql://", "+mysqldb://"), pool_size=1)
    try:
        assert hand_rendered(engine) and not hand_rendered(c_engine)
        with Session(engine) as s, s.begin():
            nas = seed(s)["nas1"]
            plan = make_plan(s, "metered", time_price=parse_price("0.60"), time_unit=60,
                             time_increment=1)
            from core.db.models import Subscriber

            for sub in s.scalars(select(Subscriber)):
                sub.plan_id = plan

        def store(eng: Engine, prefix: str) -> None:
            records = [rec(AcctStatus.START, nas_id=nas, sid=f"{prefix}1",
                           calling_station_id="it's"),
                       rec(AcctStatus.INTERIM, nas_id=nas, sid=f"{prefix}1", t=60,
                           session_time=60, octets_in=1 << 33, octets_out=5),
                       rec(AcctStatus.STOP, nas_id=nas, sid=f"{prefix}1", t=90,
                           session_time=90, octets_in=(1 << 33) + 1, octets_out=6)]
            for r in records:
                with Session(eng) as s, s.begin():
                    thd_apply_records(s, [r], AcctPolicy(), thd_record_usage)
            with Session(eng) as s, s.begin():
                thd_charge_pending(s, "USD", 300, 10**8)

        store(engine, "py-")
        store(c_engine, "c-")
        with Session(engine) as s:
            rows = {r["session_id"]: r for r in all_sessions(s)}
            assert_ledger_consistent(s)
            amounts = sorted(a for _acct, kind, a, _key in ledger_snapshot(s) if kind == "charge")
        skip = {"id", "unique_id", "session_id", "session_key", "created_at", "last_seen_at"}
        py, c = rows["py-1"], rows["c-1"]
        assert {k: v for k, v in py.items() if k not in skip} == {
            k: v for k, v in c.items() if k not in skip}
        assert amounts == [-90, -90]  # each session's 90 s at 1 cent, through either driver
    finally:
        c_engine.dispose()
