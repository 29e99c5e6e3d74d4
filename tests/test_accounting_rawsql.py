"""accounting.rawsql: hand-rendered MariaDB statements store and read what SQLAlchemy's do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from accounting import rawsql
from accounting.commit import is_outage
from accounting.records import LEN_SESSION_ID, LEN_STATION, AcctStatus
from accounting.store import (
    SESSION_TABLE,
    STRING_WIDTHS,
    AcctPolicy,
    lock_statement,
    thd_apply_records,
)
from billing.usage import thd_record_usage
from tests.test_accounting_support import T0, rec, seed, session_row

POLICY = AcctPolicy(stale_after_intervals=3, default_interim_interval=300)
HOSTILE = [
    "it's", 'say "hi"', "back\\slash", "\\'", "%s", "%(user)s", "100%", "\x00nul",
    "tab\tnew\nline\r", "ünïcødé ☎ 𝄞", "'; DROP TABLE acct_session; --", "\x1a\\\\'\\",
]


def _apply(engine: Engine, records: list[Any]) -> None:
    with Session(engine) as s, s.begin():
        thd_apply_records(s, records, POLICY, thd_record_usage)


def _mariadb(engine: Engine) -> None:
    if engine.dialect.name != "mysql":
        pytest.skip("accounting.rawsql is only used on MariaDB")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_are_stored_as_sent(engine: Engine, value: str) -> None:
    """Quotes, backslashes, % placeholders, NUL and non-ASCII reach the row unchanged."""
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=n, sid="S-" + value, calling_station_id=value,
                nas_port_id=value)
    interim = rec(AcctStatus.INTERIM, nas_id=n, sid="S-" + value, t=60, session_time=60,
                  octets_in=5, octets_out=7, calling_station_id=value + "!")
    _apply(engine, [start])
    _apply(engine, [interim])
    with Session(engine) as s:
        row = session_row(s, start)
    assert row is not None
    assert row["session_id"] == "S-" + value
    assert row["nas_port_id"] == value
    assert row["calling_station_id"] == value + "!"
    assert (row["session_time"], row["input_octets"], row["output_octets"]) == (60, 5, 7)


def test_long_strings_are_clipped_to_the_column(engine: Engine) -> None:
    """A value longer than its column is cut to the column's width, never refused."""
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    long = "x" * 500
    start = rec(AcctStatus.START, nas_id=n, sid=long, calling_station_id=long)
    _apply(engine, [start])
    with Session(engine) as s:
        row = session_row(s, start)
    assert row is not None
    assert row["session_id"] == long[:LEN_SESSION_ID]
    assert row["calling_station_id"] == long[:LEN_STATION]


def test_lock_rows_returns_what_sqlalchemy_returns(engine: Engine) -> None:
    """Every column of the locked rows has the same value and type as SQLAlchemy's SELECT."""
    _mariadb(engine)
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    records = [rec(AcctStatus.START, nas_id=n, sid=f"S{i}", framed_ip="100.64.0.1",
                   t=i + 0.123456) for i in range(5)]
    records.append(rec(AcctStatus.STOP, nas_id=n, sid="S0", t=90, session_time=90,
                       octets_in=1 << 40, octets_out=3, terminate_cause="User-Request"))
    _apply(engine, records)
    uids = [r.unique_id for r in records] + ["0" * 32]
    with Session(engine) as s, s.begin():
        raw = rawsql.lock_rows(s, SESSION_TABLE, uids)
    with Session(engine) as s, s.begin():
        rows = s.execute(lock_statement(SESSION_TABLE, sorted(set(uids)))).mappings()
        expected = {m["unique_id"]: dict(m) for m in rows}
    assert len(raw) == 5
    assert raw == expected
    for uid, row in raw.items():
        for name, value in row.items():
            assert type(value) is type(expected[uid][name]), name
            if isinstance(value, datetime):
                assert value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_upsert_keeps_the_greater_counter_and_converts_to_utc(engine: Engine) -> None:
    """'greatest' columns never go down; an aware non-UTC timestamp is stored in UTC."""
    _mariadb(engine)
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=n, sid="G1")
    _apply(engine, [start])
    with Session(engine) as s, s.begin():
        row = rawsql.lock_rows(s, SESSION_TABLE, [start.unique_id])[start.unique_id]
    plus_two = datetime(2024, 3, 4, 14, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    lowered = {**row, "input_octets": 0, "session_time": 999, "updated_at": plus_two}
    columns = [c for c in row if c != "id"]
    with Session(engine) as s, s.begin():
        rawsql.upsert(s, SESSION_TABLE, [lowered], columns,
                      {"input_octets": "greatest", "session_time": "greatest",
                       "updated_at": "new"}, STRING_WIDTHS)
    with Session(engine) as s, s.begin():
        rawsql.upsert(s, SESSION_TABLE, [{**lowered, "session_time": 5}], columns,
                      {"session_time": "greatest"}, STRING_WIDTHS)
    with Session(engine) as s:
        after = session_row(s, start)
    assert after is not None
    assert after["input_octets"] == row["input_octets"]
    assert after["session_time"] == 999
    assert after["updated_at"] == datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
    assert after["updated_at"] != T0


def test_database_errors_stay_sqlalchemy_errors(engine: Engine) -> None:
    """A value MariaDB refuses raises SQLAlchemy's DBAPIError, which is not taken for an outage."""
    _mariadb(engine)
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=n, sid="E1")
    _apply(engine, [start])
    with Session(engine) as s, s.begin():
        row = rawsql.lock_rows(s, SESSION_TABLE, [start.unique_id])[start.unique_id]
    bad = {**row, "interim_interval": 1 << 40}  # INT column: out of range in strict mode
    columns = [c for c in row if c != "id"]
    with pytest.raises(sa_exc.DBAPIError) as caught, Session(engine) as s, s.begin():
        rawsql.upsert(s, SESSION_TABLE, [bad], columns, {"interim_interval": "new"},
                      STRING_WIDTHS)
    assert not is_outage(caught.value)


def test_naive_timestamp_is_refused(engine: Engine) -> None:
    """A naive datetime is an error, as with the UTCDateTime column type, never stored as is."""
    _mariadb(engine)
    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=n, sid="N1")
    _apply(engine, [start])
    with Session(engine) as s, s.begin():
        row = rawsql.lock_rows(s, SESSION_TABLE, [start.unique_id])[start.unique_id]
    naive = {**row, "updated_at": datetime(2024, 1, 1)}
    columns = [c for c in row if c != "id"]
    with pytest.raises(ValueError), Session(engine) as s, s.begin():
        rawsql.upsert(s, SESSION_TABLE, [naive], columns, {"updated_at": "new"}, STRING_WIDTHS)


def test_subscriber_lookup_matches_sqlalchemy(engine: Engine) -> None:
    """The raw login lookup finds the same subscribers, hostile logins included, as the ORM."""
    _mariadb(engine)
    from sqlalchemy import select

    from core.db.models import Plan, Subscriber

    with Session(engine) as s, s.begin():
        seed(s)
        plan = s.execute(select(Plan)).scalars().first()
        assert plan is not None
        s.add_all(Subscriber(login=login, plan_id=plan.id) for login in HOSTILE[:8])
        s.add(Subscriber(login="noplan"))
    logins = sorted({*HOSTILE, "alice", "noplan", "nobody"})
    with Session(engine) as s, s.begin():
        raw = sorted(rawsql.subscribers_by_login(s, logins))
        orm = sorted(tuple(r) for r in s.execute(
            select(Subscriber.id, Subscriber.login, Plan.interim_interval)
            .outerjoin(Plan, Subscriber.plan_id == Plan.id)
            .where(Subscriber.login.in_(logins))).all())
    assert raw == orm
    assert {login for _, login, _ in raw} == {*HOSTILE[:8], "alice", "noplan"}


def test_timestamps_do_not_depend_on_the_session_time_zone(engine: Engine) -> None:
    """Timestamps written and read as microseconds since 1970 ignore the connection's time_zone."""
    _mariadb(engine)
    from sqlalchemy import text

    with Session(engine) as s, s.begin():
        n = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=n, sid="TZ1", t=0.654321)
    with Session(engine) as s, s.begin():
        s.execute(text("SET time_zone = '+05:00'"))
        thd_apply_records(s, [start], POLICY, thd_record_usage)
        locked = rawsql.lock_rows(s, SESSION_TABLE, [start.unique_id])[start.unique_id]
        s.execute(text("SET time_zone = SYSTEM"))
    with Session(engine) as s:
        row = session_row(s, start)
    assert row is not None
    assert row["started_at"] == start.event_at == locked["started_at"]
    assert row["started_at"].microsecond == 654321
