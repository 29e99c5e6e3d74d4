"""Every kind of value through the hand-rendered MariaDB SQL, and back unchanged.

accounting.rawsql (group commit upsert and row lock) and billing.charging_mysql
(packed reads, typed literals) render literals themselves. Fed here: strings
with quotes, backslashes, NUL, ``%`` and ``%s`` (never a placeholder), control
characters, non-ASCII and 4-byte UTF-8, what the packet decoder makes of
invalid UTF-8 (``backslashreplace``), empty strings, NULL, integers at both
ends of BIGINT's range in use, booleans, and timestamps with microseconds in
and out of UTC. Each must read back exactly as written, through the same
hand-rendered path and through plain SQLAlchemy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aaa.acct import _text as decode_text
from accounting import rawsql
from accounting.records import AcctStatus
from accounting.store import SESSION_TABLE, AcctPolicy, thd_apply_records
from billing import charging_mysql as packed
from billing.usage import UsageDelta, UsageDeltaRow, thd_record_usage
from tests.test_accounting_support import rec, seed

INVALID_UTF8 = decode_text(b"caf\xe9 \xff\xfe \xc3")  # -> 'caf\\xe9 \\xff\\xfe \\xc3'
STRINGS = [
    "it's", 'say "hi"', "back\\slash", "\\'", "\\", "%", "%s", "%(x)s", "100%%", "\x00",
    "a\x00b", "\x1a", "tab\tnl\ncr\r", "ünïcødé", "☎ 𝄞 😀", INVALID_UTF8, "",
    "'; DROP TABLE acct_session; --",
]
INTS = [0, 1, 2**31 - 1, 2**32, 2**53 + 1, 2**63 - 1]
TIMES = [datetime(2024, 3, 4, 10, 0, 0, 1, tzinfo=UTC),
         datetime(2024, 3, 4, 13, 0, 0, 999999, tzinfo=timezone(timedelta(hours=3))),
         datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)]


@pytest.fixture
def mariadb(engine: Engine) -> Engine:
    if engine.dialect.name != "mysql":
        pytest.skip("the hand-rendered SQL is only used on MariaDB")
    return engine


def test_decoder_turns_invalid_utf8_into_stable_text() -> None:
    """Invalid UTF-8 from a NAS becomes backslash escapes, the same every time."""
    assert INVALID_UTF8 == "caf\\xe9 \\xff\\xfe \\xc3"


def test_accounting_upsert_and_lock_round_trip_every_value_kind(mariadb: Engine) -> None:
    """Strings, ints, NULL, booleans and timestamps written by rawsql.upsert come back from
    rawsql.lock_rows and from SQLAlchemy exactly as written."""
    with Session(mariadb) as s, s.begin():
        nas = seed(s)["nas1"]
    records = []
    for i, value in enumerate(STRINGS):
        when = TIMES[i % len(TIMES)]
        r = rec(AcctStatus.STOP, nas_id=nas, sid=f"{i}:{value}", user="alice",
                session_time=INTS[i % len(INTS)] % (2**31), octets_in=INTS[i % len(INTS)],
                octets_out=INTS[-1 - i % len(INTS)], gigawords=True, calling_station_id=value,
                nas_port_id=value or None, terminate_cause=value[:32])
        records.append(r.__class__(**{**r.__dict__, "event_at": when, "received_at": when}))
    with Session(mariadb) as s, s.begin():
        thd_apply_records(s, records, AcctPolicy(), thd_record_usage)
    uids = [r.unique_id for r in records]
    with Session(mariadb) as s, s.begin():
        raw = rawsql.lock_rows(s, SESSION_TABLE, uids)
    with Session(mariadb) as s:
        orm = {row["unique_id"]: dict(row) for row in s.execute(
            select(SESSION_TABLE).where(SESSION_TABLE.c.unique_id.in_(uids))).mappings()}
    assert raw == orm
    for i, (r, value) in enumerate(zip(records, STRINGS, strict=True)):
        row = raw[r.unique_id]
        assert row["session_id"] == f"{i}:{value}"
        assert row["calling_station_id"] == value
        assert row["nas_port_id"] == (value or None)
        assert row["terminate_cause"] == value[:32]
        assert row["input_octets"] == INTS[i % len(INTS)]
        assert row["output_octets"] == INTS[-1 - i % len(INTS)]
        assert row["stopped_at"] == r.event_at.astimezone(UTC)
        assert row["start_seen"] is False


def test_billing_packed_read_returns_hostile_usage_unchanged(mariadb: Engine) -> None:
    """Usage deltas with hostile source ids and destinations come back from the packed
    (GROUP_CONCAT of HEX) read exactly as stored, with their microsecond timestamps."""
    with Session(mariadb) as s, s.begin():
        sub = seed(s)["alice"]
        deltas = [UsageDelta(subscriber_id=sub, source="call", source_id=f"{i}:{v}"[:64],
                             seconds=INTS[i % len(INTS)] % 10**6, octets_in=INTS[i % len(INTS)],
                             octets_out=0, period_start=TIMES[i % 3], period_end=TIMES[i % 3],
                             idempotency_key=f"k{i}", destination=v[:64] or None)
                  for i, v in enumerate(STRINGS)]
        thd_record_usage(s, deltas)
    with mariadb.begin() as conn:
        got = packed.select_deltas(conn, len(STRINGS) + 5)
    by_key = {d.source_id: d for d in got}
    assert len(by_key) == len(STRINGS)
    for d in deltas:
        out = by_key[d.source_id]
        assert (out.destination, out.seconds, out.octets_in) == (
            d.destination, d.seconds, d.octets_in)
        assert out.period_end == d.period_end.astimezone(UTC)
    with Session(mariadb) as s:
        stored = set(s.scalars(select(UsageDeltaRow.source_id)))
    assert stored == {d.source_id for d in deltas}


@pytest.mark.parametrize("value", STRINGS)
def test_billing_literals_round_trip(mariadb: Engine, value: str) -> None:
    """sql_str, sql_json (for JSON-safe text) and sql_time literals read back unchanged."""
    raw = {"no_parameters": True}  # as the hand-rendered paths run: no %-formatting
    with mariadb.connect() as conn:
        esc = packed.escaper(conn)
        assert conn.exec_driver_sql(f"SELECT {packed.sql_str(value, esc)}",
                                    execution_options=raw).scalar() == value
        assert conn.exec_driver_sql(f"SELECT {packed.sql_json(value, esc)}",
                                    execution_options=raw).scalar() == value
        for when in TIMES:
            got = conn.exec_driver_sql(f"SELECT CAST({packed.sql_time(when)} AS DATETIME(6))",
                                       execution_options=raw).scalar()
            assert got == when.astimezone(UTC).replace(tzinfo=None)
