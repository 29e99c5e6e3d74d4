#!/usr/bin/env python3
"""Rating throughput: usage records rated and charged into the ledger, per second, end to end.

For each backend (SQLite in a temp dir; MariaDB in database ``bench_billing``,
dropped and re-created): migrate, create ``--subscribers`` subscribers on
two priced plans (per-minute time with a 60 s increment, traffic in/out per
MB, one with a night band), and ``--records`` usage deltas, ``--records /
--subscribers`` interim updates per session, interleaved by id the way a
busy NAS farm delivers them (so each batch touches thousands of accounts),
the last of each session final. Seeding is not timed.

Timed: the billing loop's charging pass (billing.charging.thd_charge_pending)
called until no unrated delta is left: select the batch, lock the accounts,
rate in Python, insert the ledger entries, move balances, update charging
sessions and hold the next slice, mark the deltas rated, commit. Then
``ledger check`` must pass and every delta must be rated. Also reported: CPU
per record of the charging processes and of the local mariadbd (which also
serves whatever else uses it at the time).

Usage:
    .venv/bin/python bench/rating_bench.py [--records 1000000] [--subscribers 100000]
        [--batch 5000] [--backends sqlite,mariadb] [--workers 1]
        [--mariadb-url mysql+pymysql://root@127.0.0.1:3306/bench_billing]
Results: a table on stdout and bench/results/rating-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sqlalchemy import String, cast, create_engine, insert, literal, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from billing.charging import thd_charge_pending  # noqa: E402
from billing.ledger import thd_check  # noqa: E402
from billing.models import BillingAccount, LedgerEntry  # noqa: E402
from billing.money import parse_price  # noqa: E402
from billing.tariff_store import thd_apply_spec  # noqa: E402
from billing.tariffs import Band, TariffSpec  # noqa: E402
from billing.usage import UsageDeltaRow  # noqa: E402
from core.db import schema  # noqa: E402
from core.db.engine import make_engine  # noqa: E402
from core.db.models import Plan, Subscriber  # noqa: E402
from core.db.pool import DBPool  # noqa: E402

CHUNK = 20_000


def fresh_mariadb(url: str) -> None:
    u = make_url(url)
    server = create_engine(u.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS `{u.database}`"))
        c.execute(text(f"CREATE DATABASE `{u.database}` CHARACTER SET utf8mb4"))
    server.dispose()


def seed(pool: DBPool, subscribers: int, records: int) -> None:
    per = max(1, records // subscribers)
    night = Band(name="night", days=frozenset(range(7)), start=22 * 60, end=6 * 60,
                 time_price=parse_price("0.005"))

    def plans(s: Any) -> list[int]:
        common = {"time_unit": 60, "time_increment": 60,
                  "price_per_mb_in": parse_price("0.0005"),
                  "price_per_mb_out": parse_price("0.001"), "credit_limit": 10_000}
        thd_apply_spec(s, TariffSpec("day", {"time_price": parse_price("0.02"), **common}),
                       create_plan=True)
        thd_apply_spec(s, TariffSpec("night", {"time_price": parse_price("0.02"), **common},
                                     bands=(night,)), create_plan=True)
        return [s.query(Plan).filter_by(name=n).one().id for n in ("day", "night")]

    plan_ids = pool.run_sync(plans)
    now = datetime.now(UTC)
    with pool.engine.begin() as c:
        for lo in range(0, subscribers, CHUNK):
            c.execute(insert(Subscriber), [
                {"login": f"b{i:07d}", "plan_id": plan_ids[i % 2], "status": "active",
                 "chap_enabled": False, "description": "", "created_at": now,
                 "updated_at": now} for i in range(lo, min(subscribers, lo + CHUNK))])
    with pool.engine.connect() as c:
        first = int(c.execute(text("SELECT MIN(id) FROM subscriber")).scalar() or 1)
    with pool.engine.begin() as c:
        for lo in range(0, subscribers, CHUNK):
            c.execute(insert(BillingAccount), [
                {"subscriber_id": first + i, "currency": "USD", "balance": 5_000,
                 "status": "active", "status_reason": "", "created_at": now,
                 "updated_at": now} for i in range(lo, min(subscribers, lo + CHUNK))])
        c.execute(insert(LedgerEntry).from_select(
            ["account_id", "kind", "amount", "idempotency_key", "description", "created_at"],
            select(BillingAccount.id, literal("payment"), BillingAccount.balance,
                   literal("seed:", String(8)) + cast(BillingAccount.id, String(20)),
                   literal("seed"), literal(now, type_=LedgerEntry.created_at.type))))
    start = now - timedelta(hours=per)
    rows: list[dict[str, Any]] = []
    n = 0
    with pool.engine.begin() as c:
        for j in range(per):
            end = start + timedelta(seconds=300 * (j + 1))
            for i in range(subscribers):
                n += 1
                rows.append({
                    "idempotency_key": f"b{n}", "subscriber_id": first + i,
                    "source": "session", "source_id": f"s{i}", "seconds": 300,
                    "octets_in": (i * 7919 + j * 104729) % 50_000_000,
                    "octets_out": (i * 15485863 + j) % 400_000_000 + 2**32 * (i % 3 == 0),
                    "destination": None, "caller": None, "total_seconds": 300 * (j + 1),
                    "final": j == per - 1, "period_start": end - timedelta(seconds=300),
                    "period_end": end, "created_at": now, "rated": False})
                if len(rows) >= CHUNK:
                    c.execute(insert(UsageDeltaRow), rows)
                    rows = []
        if rows:
            c.execute(insert(UsageDeltaRow), rows)


def server_cpu_seconds() -> float | None:
    """CPU time the local mariadbd has used so far (all its threads); None if not local."""
    try:
        pid = subprocess.run(["pidof", "mariadbd"], capture_output=True, text=True,
                             check=False).stdout.split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (IndexError, OSError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def charge_all(url: str, batch: int, name: str) -> tuple[int, int, int, float]:
    """The loop's charging step until nothing is left: (rated, charged minor, entries, CPU s)."""
    engine = make_engine(url, pool_size=2)
    pool = DBPool(engine)
    rated = charged = entries = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    while True:
        r = pool.run_sync(thd_charge_pending, "USD", 300, 50_000_000, batch)
        if not r.rated:
            break
        rated += r.rated
        charged += r.charged
        entries += r.entries
        if rated % (batch * 40) == 0:
            el = time.perf_counter() - t0
            print(f"[{name}]   {rated:,} rated, {rated / el:,.0f}/s", flush=True)
    engine.dispose()
    return rated, charged, entries, time.process_time() - cpu0


def run_backend(name: str, url: str, records: int, subscribers: int, batch: int,
                workers: int = 1) -> dict[str, Any]:
    engine = make_engine(url, pool_size=2)
    schema.upgrade(engine)
    pool = DBPool(engine)
    t0 = time.perf_counter()
    seed(pool, subscribers, records)
    seeded = time.perf_counter() - t0
    print(f"[{name}] seeded {records:,} deltas for {subscribers:,} subscribers in "
          f"{seeded:.1f} s; charging...", flush=True)
    engine.dispose()  # nothing of the parent's pool may cross a fork
    workers = 1 if name == "sqlite" else max(1, workers)
    load_before = os.getloadavg()[0]
    server0 = server_cpu_seconds() if name == "mariadb" else None
    t0 = time.perf_counter()
    if workers == 1:
        rated, charged, entries, cpu = charge_all(url, batch, name)
    else:
        # Concurrent passes (as when `radbill billing run` runs beside the service):
        # SKIP LOCKED hands each its own deltas; accounts are locked in id order.
        with multiprocessing.get_context("fork").Pool(workers) as procs:
            parts = procs.starmap(charge_all, [(url, batch, f"{name}/{i}")
                                               for i in range(workers)])
        rated, charged, entries, cpu = (sum(p[k] for p in parts) for k in range(4))
    elapsed = time.perf_counter() - t0
    server1 = server_cpu_seconds() if server0 is not None else None
    check = pool.run_sync(thd_check)
    with engine.connect() as c:
        left = int(c.execute(text("SELECT COUNT(*) FROM usage_delta WHERE rated = 0")).scalar()
                   or 0)
    engine.dispose()
    result = {"backend": name, "records": rated, "subscribers": subscribers, "batch": batch,
              "workers": workers,
              "seconds": round(elapsed, 2), "records_per_second": round(rated / elapsed),
              "ledger_entries": entries, "charged_minor": charged, "unrated_left": left,
              "ledger_check_ok": not check.mismatches, "accounts_checked": check.accounts,
              # CPU per record: the charging processes (Python + PyMySQL) and the whole
              # mariadbd (which also serves anything else using it at the time)
              "python_cpu_us_per_record": round(cpu / max(rated, 1) * 1e6, 1),
              "mariadbd_cpu_us_per_record": None if server0 is None or server1 is None
              else round((server1 - server0) / max(rated, 1) * 1e6, 1),
              # others' work on the same 2 cores skews the rate: say how busy it was
              "loadavg_1min_before_after": [round(load_before, 2),
                                            round(os.getloadavg()[0], 2)]}
    print(f"[{name}] {rated:,} records in {elapsed:.1f} s = {rated / elapsed:,.0f} records/s; "
          f"CPU per record: charging {result['python_cpu_us_per_record']} µs, mariadbd "
          f"{result['mariadbd_cpu_us_per_record']} µs; "
          f"{entries:,} ledger entries; ledger check "
          f"{'ok' if not check.mismatches else 'FAILED'}", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--backends", default="sqlite,mariadb")
    ap.add_argument("--workers", type=int, default=1,
                    help="concurrent charging passes on MariaDB (SQLite: always 1)")
    ap.add_argument("--mariadb-url",
                    default="mysql+pymysql://root@127.0.0.1:3306/bench_billing")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rating-bench-") as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
            elif backend == "mariadb":
                fresh_mariadb(args.mariadb_url)
                url = args.mariadb_url
            else:
                ap.error(f"unknown backend {backend!r}")
            results.append(run_backend(backend, url, args.records, args.subscribers,
                                       args.batch, args.workers))
    print()
    print(f"{'backend':<10}{'workers':>8}{'records':>12}{'seconds':>10}{'records/s':>12}"
          "  ledger check")
    for r in results:
        print(f"{r['backend']:<10}{r['workers']:>8}{r['records']:>12,}{r['seconds']:>10}"
              f"{r['records_per_second']:>12,}  {'ok' if r['ledger_check_ok'] else 'FAILED'}")
    out = BENCH / "results" / f"rating-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                               "python": platform.python_version(),
                               "command": " ".join(sys.argv), "results": results}, indent=2))
    print(f"results: {out}")
    return 0 if all(r["ledger_check_ok"] and not r["unrated_left"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
