"""Where the accounting DB thread's CPU goes: thd_apply_records on MariaDB, by phase.

One process, no RADIUS, no reactor: 2,048 sessions are started, then three
rounds of Interim-Updates for all of them are applied in group commits of
256 records (what bench/acct_bench.py's load produces), and the CPU time of
this process (time.process_time; MariaDB's own CPU is not counted) is split
by phase with wrappers around the store's steps.

    .venv/bin/python -m bench.acct.db_phases [--mysql mysql+pymysql://root@127.0.0.1:3306]

It drops and re-creates the database test_bench_acct_phases.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

BATCH = 256
BATCHES = 8
ROUNDS = 3
DATABASE = "test_bench_acct_phases"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    args = p.parse_args()
    from sqlalchemy.orm import Session

    import accounting.rawsql as rawsql
    import accounting.store as store
    from accounting.records import AcctRecord, session_unique_id
    from bench.acct_bench import mysql_exec, prepare_radbill
    from billing.usage import thd_record_usage
    from core.db.engine import make_engine

    mysql_exec(args.mysql, f"DROP DATABASE IF EXISTS {DATABASE}")
    mysql_exec(args.mysql, f"CREATE DATABASE {DATABASE}")
    url = f"{args.mysql.rstrip('/')}/{DATABASE}"
    prepare_radbill(url, 1000)
    engine = make_engine(url)
    policy = store.AcctPolicy()
    t0 = datetime.now(UTC)

    def record(k: int, i: int) -> AcctRecord:
        user = f"user{k % 1000}"
        at = t0 + timedelta(seconds=60 * i)
        return AcctRecord(
            status=1 if i == 0 else 3, nas_id=1, nas_identity="10.0.0.1", received_at=at,
            event_at=at, user_name=user, session_id=f"s{k}",
            unique_id=session_unique_id(1, "10.0.0.1", f"s{k}", user),
            session_time=60 * i if i else None, input_octets=1_000_003 * i if i else None,
            output_octets=3_000_009 * i if i else None, input_packets=i or None,
            output_packets=i or None, gigawords=bool(i), framed_ip="100.64.0.1",
            calling_station_id="02:00:00:00:00:01", nas_port=k, nas_port_type="Ethernet")

    spent: dict[str, float] = {}

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            started = time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - started
        return run

    def batches(i: int) -> list[list[AcctRecord]]:
        return [[record(b * BATCH + j, i) for j in range(BATCH)] for b in range(BATCHES)]

    def apply(prepared: list[list[AcctRecord]], sink: Any) -> None:
        for records in prepared:
            with Session(engine) as s, s.begin():
                store.thd_apply_records(s, records, policy, sink)

    apply(batches(0), thd_record_usage)  # the Starts
    rounds = [batches(i) for i in range(1, ROUNDS + 1)]
    rawsql.lock_rows = timed("lock rows: SELECT ... FOR UPDATE, 33 columns",  # type: ignore[assignment]
                             rawsql.lock_rows)
    rawsql.upsert = timed("write rows: one multi-row upsert", rawsql.upsert)  # type: ignore[assignment]
    rawsql.subscribers_by_login = timed(  # type: ignore[assignment]
        "subscriber lookup", rawsql.subscribers_by_login)
    sink = timed("usage deltas (billing.usage.thd_record_usage)", thd_record_usage)
    started = time.process_time()
    for prepared in rounds:
        apply(prepared, sink)
    total = time.process_time() - started
    n = ROUNDS * BATCHES * BATCH
    parts = sum(spent.values())
    for label, seconds in spent.items():
        print(f"{label:52} {seconds / n * 1e6:7.1f} us/record")
    print(f"{'the rest: merge rules, deltas, session, commit':52} {(total - parts) / n * 1e6:7.1f} "
          f"us/record")
    print(f"{'total (this process only)':52} {total / n * 1e6:7.1f} us/record")
    engine.dispose()
    mysql_exec(args.mysql, f"DROP DATABASE IF EXISTS {DATABASE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
