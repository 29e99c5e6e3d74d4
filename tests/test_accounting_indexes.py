"""EXPLAIN on MariaDB: the accounting queries use their indexes, without scans or sorts.

The table gets enough rows (many subscribers, years of history, few open
sessions) and fresh statistics for the optimizer to choose as it would with
millions; each statement is the exact one the code runs, prefixed with EXPLAIN.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from accounting.hygiene import close_stale_statement, count_live_statement
from accounting.models import AcctSession
from accounting.queries import SessionFilter, session_list_statement
from accounting.records import AcctStatus
from accounting.retention import Cursor, batch_read_statement
from accounting.store import SESSION_TABLE, lock_statement, nas_event_statement
from core.db.models import Nas, Subscriber
from tests.test_accounting_support import T0, rec

SUBSCRIBERS = 400
SESSIONS = 40_000


@pytest.fixture
def big(engine: Engine) -> Iterator[dict[str, Any]]:
    """40,000 sessions of 400 subscribers on 8 NASes, 2% still open (MariaDB only)."""
    if engine.dialect.name != "mysql":
        pytest.skip("EXPLAIN plans are checked on MariaDB")
    with Session(engine) as s, s.begin():
        nases = [Nas(name=f"n{i}", address=f"192.0.2.{i + 1}", secret="x") for i in range(8)]
        subs = [Subscriber(login=f"user{i}") for i in range(SUBSCRIBERS)]
        s.add_all(nases + subs)
        s.flush()
        nas_ids = [n.id for n in nases]
        sub_ids = [x.id for x in subs]
    rows = []
    for k in range(SESSIONS):
        started = T0 - timedelta(hours=SESSIONS - k)
        is_open = k % 50 == 0
        rows.append({
            "unique_id": f"{k:032x}", "session_key": f"{k // 2:032x}",
            "nas_id": nas_ids[k % 8], "nas_identity": "10.0.0.1",
            "subscriber_id": sub_ids[k % SUBSCRIBERS], "user_name": f"user{k % SUBSCRIBERS}",
            "session_id": str(k), "started_at": started, "updated_at": started,
            "stopped_at": None if is_open else started + timedelta(minutes=30),
            "last_seen_at": started,
            "stale_deadline": started + timedelta(minutes=15) if is_open else None,
            "interim_interval": 300, "start_seen": True, "session_time": 1800,
            "input_octets": k, "output_octets": k, "input_packets": 0, "output_packets": 0,
            "created_at": started})
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(SESSION_TABLE.insert(), rows[i:i + 5000])
        conn.execute(text("ANALYZE TABLE acct_session"))
    yield {"nas": nas_ids[3], "subscriber": sub_ids[7], "login": "user7"}


def explain(engine: Engine, stmt: Any) -> list[dict[str, Any]]:
    def prefix(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               executemany: bool) -> tuple[str, Any]:
        return "EXPLAIN " + statement, params

    event.listen(engine, "before_cursor_execute", prefix, retval=True)
    try:
        with engine.connect() as conn:
            result = conn.execute(stmt)
            plan = [dict(r) for r in result.mappings()]
            conn.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", prefix)
    assert plan, "EXPLAIN returned no plan"
    return plan


def uses(plan: list[dict[str, Any]], index: str, max_rows: int) -> None:
    (row,) = [p for p in plan if p["table"] == "acct_session"]
    extra = row.get("Extra") or ""
    assert row["key"] == index, plan
    assert row["type"] != "ALL", plan
    assert "filesort" not in extra, plan
    assert int(row["rows"] or 0) <= max_rows, plan


def test_last_sessions_of_a_subscriber(engine: Engine, big: dict[str, Any]) -> None:
    """session list --subscriber: a backward range on (subscriber_id, started_at), no sort."""
    with Session(engine) as s:
        stmt = session_list_statement(s, SessionFilter(subscriber=big["login"], limit=20))
    uses(explain(engine, stmt), "ix_acct_session_subscriber_id_started_at", SESSIONS // 100)


def test_recent_sessions_and_since(engine: Engine, big: dict[str, Any]) -> None:
    """session list [--since]: a backward scan of (started_at), stopping at the limit."""
    with Session(engine) as s:
        plain = session_list_statement(s, SessionFilter(limit=20))
        since = session_list_statement(s, SessionFilter(since=T0 - timedelta(hours=10)))
    plan = explain(engine, plain)
    assert plan[0]["key"] == "ix_acct_session_started_at" and \
        "filesort" not in (plan[0]["Extra"] or ""), plan
    uses(explain(engine, since), "ix_acct_session_started_at", 100)


def test_open_sessions_of_a_nas(engine: Engine, big: dict[str, Any]) -> None:
    """Accounting-On/Off and session list --online --nas read (nas_id, stopped_at) only."""
    on = rec(AcctStatus.ON, nas_id=big["nas"], identity="10.0.0.1", t=0)
    (row,) = explain(engine, nas_event_statement(SESSION_TABLE, on))
    assert row["key"] == "ix_acct_session_nas_id_stopped_at", row
    assert int(row["rows"]) <= SESSIONS // 100, row
    with Session(engine) as s:
        stmt = session_list_statement(s, SessionFilter(online=True, nas="n3"))
    (row,) = explain(engine, stmt)
    assert row["key"] == "ix_acct_session_nas_id_stopped_at", row
    assert int(row["rows"]) <= SESSIONS // 100, row


def test_stale_sweep_and_live_count(engine: Engine, big: dict[str, Any]) -> None:
    """The sweeper ranges over (stale_deadline); simultaneous-use over open rows of one user."""
    (row,) = explain(engine, close_stale_statement(T0))
    assert row["key"] == "ix_acct_session_stale_deadline", row
    assert int(row["rows"]) <= SESSIONS // 20, row
    (row,) = explain(engine, count_live_statement(big["subscriber"], T0))
    assert row["key"] == "ix_acct_session_subscriber_id_stale_deadline", row
    assert int(row["rows"]) <= 10, row


def test_group_commit_lookup(engine: Engine, big: dict[str, Any]) -> None:
    """A group commit finds its rows through the unique index on unique_id."""
    plan = explain(engine, lock_statement(SESSION_TABLE, [f"{k:032x}" for k in range(0, 500, 7)]))
    (row,) = plan
    assert row["key"] == "uq_acct_session_unique_id" and row["type"] == "range", row
    assert int(row["rows"]) <= 100, row
    assert AcctSession.__tablename__ == "acct_session"


def test_group_commit_session_key_lookup(engine: Engine, big: dict[str, Any]) -> None:
    """Sessions are found by (session_key): every session of a reused key, nothing else."""
    keys = [f"{k:032x}" for k in range(0, 500, 7)]
    (row,) = explain(engine, lock_statement(SESSION_TABLE, keys, "session_key"))
    assert row["key"] == "ix_acct_session_session_key" and row["type"] == "range", row
    assert int(row["rows"]) <= 200, row


def test_retention_batches_walk_the_started_at_index(engine: Engine, big: dict[str, Any]) -> None:
    """Retention reads its batches along (started_at), in index order: no scan, no filesort."""
    for cursor in (None, Cursor(T0 - timedelta(hours=SESSIONS - 100), 100)):
        plan = explain(engine, batch_read_statement("sessions", T0 - timedelta(hours=5000),
                                                    cursor, 500))
        assert plan[0]["key"] == "ix_acct_session_started_at", plan
        assert "filesort" not in (plan[0]["Extra"] or ""), plan
