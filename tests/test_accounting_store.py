"""The accounting store on SQLite and MariaDB: idempotency, ordering, Gigawords, deltas, hygiene."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounting.hygiene import thd_close_stale, thd_count_live_sessions
from accounting.records import AcctRecord, AcctStatus, CallFacts, call_unique_id
from accounting.store import AcctPolicy, ApplyResult, merge_counter, thd_apply_records
from billing.usage import thd_record_usage
from tests.test_accounting_support import (
    T0,
    all_calls,
    all_deltas,
    all_sessions,
    at,
    rec,
    seed,
    session_row,
)

START, INTERIM, STOP = AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP
POLICY = AcctPolicy(stale_after_intervals=3, default_interim_interval=300)
GIB = 1 << 32


@pytest.fixture
def db(engine: Engine) -> Callable[..., Any]:
    """Run a function in one committed transaction, like DBPool.run_sync."""

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            return fn(s, *args)

    return run


@pytest.fixture
def ids(db: Callable[..., Any]) -> dict[str, int]:
    """Seeded plan, subscribers and NASes."""
    return db(seed)  # type: ignore[no-any-return]


def apply(db: Callable[..., Any], records: Sequence[AcctRecord]) -> list[ApplyResult]:
    return db(thd_apply_records, list(records), POLICY, thd_record_usage)  # type: ignore[no-any-return]


def test_start_interim_stop_make_one_correct_record(db: Any, ids: dict[str, int]) -> None:
    """A normal session becomes one record with times, counters, addresses and cause."""
    n = ids["nas1"]
    apply(db, [rec(START, nas_id=n, t=0, framed_ip="100.64.0.7",
                   calling_station_id="AA:BB:CC:DD:EE:FF", nas_port=15)])
    apply(db, [rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=1000, octets_out=5000,
                   framed_ipv6_prefix="2001:db8:1::/64", delegated_ipv6_prefix="2001:db8:2::/56")])
    apply(db, [rec(STOP, nas_id=n, t=125, session_time=125, octets_in=3000, octets_out=9000,
                   terminate_cause="User-Request")])
    rows = db(all_sessions)
    assert len(rows) == 1
    row = rows[0]
    assert row["subscriber_id"] == ids["alice"]
    assert row["started_at"] == T0 and row["start_seen"]
    assert row["stopped_at"] == T0 + timedelta(seconds=125)
    assert (row["session_time"], row["input_octets"], row["output_octets"]) == (125, 3000, 9000)
    assert row["framed_ip"] == "100.64.0.7" and row["nas_port"] == 15
    assert row["calling_station_id"] == "AA:BB:CC:DD:EE:FF"
    assert row["framed_ipv6_prefix"] == "2001:db8:1::/64"
    assert row["delegated_ipv6_prefix"] == "2001:db8:2::/56"
    assert (row["terminate_cause"], row["closed_by"]) == ("User-Request", "stop")
    assert row["stale_deadline"] is None
    assert row["interim_interval"] == 60


def test_interim_before_start_then_start(db: Any, ids: dict[str, int]) -> None:
    """An Interim-Update first creates the record; the late Start fixes the start time only."""
    n = ids["nas1"]
    apply(db, [rec(INTERIM, nas_id=n, t=300, session_time=290, octets_in=10, octets_out=20)])
    row = db(session_row, rec(START, nas_id=n))
    assert row["started_at"] == T0 + timedelta(seconds=10) and not row["start_seen"]
    apply(db, [rec(START, nas_id=n, t=12, received=400)])
    rows = db(all_sessions)
    assert len(rows) == 1
    assert rows[0]["started_at"] == T0 + timedelta(seconds=12) and rows[0]["start_seen"]
    assert (rows[0]["session_time"], rows[0]["input_octets"]) == (290, 10)
    assert rows[0]["stopped_at"] is None


def test_stop_without_start(db: Any, ids: dict[str, int]) -> None:
    """A lone Stop produces one closed record whose start is implied by Acct-Session-Time."""
    n = ids["nas1"]
    apply(db, [rec(STOP, nas_id=n, t=1000, session_time=600, octets_in=7, octets_out=8)])
    (row,) = db(all_sessions)
    assert row["started_at"] == T0 + timedelta(seconds=400)
    assert row["stopped_at"] == T0 + timedelta(seconds=1000)
    assert (row["input_octets"], row["output_octets"], row["closed_by"]) == (7, 8, "stop")
    assert row["stale_deadline"] is None


def test_repeats_and_older_counters_change_nothing(db: Any, ids: dict[str, int]) -> None:
    """Start repeated, an Interim re-sent later, an older Interim and Stop after Stop are no-ops."""
    n = ids["nas1"]
    start = rec(START, nas_id=n, t=0)
    i1 = rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=100, octets_out=200)
    i2 = rec(INTERIM, nas_id=n, t=120, session_time=120, octets_in=300, octets_out=400)
    apply(db, [start, i1, i2])
    before = db(session_row, start)
    deltas_before = db(all_deltas)
    results = apply(db, [at(start, 500), at(i2, 501), at(i1, 502)])
    assert [r.action for r in results] == ["unchanged"] * 3
    assert db(session_row, start) == before
    stop = rec(STOP, nas_id=n, t=180, session_time=180, octets_in=500, octets_out=600,
               terminate_cause="Lost-Carrier")
    apply(db, [stop])
    closed = db(session_row, start)
    results = apply(db, [at(stop, 900), at(i2, 901)])
    assert [r.action for r in results] == ["unchanged", "unchanged"]
    assert db(session_row, start) == closed
    assert len(db(all_deltas)) == len(deltas_before) + 1


def test_counters_never_go_backwards(db: Any, ids: dict[str, int]) -> None:
    """A newer packet with lower counters (a confused NAS) does not lower stored counters."""
    n = ids["nas1"]
    apply(db, [rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=5 * GIB + 10,
                   octets_out=10, gigawords=True)])
    apply(db, [rec(INTERIM, nas_id=n, t=120, session_time=120, octets_in=GIB + 5,
                   octets_out=5, gigawords=True)])
    row = db(session_row, rec(START, nas_id=n))
    assert row["input_octets"] == 5 * GIB + 10 and row["output_octets"] == 10


def test_gigawords_give_64_bit_totals_across_a_wrap(db: Any, ids: dict[str, int]) -> None:
    """Acct-Input-Gigawords incrementing as the 32-bit octet counter wraps gives exact totals."""
    n = ids["nas1"]
    apply(db, [rec(START, nas_id=n, t=0)])
    apply(db, [rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=GIB - 100,
                   octets_out=3 * GIB + 7, gigawords=True)])
    apply(db, [rec(INTERIM, nas_id=n, t=120, session_time=120, octets_in=GIB + 50,
                   octets_out=4 * GIB + 1, gigawords=True)])
    row = db(session_row, rec(START, nas_id=n))
    assert row["input_octets"] == GIB + 50
    assert row["output_octets"] == 4 * GIB + 1
    deltas = db(all_deltas)
    assert sum(d["octets_in"] for d in deltas) == GIB + 50
    assert sum(d["octets_out"] for d in deltas) == 4 * GIB + 1


def test_wrap_without_gigawords_is_carried(db: Any, ids: dict[str, int]) -> None:
    """A NAS without Gigawords whose counter wraps is carried into the high word, not lost."""
    n = ids["nas1"]
    apply(db, [rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=GIB - 10, octets_out=1)])
    apply(db, [rec(INTERIM, nas_id=n, t=120, session_time=120, octets_in=20, octets_out=2)])
    apply(db, [rec(INTERIM, nas_id=n, t=180, session_time=180, octets_in=30, octets_out=3)])
    apply(db, [rec(INTERIM, nas_id=n, t=90, session_time=90, octets_in=5, octets_out=1)])
    row = db(session_row, rec(START, nas_id=n))
    assert row["input_octets"] == GIB + 30
    assert row["output_octets"] == 3


def test_merge_counter_rules() -> None:
    """merge_counter: grows, ignores older/absent, trusts Gigawords, carries one wrap."""
    assert merge_counter(10, 20, True, False) == 20
    assert merge_counter(10, None, True, False) == 10
    assert merge_counter(10, 5, False, False) == 10
    assert merge_counter(GIB - 1, 5, True, True) == GIB - 1
    assert merge_counter(GIB - 1, 5, True, False) == GIB + 5
    assert merge_counter(3 * GIB + 100, 50, True, False) == 4 * GIB + 50
    assert merge_counter(3 * GIB + 100, 150, True, False) == 3 * GIB + 150


def test_any_order_and_duplicates_give_the_same_record(db: Any, ids: dict[str, int]) -> None:
    """Shuffled and duplicated Start/Interim/Stop sequences all converge on one final record."""
    n = ids["nas1"]
    rng = random.Random(20240304)
    fields = ("started_at", "stopped_at", "session_time", "input_octets", "output_octets",
              "closed_by", "terminate_cause", "start_seen", "subscriber_id")
    expected: dict[str, Any] | None = None
    for trial in range(12):
        sid = f"perm-{trial}"
        seq = [rec(START, nas_id=n, sid=sid, t=0)]
        seq += [rec(INTERIM, nas_id=n, sid=sid, t=60 * k, session_time=60 * k,
                    octets_in=1000 * k, octets_out=3000 * k) for k in range(1, 6)]
        seq.append(rec(STOP, nas_id=n, sid=sid, t=400, session_time=400, octets_in=9000,
                       octets_out=20000, terminate_cause="User-Request"))
        seq += rng.sample(seq, 3)
        rng.shuffle(seq)
        # Some in one transaction, some alone: both paths must agree.
        cut = rng.randrange(len(seq))
        apply(db, seq[:cut])
        for r in seq[cut:]:
            apply(db, [r])
        row = db(session_row, seq[0])
        got = {f: row[f] for f in fields}
        expected = expected or got
        assert got == expected, f"trial {trial}"
        deltas = [d for d in db(all_deltas) if d["source_id"] == seq[0].unique_id]
        assert sum(d["octets_in"] for d in deltas) == 9000
        assert sum(d["seconds"] for d in deltas) == 400
    assert expected is not None and expected["stopped_at"] == T0 + timedelta(seconds=400)


def test_usage_deltas_exactly_once(db: Any, ids: dict[str, int]) -> None:
    """Each stored increase yields one delta with a unique key; replaying the lot yields none."""
    n = ids["nas1"]
    seq = [rec(START, nas_id=n, t=0),
           rec(INTERIM, nas_id=n, t=60, session_time=60, octets_in=10, octets_out=100),
           rec(INTERIM, nas_id=n, t=120, session_time=120, octets_in=30, octets_out=300),
           rec(STOP, nas_id=n, t=150, session_time=150, octets_in=40, octets_out=350)]
    apply(db, seq)
    first = db(all_deltas)
    assert [(d["seconds"], d["octets_in"], d["octets_out"]) for d in first] == [
        (60, 10, 100), (60, 20, 200), (30, 10, 50)]
    assert [d["final"] for d in first] == [False, False, True]
    assert all(d["subscriber_id"] == ids["alice"] for d in first)
    apply(db, seq)
    apply(db, list(reversed(seq)))
    assert db(all_deltas) == first


def test_unknown_login_is_recorded_without_usage(db: Any, ids: dict[str, int]) -> None:
    """A session of a login radbill does not know is stored, but produces no billable usage."""
    n = ids["nas1"]
    apply(db, [rec(STOP, nas_id=n, user="mallory", t=60, session_time=60, octets_in=1)])
    (row,) = db(all_sessions)
    assert row["subscriber_id"] is None and row["user_name"] == "mallory"
    assert db(all_deltas) == []


def test_accounting_on_closes_only_that_nas(db: Any, ids: dict[str, int]) -> None:
    """Accounting-On closes every open session of its NAS, not other NASes' or later ones."""
    n1, n2 = ids["nas1"], ids["nas2"]
    apply(db, [rec(START, nas_id=n1, sid="a", t=0), rec(START, nas_id=n1, sid="b", user="bob"),
               rec(START, nas_id=n2, sid="c", identity="10.0.0.2", t=0),
               rec(STOP, nas_id=n1, sid="d", t=10, session_time=5)])
    results = apply(db, [rec(AcctStatus.ON, nas_id=n1, t=100),
                         rec(START, nas_id=n1, sid="e", t=101)])
    assert results[0].closed == 2
    rows = {r["session_id"]: r for r in db(all_sessions)}
    assert rows["a"]["closed_by"] == "accounting-on" and rows["a"]["stopped_at"] is not None
    assert rows["a"]["terminate_cause"] == "NAS-Reboot" and rows["a"]["stale_deadline"] is None
    assert rows["b"]["closed_by"] == "accounting-on"
    assert rows["c"]["stopped_at"] is None
    assert rows["d"]["closed_by"] == "stop"
    assert rows["e"]["stopped_at"] is None
    results = apply(db, [rec(AcctStatus.OFF, nas_id=n1, t=200)])
    assert results[0].closed == 1
    assert {r["session_id"]: r["closed_by"] for r in db(all_sessions)}["e"] == "accounting-off"


def test_stale_sessions_closed_and_not_counted(db: Any, ids: dict[str, int]) -> None:
    """A silent session stops counting when overdue, is closed as stale, and revives on news."""
    n = ids["nas1"]
    sub = ids["alice"]
    apply(db, [rec(START, nas_id=n, t=0), rec(START, nas_id=n, sid="S2", t=100)])
    assert db(thd_count_live_sessions, sub, T0 + timedelta(seconds=150)) == 2
    # interim interval 60 (plan) x 3 = 180 s after last heard of
    assert db(thd_count_live_sessions, sub, T0 + timedelta(seconds=200)) == 1
    assert db(thd_close_stale, T0 + timedelta(seconds=200)) == 1
    row = db(session_row, rec(START, nas_id=n))
    assert (row["closed_by"], row["terminate_cause"]) == ("stale", "Stale-Session")
    assert row["stopped_at"] == T0
    assert db(thd_close_stale, T0 + timedelta(seconds=200)) == 0
    apply(db, [rec(INTERIM, nas_id=n, t=240, session_time=240, octets_in=5)])
    row = db(session_row, rec(START, nas_id=n))
    assert row["stopped_at"] is None and row["closed_by"] is None
    assert db(thd_count_live_sessions, sub, T0 + timedelta(seconds=250)) == 2
    apply(db, [rec(STOP, nas_id=n, t=300, session_time=300, terminate_cause="Idle-Timeout")])
    row = db(session_row, rec(START, nas_id=n))
    assert (row["closed_by"], row["terminate_cause"]) == ("stop", "Idle-Timeout")
    assert db(thd_count_live_sessions, sub, T0 + timedelta(seconds=270)) == 1


def test_stop_overrides_stale_close(db: Any, ids: dict[str, int]) -> None:
    """The NAS's real Stop, arriving after radbill closed the session as stale, wins."""
    n = ids["nas1"]
    apply(db, [rec(START, nas_id=n, t=0)])
    db(thd_close_stale, T0 + timedelta(seconds=1000))
    apply(db, [rec(STOP, nas_id=n, t=1200, session_time=1200, octets_in=9,
                   terminate_cause="Lost-Carrier")])
    row = db(session_row, rec(START, nas_id=n))
    assert row["stopped_at"] == T0 + timedelta(seconds=1200)
    assert (row["closed_by"], row["terminate_cause"]) == ("stop", "Lost-Carrier")


def call(status: AcctStatus, *, nas_id: int, call_id: str, leg: str, billable: bool,
         t: float, duration: int | None = None, user: str = "", caller: str = "4930123456",
         callee: str = "4940555000", connect: float | None = None) -> AcctRecord:
    r = rec(status, nas_id=nas_id, user=user, sid=f"{call_id}-{leg}", identity="::1", t=t,
            session_time=duration)
    facts = CallFacts(call_id=call_id, conf_id="CONF1", caller=caller, callee=callee, leg=leg,
                      billable=billable, setup_time=T0,
                      connect_time=T0 + timedelta(seconds=connect) if connect else None,
                      disconnect_time=T0 + timedelta(seconds=t) if status == STOP else None,
                      disconnect_cause="10" if status == STOP else None)
    from dataclasses import replace
    return replace(r, call=facts, unique_id=call_unique_id(nas_id, "::1", call_id))


def test_call_records_merge_legs_and_bill_once(db: Any, ids: dict[str, int]) -> None:
    """Both legs of a call make one CDR linked by caller number; only the billed leg makes usage."""
    n = ids["cube"]
    seq = [call(START, nas_id=n, call_id="c1", leg="answer", billable=False, t=0),
           call(START, nas_id=n, call_id="c1", leg="originate", billable=True, t=1),
           call(STOP, nas_id=n, call_id="c1", leg="answer", billable=False, t=95, duration=90,
                connect=5),
           call(STOP, nas_id=n, call_id="c1", leg="originate", billable=True, t=95,
                duration=88, connect=5)]
    apply(db, seq)
    apply(db, seq)  # retransmissions
    (row,) = db(all_calls)
    assert row["subscriber_id"] == ids["phone"]
    assert (row["caller"], row["callee"]) == ("4930123456", "4940555000")
    assert row["duration"] == 90 and row["stopped_at"] == T0 + timedelta(seconds=95)
    assert row["connect_time"] == T0 + timedelta(seconds=5)
    assert row["disconnect_cause"] == "10" and row["billable"]
    deltas = db(all_deltas)
    assert sum(d["seconds"] for d in deltas) == 90
    assert {d["source"] for d in deltas} == {"call"}
    assert deltas[-1]["destination"] == "4940555000" and deltas[-1]["final"]
