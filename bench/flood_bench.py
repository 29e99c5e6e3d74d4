#!/usr/bin/env python3
"""Valid PAP logins while a flood of wrong passwords runs (issue 12 point 2), one run.

1. ``--users`` subscribers log in once (verifiers stored), ``--flood-users`` more have a
   production-cost argon2 hash;
2. baseline: the valid subscribers at ``--rate`` logins/s (open loop) for ``--duration`` s;
3. the same valid load while ``--flood-rate`` wrong passwords/s arrive for the flood
   subscribers (every one a fresh argon2 check if radbill ran them all);
4. printed: valid p50/p99/lost with and without the flood, how many flood requests got an
   answer (the rest were shed: no reply), and radbill's CPU share.

Usage: .venv/bin/python bench/flood_bench.py [--flood-rate 1000] [--duration 5]
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
from pap_cold_bench import load, server, show  # noqa: E402

PYTHON = sys.executable


def loadgen(port: int, **kw: Any) -> subprocess.Popen[str]:
    argv = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(port)]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--flood-users", type=int, default=3000)
    p.add_argument("--rate", type=float, default=100.0, help="valid logins/s")
    p.add_argument("--flood-rate", type=float, default=1000.0, help="wrong passwords/s")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--cpus", default="0", help="taskset CPU list for radbill")
    p.add_argument("--gen-cpu", type=int, default=1, help="CPU of the load generators")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="flood-"))
    data_dir = work / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'radbill.sqlite'}"
    auth_radbill.populate(url, auth_radbill.bench_hashes(a.users),
                          auth_radbill.production_hash(), a.flood_users)
    port, acct = auth_bench.free_udp_port(), auth_bench.free_udp_port()
    cfg = auth_radbill.write_config(data_dir / "radbill.toml", data_dir, url, port, acct)
    valid = {"rate": a.rate, "duration": a.duration, "count": int(a.rate * a.duration) + 1,
             "users": a.users, "timeout": 3.0, "pin": a.gen_cpu}
    results: dict[str, Any] = {"machine": auth_bench.machine_facts(), "args": vars(a) | {
        "out": str(a.out)}}
    with auth_bench.running(server("flood", cfg, port, data_dir, a.cpus)) as srv:
        first = load(srv, window=32, count=a.users, users=a.users, timeout=30, duration=300)
        show("first pass (verifiers)", first)
        base = load(srv, **valid)
        show("valid alone", base)
        cpu0 = srv.cpu_seconds()
        flood = loadgen(port, prefix=auth_radbill.COLD_PREFIX, users=a.flood_users,
                        password="wrong-guess", rate=a.flood_rate, duration=a.duration,
                        count=int(a.flood_rate * a.duration) + 1, timeout=3.0,
                        pin=a.gen_cpu)
        time.sleep(0.3)
        during = load(srv, **valid)
        out, err = flood.communicate(timeout=600)
        flood_r = json.loads(out) if flood.returncode == 0 else {"error": err}
        cpu = srv.cpu_seconds() - cpu0
        show("valid during the flood", during)
        print(f"  flood: sent {flood_r.get('sent')}, answered {flood_r.get('completed')} "
              f"(rejects), {flood_r.get('lost')} shed or late; radbill CPU over the flood "
              f"{cpu:.1f} s", flush=True)
    results.update(first_pass=first, valid_alone=base, valid_during_flood=during,
                   flood=flood_r, server_cpu_during_s=round(cpu, 2))
    out_path = a.out or BENCH / "results" / f"flood-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out_path.write_text(json.dumps(results, indent=2))
    print(f"results: {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
