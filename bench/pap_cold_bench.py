#!/usr/bin/env python3
"""PAP logins after a restart (cold) against the same logins again (warm), in one run.

Issue 12 point 1: after `radbill serve` restarts, every subscriber's first PAP login used
to pay a full argon2id check. With the PAP verifiers (aaa/verifier.py, the pap_verifier
table) it pays one HMAC and a share of one batched SELECT instead.

What the bench does, all on one machine, in one run:

1. a database with ``--users`` subscribers (low-cost argon2 hashes, as bench/auth_bench.py
   does, so that step 2 takes seconds; the verifier path never calls argon2, whatever the
   cost), and ``--cold-users`` subscribers with a production-cost hash;
2. a first `radbill serve` logs every subscriber in once (this is what writes the
   verifiers, exactly as in production) and is stopped with SIGTERM;
3. a second `radbill serve` starts: its caches are empty. All ``--users`` subscribers
   reconnect at once (``--window`` requests in flight, replies later than ``--timeout``
   count as lost: a NAS's retry timer): the cold pass;
4. the same logins again on the same process: the warm pass;
5. for contrast, ``--cold-users`` production-cost subscribers with no verifier yet: what
   every cold login cost before.

Printed: logins/s, p50/p99, lost, server CPU per login, and the cold/warm ratio (target
>= 0.5). JSON in bench/results/pap-cold-<time>.json.

Usage: .venv/bin/python bench/pap_cold_bench.py [--users 10000] [--mariadb-url URL]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import auth_bench  # noqa: E402
import auth_radbill  # noqa: E402

PYTHON = sys.executable


def load(server: auth_bench.Server, **kw: Any) -> dict[str, Any]:
    argv = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(server.port)]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    cpu0 = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    used = server.cpu_seconds() - cpu0
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr.strip()}")
    result: dict[str, Any] = json.loads(out.stdout)
    done = result["completed"] or 1
    result["server_cpu_us_per_login"] = round(1e6 * used / done, 1)
    return result


def show(what: str, r: dict[str, Any]) -> None:
    lat = r.get("latency_ms", {})
    print(f"  {what:34} {r['rate']:>8.1f}/s  p50 {lat.get('p50', 0):8.2f} ms  p99 "
          f"{lat.get('p99', 0):8.2f} ms  accepted {r['accepted']}/{r['sent']}  lost {r['lost']}"
          f"  {r['duration_s']:.1f} s  server {r['server_cpu_us_per_login']} us/login",
          flush=True)


def server(name: str, cfg: Path, port: int, data_dir: Path, cpus: str) -> auth_bench.Server:
    return auth_bench.Server(name, [str(Path(PYTHON).parent / "radbill"), "serve", "--config",
                                    str(cfg)], port, data_dir / f"{name}.log", cpus)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--cold-users", type=int, default=20)
    p.add_argument("--window", type=int, default=256, help="requests in flight (the NAS burst)")
    p.add_argument("--timeout", type=float, default=3.0, help="the NAS's retry timer, seconds")
    p.add_argument("--mariadb-url", default="", help="test_bench* database (default SQLite)")
    p.add_argument("--cpus", default="0", help="taskset CPU list for radbill")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pap-cold-"))
    data_dir = work / "data"
    data_dir.mkdir()
    url = a.mariadb_url or f"sqlite:///{data_dir / 'radbill.sqlite'}"
    if url.startswith("mysql"):
        auth_radbill.reset_mariadb(url)
    t0 = time.perf_counter()
    auth_radbill.populate(url, auth_radbill.bench_hashes(a.users),
                          auth_radbill.production_hash(), a.cold_users)
    print(f"setup: {a.users} subscribers in {time.perf_counter() - t0:.1f} s "
          f"({url.split('@')[-1]})")
    port, acct = auth_bench.free_udp_port(), auth_bench.free_udp_port()
    cfg = auth_radbill.write_config(data_dir / "radbill.toml", data_dir, url, port, acct)
    results: dict[str, Any] = {"machine": auth_bench.machine_facts(), "users": a.users,
                               "window": a.window, "timeout_s": a.timeout,
                               "database": url.split("@")[-1]}
    pass_args = {"window": a.window, "count": a.users, "users": a.users, "timeout": a.timeout,
                 "duration": 300}
    with auth_bench.running(server("first-life", cfg, port, data_dir, a.cpus)) as first:
        r = load(first, **{**pass_args, "window": 32, "timeout": 30})
        show("first life (writes the verifiers)", r)
        results["first_life"] = r
    with auth_bench.running(server("restarted", cfg, port, data_dir, a.cpus)) as srv:
        # wait_ready logged bench00000 in: the cold pass starts at the next subscriber.
        cold = load(srv, **{**pass_args, "first_user": 1, "users": a.users - 1,
                               "count": a.users - 1})
        show("cold: all reconnect after restart", cold)
        warm = load(srv, **pass_args)
        show("warm: the same logins again", warm)
        argon = load(srv, prefix=auth_radbill.COLD_PREFIX, users=a.cold_users,
                     password=auth_radbill.COLD_PASSWORD, count=a.cold_users, window=8,
                     timeout=60, duration=120)
        show("no verifier yet (production argon2)", argon)
    ratio = cold["rate"] / warm["rate"] if warm["rate"] else 0.0
    results.update(cold=cold, warm=warm, production_argon2=argon,
                   cold_over_warm=round(ratio, 3),
                   all_accepted_in_window=cold["accepted"] == a.users - 1 and cold["lost"] == 0)
    print(f"cold/warm = {ratio:.2f} (target >= 0.5); all {a.users - 1} cold logins accepted "
          f"within {a.timeout:g} s each: {results['all_accepted_in_window']}; "
          f"{a.users - 1} reconnects took {cold['duration_s']:.1f} s")
    out = a.out or BENCH / "results" / f"pap-cold-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
