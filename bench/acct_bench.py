"""Accounting-Request/s with durable storage: radbill on SQLite and MariaDB, FreeRADIUS rlm_sql.

Interim-Update-heavy load (each session: Start, --interims Interim-Updates,
Stop) from bench/acct/loadgen.py, a separate process with many requests in
flight, against each server in turn, on 127.0.0.1 only, bounded in count
and time. Afterwards every acknowledged request is checked against the
database: a session whose Stop was answered must be stored closed with the
Stop's exact counters; any other answered request's counters must be there.

    .venv/bin/python bench/acct_bench.py [--sessions 2000] [--interims 8]
        [--targets minimal,minimal-2proc,radbill-sqlite,radbill-mariadb,freeradius-mariadb]
        [--repeat 3]
        [--mysql mysql+pymysql://root@127.0.0.1:3306] [--out bench/results/acct-<UTC time>.json]

FreeRADIUS needs the Debian packages freeradius and freeradius-mysql; it is
skipped (and said so) when they are missing. Both servers write to the same
MariaDB server, each in its own database (radbill_bench, radius_bench).
``minimal`` (bench/acct/minimal.py) decodes, checks and answers with pyrad and
stores nothing: the most this runtime can do per request, with no "stored" check;
``minimal-2proc`` is two of them sharing the port (SO_REUSEPORT), what two
processes of this runtime could do on this machine before storing anything.
Each row reports the server's CPU per acknowledged request (/proc), and for
the MariaDB rows the MariaDB server's, which a shared machine hardly distorts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.acct import freeradius  # noqa: E402
from bench.acct.loadgen import expected, session_id  # noqa: E402

SECRET = "benchsecret"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mysql_exec(base_url: str, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306,
                           user=url.username or "root", password=url.password or "",
                           database=database, autocommit=True, client_flag=1 << 16)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = list(cur.fetchall())
            while cur.nextset():
                pass
            return rows
    finally:
        conn.close()


# -- radbill ----------------------------------------------------------------------------


def prepare_radbill(db_url: str, users: int) -> None:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from core.db import schema
    from core.db.engine import make_engine
    from core.db.models import Nas, Plan, Subscriber

    engine = make_engine(db_url)
    if engine.dialect.name == "mysql":
        with engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for (name,) in conn.execute(text("SHOW TABLES")).all():
                conn.execute(text(f"DROP TABLE `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    schema.upgrade(engine)
    with Session(engine) as s, s.begin():
        plan = Plan(name="bench", interim_interval=300)
        s.add(plan)
        s.flush()
        s.add(Nas(name="bench", address="127.0.0.1", secret=SECRET,
                  require_message_authenticator=False))
        s.add_all(Subscriber(login=f"user{i}", plan_id=plan.id) for i in range(users))
    engine.dispose()


def start_radbill(tmp: Path, db_url: str, args: argparse.Namespace,
                  env: dict[str, str] | None = None) -> tuple[Any, int]:
    acct, auth = free_port(), free_port()
    config = tmp / "radbill.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp}"\nlog_level = "warn"\n'
        f'[database]\nurl = "{db_url}"\npool_size = {args.pool_size}\n'
        f'[radius]\nlisten = ["127.0.0.1"]\nauth_port = {auth}\nacct_port = {acct}\n'
        f"max_in_flight = 8192\n"
        f"[accounting]\ngroup_commit_ms = {args.group_commit_ms}\n")
    log = (tmp / "radbill.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bench.acct.serve_radbill", str(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"radbill did not start: {(tmp / 'radbill.log').read_text()}")
    return proc, int(line.split()[1])


def stored_radbill(db_url: str, prefix: str) -> dict[str, tuple[int, int, int, bool]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from accounting.models import AcctSession
    from core.db.engine import make_engine

    engine = make_engine(db_url)
    with Session(engine) as s:
        rows = s.execute(select(AcctSession.session_id, AcctSession.session_time,
                                AcctSession.input_octets, AcctSession.output_octets,
                                AcctSession.closed_by)
                         .where(AcctSession.session_id.startswith(prefix + "-"))).all()
    engine.dispose()
    return {sid: (t, i, o, closed == "stop") for sid, t, i, o, closed in rows}


def start_minimal(tmp: Path, processes: int = 1) -> tuple[list[Any], int]:
    """bench/acct/minimal.py: decode, check, answer, store nothing (the runtime's ceiling).

    With ``processes`` > 1 they share one port through SO_REUSEPORT."""
    port = free_port() if processes > 1 else 0
    procs: list[Any] = []
    for i in range(processes):
        log = (tmp / f"minimal{i}.log").open("w")
        cmd = [sys.executable, "-m", "bench.acct.minimal", "--secret", SECRET,
               "--port", str(port)] + (["--reuse-port"] if processes > 1 else [])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            for p in procs:
                p.kill()
            raise RuntimeError(f"minimal did not start: {(tmp / f'minimal{i}.log').read_text()}")
        port = int(line.split()[1])
    return procs, port


# -- FreeRADIUS ---------------------------------------------------------------------------


def prepare_freeradius(base: str) -> None:
    mysql_exec(base, "DROP DATABASE IF EXISTS radius_bench")
    mysql_exec(base, "CREATE DATABASE radius_bench")
    mysql_exec(base, freeradius.SCHEMA.read_text(), database="radius_bench")


def start_freeradius(tmp: Path, base: str) -> tuple[Any, int]:
    from sqlalchemy.engine import make_url

    url = make_url(base)
    port = free_port()
    conf = freeradius.write_config(tmp / "raddb", port, SECRET, "radius_bench",
                                   host=url.host or "127.0.0.1", db_port=url.port or 3306,
                                   login=url.username or "root", password=url.password or "")
    binary = freeradius.binary()
    assert binary is not None
    log = (tmp / "freeradius.out").open("w")
    proc = subprocess.Popen([binary, "-f", "-d", str(conf), "-n", "radiusd"],
                            stdout=log, stderr=subprocess.STDOUT)
    # Ready when it answers a probe Accounting-Request (stored as session "probe").
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("freeradius exited: "
                               + (tmp / "freeradius.out").read_text()[-2000:])
        if probe(port):
            return proc, port
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("freeradius did not answer within 20 s")


def probe(port: int) -> bool:
    import hashlib
    import struct

    body = (bytes([40, 6]) + struct.pack("!I", 1) + bytes([44, 7]) + b"probe"
            + bytes([1, 7]) + b"probe" + bytes([4, 6, 127, 0, 0, 1]))
    header = struct.pack("!BBH", 4, 1, 20 + len(body))
    auth = hashlib.md5(header + b"\x00" * 16 + body + SECRET.encode()).digest()  # noqa: S324
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(header + auth + body, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except OSError:
            return False
    return data[0] == 5


def stored_freeradius(base: str, prefix: str) -> dict[str, tuple[int, int, int, bool]]:
    rows = mysql_exec(base, "SELECT acctsessionid, acctsessiontime, acctinputoctets, "
                            "acctoutputoctets, acctstoptime IS NOT NULL FROM radacct "
                            f"WHERE acctsessionid LIKE '{prefix}-%'", database="radius_bench")
    return {sid: (int(t or 0), int(i or 0), int(o or 0), bool(stopped))
            for sid, t, i, o, stopped in rows}


# -- the run --------------------------------------------------------------------------------


def load(port: int, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.acct.loadgen", "--port", str(port), "--secret", SECRET,
           "--sessions", str(args.sessions), "--interims", str(args.interims),
           "--users", str(args.users), "--window", str(args.window),
           "--max-seconds", str(args.max_seconds), "--prefix", prefix]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=args.max_seconds + 60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def verify(result: dict[str, Any], stored: dict[str, tuple[int, int, int, bool]],
           prefix: str, interims: int) -> dict[str, Any]:
    """Every acknowledged request's counters are in the database; completed sessions exact."""
    missing = wrong = 0
    last_index = interims + 1
    for k_text, index in result["last_acked"].items():
        k = int(k_text)
        row = stored.get(session_id(prefix, k))
        if row is None:
            missing += 1
            continue
        seconds, octets_in, octets_out = expected(k, index, interims)
        t, i, o, stopped = row
        if index == last_index:
            ok = stopped and (t, i, o) == (seconds, octets_in, octets_out)
        else:
            ok = t >= seconds and i >= octets_in and o >= octets_out
        wrong += 0 if ok else 1
    return {"sessions_acknowledged": len(result["last_acked"]), "missing": missing,
            "wrong": wrong, "all_acknowledged_stored": missing == 0 and wrong == 0}


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time of a process, or of one of its threads (``thread`` = its tid)."""
    where = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        fields = Path(where).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def mariadb_pid() -> int | None:
    """The local MariaDB server's pid, to count its CPU per request too (None if not found)."""
    for name in ("mariadbd", "mysqld"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split():
            return int(out.stdout.split()[0])
    return None


def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_target(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    prefix = f"{name.split('-')[0][:2]}{time.time_ns() % 10**9}"
    work = tmp / name
    work.mkdir(exist_ok=True)
    if name.startswith("minimal"):
        procs, port = start_minimal(work, 2 if name == "minimal-2proc" else 1)
        try:
            cpu_before = sum(cpu_seconds(p.pid) for p in procs)
            result = load(port, prefix, args)
            server_cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        finally:
            for p in procs:
                stop(p)
        result.pop("last_acked")
        return {"target": name, **result, "server_cpu_seconds": round(server_cpu, 2),
                **_per_request(server_cpu, result), "all_acknowledged_stored": None}
    if name == "freeradius-mariadb":
        why = freeradius.missing()
        if why:
            return {"target": name, "skipped": why}
        prepare_freeradius(args.mysql)
        proc, port = start_freeradius(work, args.mysql)
        db = None
    else:
        # radbill-mariadb: PyMySQL and the hand-rendered statements; -plain: PyMySQL and
        # SQLAlchemy's statements (RADBILL_PLAIN_SQL=1); radbill-mysqldb: mysqlclient (C),
        # which always takes SQLAlchemy's statements (core.db.handsql).
        env = {"RADBILL_PLAIN_SQL": "1"} if name == "radbill-mariadb-plain" else {}
        base = args.mysql.rstrip("/")
        if name == "radbill-mysqldb":
            base = base.replace("+pymysql://", "+mysqldb://")
        db = (f"sqlite:///{work / 'radbill.sqlite'}" if name == "radbill-sqlite"
              else f"{base}/radbill_bench")
        if db.startswith("mysql"):
            mysql_exec(args.mysql, "CREATE DATABASE IF NOT EXISTS radbill_bench")
        prepare_radbill(db, args.users)
        proc, port = start_radbill(work, db, args, env)
    mariadb = mariadb_pid() if name.endswith(("mariadb", "-plain", "mysqldb")) else None
    try:
        cpu_before = cpu_seconds(proc.pid)
        main_before = cpu_seconds(proc.pid, proc.pid)
        db_before = cpu_seconds(mariadb) if mariadb else 0.0
        result = load(port, prefix, args)
        server_cpu = cpu_seconds(proc.pid) - cpu_before
        main_cpu = cpu_seconds(proc.pid, proc.pid) - main_before
        db_cpu = cpu_seconds(mariadb) - db_before if mariadb else None
    finally:
        stop(proc)
    if db is not None:
        # radbill's main thread is the reactor; the others are the DB pool and spool threads.
        acked = max(result["acked"], 1)
        result["reactor_thread_cpu_us_per_request"] = round(main_cpu / acked * 1e6, 1)
        result["other_threads_cpu_us_per_request"] = round(
            (server_cpu - main_cpu) / acked * 1e6, 1)
    if db_cpu is not None:
        # Includes anything else the shared MariaDB server did meanwhile.
        result["mariadb_cpu_seconds"] = round(db_cpu, 2)
        result["mariadb_cpu_us_per_request"] = round(db_cpu / max(result["acked"], 1) * 1e6, 1)
    stored = stored_freeradius(args.mysql, prefix) if db is None else stored_radbill(db, prefix)
    check = verify(result, stored, prefix, args.interims)
    result.pop("last_acked")
    return {"target": name, **result, "server_cpu_seconds": round(server_cpu, 2),
            **_per_request(server_cpu, result), **check}


def _per_request(server_cpu: float, result: dict[str, Any]) -> dict[str, Any]:
    """Server CPU per acknowledged request: what load on a shared machine hardly changes."""
    acked = result.get("acked") or 0
    return {"server_cpu_us_per_request": round(server_cpu / acked * 1e6, 1) if acked else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--interims", type=int, default=8)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--repeat", type=int, default=1, help="rounds over all targets")
    p.add_argument("--pool-size", type=int, default=4, help="radbill DB connections (MariaDB)")
    p.add_argument("--group-commit-ms", type=float, default=5.0)
    p.add_argument("--targets",
                   default="minimal,minimal-2proc,radbill-sqlite,radbill-mariadb,freeradius-mariadb",
                   help="minimal is bench/acct/minimal.py: pyrad decode + check + reply, "
                        "storing nothing (the ceiling of this runtime); minimal-2proc is two "
                        "of them sharing the port (SO_REUSEPORT)")
    p.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306",
                   help="MariaDB server (no database part) for both servers")
    p.add_argument("--out", default=str(ROOT / "bench/results" / time.strftime(
        "acct-%Y%m%dT%H%M%SZ.json", time.gmtime())))
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="acct-bench-") as tmp:
        # Rounds interleave the targets, so a noisy neighbour hurts them alike.
        for round_no in range(1, args.repeat + 1):
            for name in args.targets.split(","):
                print(f"== {name} (round {round_no})", file=sys.stderr, flush=True)
                work = Path(tmp) / f"round{round_no}"
                work.mkdir(exist_ok=True)
                r = run_target(name.strip(), args, work)
                r["round"] = round_no
                r["load_average"] = os.getloadavg()[0]
                print(json.dumps(r), file=sys.stderr, flush=True)
                results.append(r)
    report = {"machine": f"{platform.node()} {os.cpu_count()} cpus {platform.platform()}",
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'target':22} {'round':>5} {'req/s':>9} {'acked':>7} {'retx':>6} {'stored ok':>9} "
          f"{'srv cpu s':>9} {'us/req':>7} {'db us/req':>9} {'load':>5}")
    for r in results:
        if "skipped" in r:
            print(f"{r['target']:22} skipped: {r['skipped']}")
            continue
        print(f"{r['target']:22} {r['round']:>5} {r['acked_per_second']:>9} {r['acked']:>7} "
              f"{r['retransmits']:>6} {r['all_acknowledged_stored']!s:>9} "
              f"{r['server_cpu_seconds']:>9} {r['server_cpu_us_per_request']!s:>7} "
              f"{r.get('mariadb_cpu_us_per_request', '-')!s:>9} {r['load_average']:>5.1f}")
    best: dict[str, float] = {}
    for r in results:
        if "skipped" not in r:
            best[r["target"]] = max(best.get(r["target"], 0.0), r["acked_per_second"])
    print("best: " + ", ".join(f"{t} {v:.0f}/s" for t, v in best.items()))
    rates: dict[str, list[float]] = {}
    for r in results:
        if "skipped" not in r:
            rates.setdefault(r["target"], []).append(r["acked_per_second"])
    print("median: " + ", ".join(f"{t} {statistics.median(v):.0f}/s" for t, v in rates.items()))
    if "freeradius-mariadb" in best:
        for other in ("radbill-mariadb", "minimal"):
            if other in best:
                print(f"{other} / freeradius-mariadb = "
                      f"{best[other] / best['freeradius-mariadb']:.2f} (target for "
                      f"radbill-mariadb: >= 2.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
