"""Statements for N accounts in one billing pass, and the prepaid-card activation rate.

    .venv/bin/python bench/money_bench.py --url mysql+pymysql://root@127.0.0.1:3306/bench_money \
        --accounts 100000 --entries 4 --cards 2000

Seeds N subscribers with accounts and ``--entries`` ledger entries each in
last month (bulk Core inserts: seeding is not what is measured), then times
the billing loop's statement step exactly as a pass runs it (batches of
``[statements] batch`` accounts, one transaction each, until every account
has its statement), with the process's and mariadbd's CPU from /proc. Then
activates ``--cards`` cards one transaction each (the operator/API path) and
reports activations per second. The database is emptied and migrated first:
give it a database of its own. Results go to bench/results/money-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text
from sqlalchemy.orm import sessionmaker

from billing.cards import thd_activate, thd_create_batch
from billing.models import BillingAccount, LedgerEntry
from billing.statements import StatementSettings, month_bounds, thd_issue_statements
from core.db import schema
from core.db.engine import make_engine
from core.db.models import Subscriber
from core.db.pool import run_in_session


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def mariadb_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.split() else None


def reset(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        if engine.dialect.name == "mysql":
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for (name,) in conn.execute(text("SHOW TABLES")).all():
                conn.execute(text(f"DROP TABLE `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    schema.upgrade(engine)


def seed(engine, accounts: int, entries: int, start: datetime) -> None:  # type: ignore[no-untyped-def]
    chunk = 5000
    created = start - timedelta(days=40)
    with engine.begin() as conn:
        for base in range(0, accounts, chunk):
            n = min(chunk, accounts - base)
            conn.execute(insert(Subscriber), [
                {"id": base + i + 1, "login": f"b{base + i:07d}", "status": "active",
                 "description": "", "chap_enabled": False, "created_at": created,
                 "updated_at": created} for i in range(n)])
            conn.execute(insert(BillingAccount), [
                {"id": base + i + 1, "subscriber_id": base + i + 1, "currency": "USD",
                 "balance": 0, "status": "active", "status_reason": "",
                 "created_at": created, "updated_at": created} for i in range(n)])
            rows = []
            for i in range(n):
                aid = base + i + 1
                for k in range(entries):
                    kind, amount, desc = ((("payment", 1000, "payment"),
                                           ("charge", -123, "session +60s in 0 out 0"),
                                           ("charge", -45, "call 4930 +30s @49"),
                                           ("fee", -500, "monthly fee"))[k % 4])
                    rows.append({"account_id": aid, "kind": kind, "amount": amount,
                                 "idempotency_key": f"b:{aid}:{k}", "description": desc,
                                 "created_at": start + timedelta(hours=1 + k)})
            conn.execute(insert(LedgerEntry), rows)
        conn.execute(text("UPDATE billing_account SET balance = (SELECT COALESCE(SUM(amount), "
                          "0) FROM ledger_entry WHERE account_id = billing_account.id)"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--entries", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--cards", type=int, default=2000)
    args = ap.parse_args()
    engine = make_engine(args.url, pool_size=4)
    reset(engine)
    settings = StatementSettings(zone=ZoneInfo("UTC"), delay=timedelta(hours=1),
                                 batch=args.batch, issuer="bench", number_format="B{number}",
                                 vat_rate=__import__("decimal").Decimal("20"), due_days=14)
    period = "2024-04"
    start, end = month_bounds(period, settings.zone)
    t0 = time.perf_counter()
    seed(engine, args.accounts, args.entries, start)
    seeded = time.perf_counter() - t0
    factory = sessionmaker(engine, expire_on_commit=False)
    me, db = os.getpid(), mariadb_pid()
    cpu0, db0 = cpu_seconds(me), cpu_seconds(db) if db else 0.0
    t0 = time.perf_counter()
    cursor = statements = batches = 0
    while True:
        r = run_in_session(factory, thd_issue_statements, settings, period, cursor,
                           end + timedelta(hours=2))
        statements += r.statements
        cursor = r.last_account_id
        batches += 1
        if r.done:
            break
    wall = time.perf_counter() - t0
    cpu, dbcpu = cpu_seconds(me) - cpu0, (cpu_seconds(db) - db0) if db else None
    created = run_in_session(factory, thd_create_batch, "BENCH", args.cards, 500, "USD")
    cards = [(c.serial, c.pin) for c in created.cards]
    cpu1 = cpu_seconds(me)
    t1 = time.perf_counter()
    for i, (serial, pin) in enumerate(cards):
        run_in_session(factory, thd_activate, serial, pin, f"b{i % args.accounts:07d}", "USD")
    card_wall = time.perf_counter() - t1
    card_cpu = cpu_seconds(me) - cpu1
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "url": engine.url.render_as_string(
            hide_password=True), "accounts": args.accounts, "entries_per_account": args.entries,
        "batch": args.batch, "seed_seconds": round(seeded, 1),
        "statements": statements, "batches": batches, "statement_seconds": round(wall, 2),
        "statements_per_second": round(statements / wall), "client_cpu_seconds": round(cpu, 2),
        "mariadbd_cpu_seconds": None if dbcpu is None else round(dbcpu, 2),
        "cpu_ms_per_statement": round(1000 * (cpu + (dbcpu or 0)) / max(statements, 1), 3),
        "cards": len(cards), "card_seconds": round(card_wall, 2),
        "activations_per_second": round(len(cards) / card_wall, 1),
        "cpu_ms_per_activation": round(1000 * card_cpu / max(len(cards), 1), 2),
        "load_average": os.getloadavg()[0],
    }
    out = Path(__file__).parent / "results" / (
        "money-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
