#!/usr/bin/env python3
"""The HTTP API under load, beside RADIUS in the same process: one run, one table.

``radbill serve`` (RADIUS and [web] in one reactor, one DB pool) runs pinned to
one CPU (``--server-cpu``) on MariaDB (database test_bench_api, dropped and
re-created) with ``--subscribers`` subscribers (100,000 by default; the first
``--radius-users`` of them carry low-cost argon2 hashes RADIUS logs in with, see
bench/auth_radbill.py). The generators (bench/loadgen.py for RADIUS, an asyncio
HTTP/1.1 keep-alive client here) run on the other CPU (``--gen-cpu``).

Phases, each ``--duration`` seconds:

1. RADIUS peak (closed loop), then RADIUS alone at half that peak (open loop): the
   baseline RADIUS p99;
2. ``GET /api/v1/subscribers/{login}`` (random logins) alone, then
   ``POST /api/v1/payments`` (each with its own Idempotency-Key) alone;
3. RADIUS at half peak *while* the API reads run, then while the payments run:
   how far RADIUS p99 moves, and what the API still does.

Server CPU per request comes from /proc (server + mariadbd). Results: a table on
stdout and bench/results/api-<time>.json.

Usage: .venv/bin/python bench/api_bench.py [--duration 8] [--subscribers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import auth_radbill  # noqa: E402
from auth_bench import process_cpu_seconds  # noqa: E402
from loadgen import login_for, percentile  # noqa: E402

PYTHON = sys.executable
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test_bench_api"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mariadbd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-o", "-x", "mariadbd"], capture_output=True, text=True,
                         check=False)
    return int(out.stdout.split()[0]) if out.stdout.strip() else None


def populate(url: str, subscribers: int, radius_users: int) -> str:
    """Schema, NAS, plan, the RADIUS users (hashed), the rest (one shared hash); a token."""
    from sqlalchemy import insert, text

    from core.db.engine import make_engine
    from core.db.models import Subscriber, SubscriberStatus
    from webadmin.roles import cli_caller
    from webadmin.service import tokens

    auth_radbill.reset_mariadb(url)
    hashes = auth_radbill.bench_hashes(radius_users)
    auth_radbill.populate(url, hashes, auth_radbill.production_hash(), 0)
    engine = make_engine(url, pool_size=2)
    try:
        with engine.begin() as conn:
            plan_id = conn.execute(text("SELECT id FROM plan")).scalar_one()
            shared = hashes[0]
            rows = [{"login": login_for("bench", i), "password_hash": shared, "plan_id": plan_id,
                     "status": SubscriberStatus.ACTIVE} for i in range(radius_users, subscribers)]
            for start in range(0, len(rows), 5000):
                conn.execute(insert(Subscriber), rows[start:start + 5000])
        from sqlalchemy.orm import Session

        with Session(engine) as s, s.begin():
            return tokens.thd_add_token(s, cli_caller("bench"), "bench", "admin").token
    finally:
        engine.dispose()


CONFIG_WEB = """
[web]
enabled = true
listen = "127.0.0.1"
port = {port}
"""


class HttpLoad:
    """``connections`` keep-alive HTTP/1.1 clients in one asyncio loop, closed loop."""

    def __init__(self, port: int, token: str, connections: int) -> None:
        self.port, self.token, self.connections = port, token, connections

    async def _client(self, make: Any, until: float, lat: list[float], codes: dict[int, int]
                      ) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while time.perf_counter() < until:
                data = make()
                t0 = time.perf_counter()
                writer.write(data)
                line = await reader.readline()
                code = int(line.split()[1])
                length = 0
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b""):
                        break
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                await reader.readexactly(length)
                lat.append(time.perf_counter() - t0)
                codes[code] = codes.get(code, 0) + 1
        finally:
            writer.close()

    def run(self, make: Any, duration: float) -> dict[str, Any]:
        lat: list[float] = []
        codes: dict[int, int] = {}

        async def main() -> None:
            until = time.perf_counter() + duration
            await asyncio.gather(*(self._client(make, until, lat, codes)
                                   for _ in range(self.connections)))

        t0 = time.perf_counter()
        asyncio.run(main())
        took = time.perf_counter() - t0
        lat.sort()
        return {"requests": len(lat), "rate": round(len(lat) / took, 1), "codes": codes,
                "latency_ms": {"p50": round(1000 * percentile(lat, 50), 2),
                               "p99": round(1000 * percentile(lat, 99), 2),
                               "max": round(1000 * lat[-1], 2) if lat else 0}}


def get_subscriber(token: str, subscribers: int) -> Any:
    head = f"Authorization: Bearer {token}\r\nHost: 127.0.0.1\r\n"

    def make() -> bytes:
        login = login_for("bench", random.randrange(subscribers))
        return f"GET /api/v1/subscribers/{login} HTTP/1.1\r\n{head}\r\n".encode()

    return make


def post_payment(token: str, subscribers: int) -> Any:
    head = (f"Authorization: Bearer {token}\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n")
    counter = iter(range(10**9))
    run = random.randrange(10**9)

    def make() -> bytes:
        n = next(counter)
        body = json.dumps({"login": login_for("bench", random.randrange(subscribers)),
                           "amount": "1.00"}).encode()
        return (f"POST /api/v1/payments HTTP/1.1\r\n{head}Idempotency-Key: b{run}-{n}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    return make


class Run:
    def __init__(self, args: argparse.Namespace, pid: int, auth_port: int, web_port: int,
                 token: str) -> None:
        self.a, self.pid, self.auth_port, self.web_port, self.token = (
            args, pid, auth_port, web_port, token)
        self.db_pid = mariadbd_pid()

    def cpu(self) -> tuple[float, float]:
        return (process_cpu_seconds(self.pid),
                process_cpu_seconds(self.db_pid) if self.db_pid else 0.0)

    def radius(self, **kw: Any) -> dict[str, Any]:
        argv = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(self.auth_port), "--pin",
                str(self.a.gen_cpu), "--users", str(self.a.radius_users),
                "--duration", str(self.a.duration), "--timeout", "2"]
        for k, v in kw.items():
            argv += [f"--{k}", str(v)]
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        if out.returncode != 0:
            raise SystemExit(f"loadgen failed: {out.stderr.strip()}")
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def measured(self, fn: Any, count_key: str) -> dict[str, Any]:
        c0 = self.cpu()
        r = fn()
        c1 = self.cpu()
        n = r.get(count_key) or 1
        r["server_cpu_us_per_request"] = round(1e6 * (c1[0] - c0[0]) / n, 1)
        r["mariadbd_cpu_us_per_request"] = round(1e6 * (c1[1] - c0[1]) / n, 1)
        return r

    def http(self, make: Any) -> dict[str, Any]:
        os.sched_setaffinity(0, {self.a.gen_cpu})
        return HttpLoad(self.web_port, self.token, self.a.connections).run(
            make, self.a.duration)

    def together(self, make: Any, rate: float) -> tuple[dict[str, Any], dict[str, Any]]:
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.update(r=self.radius(
            rate=rate, count=int(rate * self.a.duration) + 1)))
        t.start()
        time.sleep(0.3)  # loadgen's precompute
        api = self.http(make)
        t.join()
        return box["r"], api


def show(name: str, r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    print(f"  {name:34} {r['rate']:>9.1f}/s  p50 {lat['p50']:7.2f} ms  p99 {lat['p99']:7.2f} ms"
          + (f"  server {r['server_cpu_us_per_request']} us/req, mariadbd "
             f"{r['mariadbd_cpu_us_per_request']} us/req" if "server_cpu_us_per_request" in r
             else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--radius-users", type=int, default=2000)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    p.add_argument("--connections", type=int, default=16, help="HTTP keep-alive clients")
    p.add_argument("--window", type=int, default=64, help="RADIUS peak: requests in flight")
    p.add_argument("--mariadb-url", default=DEFAULT_URL)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--gen-cpu", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="radbill-api-bench-"))
    print(f"populating {args.subscribers} subscribers on {args.mariadb_url} ...", flush=True)
    token = populate(args.mariadb_url, args.subscribers, args.radius_users)
    auth_port, acct_port, web_port = (free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM),
                                      free_port())
    cfg = auth_radbill.write_config(work / "radbill.toml", work, args.mariadb_url, auth_port,
                                    acct_port)
    cfg.write_text(cfg.read_text().replace('log_level = "info"', 'log_level = "warn"')
                   + CONFIG_WEB.format(port=web_port))
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(["taskset", "-c", str(args.server_cpu), PYTHON, "-m", "radbill.cli",
                             "--config", str(cfg), "serve"], stdout=log, stderr=subprocess.STDOUT)
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/v1/openapi.json",
                                       timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        run = Run(args, proc.pid, auth_port, web_port, token)
        print("warming up (every RADIUS user once, API caches) ...", flush=True)
        run.radius(window=32, count=args.radius_users, users=args.radius_users)
        HttpLoad(web_port, token, 4).run(get_subscriber(token, args.subscribers), 1.0)
        print("results (server pinned to one CPU):", flush=True)
        peak = run.measured(lambda: run.radius(window=args.window,
                                               count=int(args.duration * 50_000)), "completed")
        show("RADIUS peak", peak)
        half = peak["rate"] / 2
        base = run.radius(rate=round(half, 1), count=int(half * args.duration) + 1)
        show("RADIUS at half peak, alone", base)
        reads = run.measured(lambda: run.http(get_subscriber(token, args.subscribers)),
                             "requests")
        show("API GET subscriber, alone", reads)
        writes = run.measured(lambda: run.http(post_payment(token, args.subscribers)),
                              "requests")
        show("API POST payment, alone", writes)
        r_reads, a_reads = run.together(get_subscriber(token, args.subscribers), half)
        show("RADIUS at half peak + API reads", r_reads)
        show("  API GET subscriber meanwhile", a_reads)
        r_writes, a_writes = run.together(post_payment(token, args.subscribers), half)
        show("RADIUS at half peak + API payments", r_writes)
        show("  API POST payment meanwhile", a_writes)
        results.update(radius_peak=peak, radius_half_alone=base, api_reads_alone=reads,
                       api_writes_alone=writes, radius_half_with_reads=r_reads,
                       api_reads_with_radius=a_reads, radius_half_with_writes=r_writes,
                       api_writes_with_radius=a_writes, seconds=round(time.time() - started))
        print(f"RADIUS p99 {base['latency_ms']['p99']} ms alone -> "
              f"{r_reads['latency_ms']['p99']} ms beside API reads, "
              f"{r_writes['latency_ms']['p99']} ms beside API payments", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    out = args.out or BENCH / "results" / f"api-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}; took {results.get('seconds')} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
