"""Memory of radbill's processes with 100k subscribers, 50k live sessions, 100k leased addresses.

Issue 15, point 8: RSS under 300 MB per worker. One run: migrate a bench
database (MariaDB ``test_bench_mem`` by default, dropped and re-created; only
``test_bench*`` names are accepted), insert the subscribers (one shared cheap
argon2 hash), a pool of 131,070 IPv4 addresses with 100k of them leased, and
50k live sessions (through accounting's own ``thd_apply_records``, as
Accounting-Start packets would create them); start ``radbill serve --workers
N``; log every subscriber in once (bench/loadgen.py, PAP, so each worker's
credential cache and verified-password cache fill with what reaches it), then
a second pass; print RSS and PSS (shared pages counted once) of the parent and
every worker after each step, and write the figures to bench/results/.

    .venv/bin/python bench/memory_bench.py --workers 2
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import auth_radbill  # noqa: E402
import loadgen  # noqa: E402
from auth_bench import free_udp_port  # noqa: E402

PYTHON = sys.executable
PASSWORD = "mem-bench-pw"


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MB of one process (smaps_rollup)."""
    out = {"rss_mb": 0.0, "pss_mb": 0.0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower() + "_mb"] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def tree(pid: int) -> dict[str, Any]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    procs = {"parent": memory(pid)} | {f"worker-{i}": memory(c) for i, c in enumerate(children)}
    workers = [procs[k] for k in procs if k.startswith("worker")] or [procs["parent"]]
    return {"processes": procs,
            "total_rss_mb": round(sum(p["rss_mb"] for p in procs.values()), 1),
            "total_pss_mb": round(sum(p["pss_mb"] for p in procs.values()), 1),
            "max_worker_rss_mb": max(p["rss_mb"] for p in workers)}


def populate(url: str, subscribers: int, sessions: int, leased: int) -> dict[str, float]:
    from sqlalchemy import insert, text, update
    from sqlalchemy.orm import sessionmaker

    from accounting.records import AcctRecord, AcctStatus, session_unique_id
    from accounting.store import AcctPolicy, thd_apply_records
    from core.db import schema
    from core.db.engine import make_engine
    from core.db.models import Nas, Plan, Subscriber, SubscriberStatus, Vendor
    from core.db.pool import run_in_session
    from pools.manage import NewPool, thd_add_pool
    from pools.models import ItemState, PoolItem, PoolKind

    timings: dict[str, float] = {}
    engine = make_engine(url, pool_size=2)
    factory = sessionmaker(engine, expire_on_commit=False)
    t0 = time.perf_counter()
    schema.upgrade(engine)
    hashed = auth_radbill.BENCH_HASHER.hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(insert(Nas), [{"name": "bench-nas", "address": "127.0.0.1",
                                    "secret": auth_radbill.SECRET, "vendor": Vendor.MIKROTIK,
                                    "require_message_authenticator": True}])
        conn.execute(insert(Plan), [{"name": "home", "rate_limit": "10M/10M",
                                     "interim_interval": 300, "framed_protocol": "PPP",
                                     "extra_reply": []}])
        plan_id = conn.execute(text("SELECT id FROM plan WHERE name = 'home'")).scalar_one()
        rows = [{"login": loadgen.login_for("bench", i), "password_hash": hashed,
                 "plan_id": plan_id, "status": SubscriberStatus.ACTIVE}
                for i in range(subscribers)]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Subscriber), rows[start:start + 5000])
    timings["subscribers_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    run_in_session(factory, thd_add_pool, NewPool("lan", PoolKind.IPV4,
                                                  ranges=("100.64.0.0/15",)))
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM pool_item ORDER BY id LIMIT :n"),
                                          {"n": leased})]
        until = datetime.now(UTC) + timedelta(days=1)
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            conn.execute(update(PoolItem).where(PoolItem.id.in_(chunk)).values(
                state=ItemState.LEASED, expires_at=until,
                holder=text("CONCAT('bench', LPAD(id, 5, '0'))")))
    timings["pool_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    policy = AcctPolicy()
    for start in range(0, sessions, 2000):
        records = []
        for i in range(start, min(sessions, start + 2000)):
            login = loadgen.login_for("bench", i)
            sid = f"mem-{i}"
            records.append(AcctRecord(status=AcctStatus.START, nas_id=1,
                                      nas_identity="127.0.0.1", received_at=now, event_at=now,
                                      user_name=login, session_id=sid,
                                      unique_id=session_unique_id(1, "127.0.0.1", sid, login),
                                      framed_ip=f"100.64.{i // 250}.{i % 250 + 1}"))
        run_in_session(factory, thd_apply_records, records, policy, None)
    timings["sessions_s"] = round(time.perf_counter() - t0, 1)
    engine.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--sessions", type=int, default=50_000)
    p.add_argument("--leased", type=int, default=100_000)
    p.add_argument("--mariadb-url", default="mysql+pymysql://root@127.0.0.1:3306/test_bench_mem")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    started = time.time()
    url = a.mariadb_url
    auth_radbill.reset_mariadb(url)
    result: dict[str, Any] = {"command": " ".join(["python", "bench/memory_bench.py",
                                                   *(argv or sys.argv[1:])]),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "settings": vars(a) | {"out": str(a.out)}}
    result["setup"] = populate(url, a.subscribers, a.sessions, a.leased)
    print("populated:", result["setup"], flush=True)
    work = Path(tempfile.mkdtemp(prefix="radbill-mem-bench-"))
    port, acct = free_udp_port(), free_udp_port()
    cfg = auth_radbill.write_config(work / "radbill.toml", work, url, port, acct,
                                    credential_cache_ttl=3600.0, workers=a.workers)
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([str(Path(PYTHON).parent / "radbill"), "serve", "--config",
                             str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while loadgen.run("127.0.0.1", port, auth_radbill.SECRET.encode(), window=1, count=1,
                          duration=1, timeout=0.5, users=1, password=PASSWORD).accepted != 1:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("radbill did not start: " + (work / "serve.log").read_text())
            time.sleep(0.3)
        time.sleep(2)
        result["idle"] = tree(proc.pid)
        print("idle:", result["idle"], flush=True)
        for name in ("first_pass", "second_pass"):
            r = loadgen.run("127.0.0.1", port, auth_radbill.SECRET.encode(), window=64,
                            count=a.subscribers, duration=300, timeout=10,
                            users=a.subscribers, password=PASSWORD)
            result[name] = {"accepted": r.accepted, "rate": r.rate, **tree(proc.pid)}
            print(f"{name}:", result[name], flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    result["elapsed_s"] = round(time.time() - started, 1)
    out = a.out or BENCH / "results" / time.strftime("memory-%Y%m%dT%H%M%SZ.json",
                                                     time.gmtime(started))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("results in", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
