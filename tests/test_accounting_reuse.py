"""Acct-Session-Id reuse across NAS reboots: two sessions never merge (SQLite and MariaDB).

MariaDB runs accounting.rawsql's hand-rendered lock and upsert, SQLite the SQLAlchemy
statements; the same sequences must give the same rows on both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounting import rawsql
from accounting.records import AcctRecord, AcctStatus, session_row_id, session_unique_id
from accounting.store import (
    REUSE_TOLERANCE,
    SESSION_TABLE,
    AcctPolicy,
    ApplyResult,
    lock_statement,
    thd_apply_records,
)
from billing.usage import thd_record_usage
from tests.test_accounting_support import T0, all_deltas, all_sessions, rec, seed

START, INTERIM, STOP, ON = AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP, AcctStatus.ON
POLICY = AcctPolicy(stale_after_intervals=3, default_interim_interval=300)


@pytest.fixture
def db(engine: Engine) -> Callable[..., Any]:
    """Run a function in one committed transaction, like DBPool.run_sync."""

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            return fn(s, *args)

    return run


def apply(db: Callable[..., Any], records: Sequence[AcctRecord]) -> list[ApplyResult]:
    return db(thd_apply_records, list(records), POLICY,  # type: ignore[no-any-return]
              thd_record_usage)


def srec(status: AcctStatus, nas: int, t: float, *, stamped: bool = True, port: int = 7,
         **kw: Any) -> AcctRecord:
    """A session record of alice's session id 81000001 on NAS port ``port``."""
    r = rec(status, nas_id=nas, sid="81000001", t=t, nas_port=port, event_timestamped=stamped,
            **kw)
    key = session_unique_id(nas, r.nas_identity, r.session_id, r.user_name, None, port)
    return replace(r, unique_id=key)


def reboot_sequence(nas: int, *, stamped: bool, accounting_on: bool) -> list[list[AcctRecord]]:
    """Session 1 (Start, Interims, no Stop), the NAS reboots, session 2 reuses the id."""
    first = [srec(START, nas, 0, stamped=stamped),
             srec(INTERIM, nas, 300, stamped=stamped, session_time=300, octets_in=1000,
                  octets_out=2000),
             srec(INTERIM, nas, 601, stamped=stamped, session_time=600, octets_in=5000,
                  octets_out=9000)]
    reboot = [rec(ON, nas_id=nas, t=700)] if accounting_on else []
    second = [srec(START, nas, 760, stamped=stamped),
              srec(INTERIM, nas, 1061, stamped=stamped, session_time=300, octets_in=70,
                   octets_out=80),
              srec(STOP, nas, 1200, stamped=stamped, session_time=440, octets_in=100,
                   octets_out=200, terminate_cause="User-Request")]
    return [[r] for r in first + reboot + second]


@pytest.mark.parametrize(("stamped", "accounting_on"),
                         [(True, True), (True, False), (False, True)])
def test_nas_reboot_reusing_the_session_id_makes_two_sessions(
        db: Any, stamped: bool, accounting_on: bool) -> None:
    """Start, Interims, reboot (with or without Accounting-On), the same id again: two rows."""
    nas = db(seed)["nas1"]
    for batch in reboot_sequence(nas, stamped=stamped, accounting_on=accounting_on):
        apply(db, batch)
    rows = db(all_sessions)
    assert len(rows) == 2, rows
    old, new = rows
    assert old["session_key"] == new["session_key"] and old["unique_id"] != new["unique_id"]
    assert (old["session_time"], old["input_octets"], old["output_octets"]) == (600, 5000, 9000)
    assert (new["session_time"], new["input_octets"], new["output_octets"]) == (440, 100, 200)
    assert new["started_at"] == T0 + timedelta(seconds=760) and new["closed_by"] == "stop"
    if accounting_on:
        assert old["closed_by"] == "accounting-on"
    else:
        assert old["stopped_at"] is None  # left for the stale sweeper
    # With Event-Timestamp the stored id is FreeRADIUS's acct_unique parts plus the start.
    if stamped:
        assert new["unique_id"] == session_row_id(new["session_key"], new["started_at"])
    # Billing saw both sessions in full: nothing of the second was swallowed by the first.
    deltas = db(all_deltas)
    for row in rows:
        mine = [d for d in deltas if d["source_id"] == row["unique_id"]]
        assert sum(d["seconds"] for d in mine) == row["session_time"]
        assert sum(d["octets_in"] for d in mine) == row["input_octets"]


def test_reboot_sequence_in_one_group_commit(db: Any) -> None:
    """The same sequence inside one transaction (a busy group commit) gives the same rows."""
    nas = db(seed)["nas1"]
    apply(db, [r for batch in reboot_sequence(nas, stamped=True, accounting_on=True)
               for r in batch])
    rows = db(all_sessions)
    assert [(r["session_time"], r["closed_by"]) for r in rows] == [(600, "accounting-on"),
                                                                   (440, "stop")]


def test_jitter_and_late_packets_stay_in_their_session(db: Any) -> None:
    """Event-Timestamp - Acct-Session-Time moving by seconds, and re-sends, never split."""
    nas = db(seed)["nas1"]
    seq = [srec(START, nas, 0), srec(INTERIM, nas, 301, session_time=299, octets_in=10),
           srec(INTERIM, nas, 598, session_time=600, octets_in=20),
           srec(STOP, nas, 900, session_time=900, octets_in=30, terminate_cause="Lost-Carrier")]
    for r in seq:
        apply(db, [r])
    apply(db, [seq[1], seq[0]])  # late re-sends after the Stop
    rows = db(all_sessions)
    assert len(rows) == 1
    assert (rows[0]["session_time"], rows[0]["input_octets"]) == (900, 30)
    assert rows[0]["started_at"] == T0


def test_interim_of_a_new_session_without_start_after_reboot(db: Any) -> None:
    """The new session's Start was lost: its first Interim still starts a new row."""
    nas = db(seed)["nas1"]
    apply(db, [srec(START, nas, 0)])
    apply(db, [srec(STOP, nas, 100, session_time=100, octets_in=5)])
    apply(db, [srec(INTERIM, nas, 4000, session_time=300, octets_in=7)])
    rows = db(all_sessions)
    assert [(r["session_time"], r["input_octets"]) for r in rows] == [(100, 5), (300, 7)]
    assert rows[1]["started_at"] == T0 + timedelta(seconds=3700)


def test_other_port_is_another_session(db: Any) -> None:
    """NAS-Port is part of the key: the same id on two ports is two sessions at once."""
    nas = db(seed)["nas1"]
    apply(db, [srec(START, nas, 0, port=1), srec(START, nas, 0, port=2)])
    assert len(db(all_sessions)) == 2


def test_open_session_and_start_within_tolerance_is_one_session(db: Any) -> None:
    """A second Start of an open session a little later (a NAS resend) is not a new session."""
    nas = db(seed)["nas1"]
    apply(db, [srec(START, nas, 0)])
    apply(db, [srec(START, nas, REUSE_TOLERANCE.total_seconds() - 1)])
    assert len(db(all_sessions)) == 1


def test_lock_by_session_key_matches_sqlalchemy(engine: Engine, db: Any) -> None:
    """rawsql.lock_rows by session_key returns what SQLAlchemy's SELECT FOR UPDATE returns."""
    if engine.dialect.name != "mysql":
        pytest.skip("accounting.rawsql is only used on MariaDB")
    nas = db(seed)["nas1"]
    for batch in reboot_sequence(nas, stamped=True, accounting_on=True):
        apply(db, batch)
    key = db(all_sessions)[0]["session_key"]
    with Session(engine) as s, s.begin():
        raw = rawsql.lock_rows(s, SESSION_TABLE, [key, "0" * 32], "session_key")
    with Session(engine) as s, s.begin():
        expected = {m["unique_id"]: dict(m) for m in s.execute(
            lock_statement(SESSION_TABLE, [key, "0" * 32], "session_key")).mappings()}
    assert len(raw) == 2 and raw == expected
