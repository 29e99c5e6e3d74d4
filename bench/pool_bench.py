#!/usr/bin/env python3
"""Pool allocation benchmarks: the allocator alone, and end to end against FreeRADIUS sqlippool.

``alloc``: fill a /16 (65,534 addresses) from 0% to 99% with one allocation
per transaction, exactly as the server does (thd_allocate through
run_in_session), on SQLite and on MariaDB. Reports allocations/s, latency
percentiles, the mean time per allocation over the first and the last 1,000
allocations and their ratio (the issue's target: within 1.5x), and the mean
per tenth of the fill.

``e2e``: Access-Requests (CHAP, each from a different subscriber, each
needing an address from the same /16) against the real radbill server with
the PoolHook on MariaDB, then against FreeRADIUS 3.2 with rlm_sql +
rlm_sqlippool on the same MariaDB (its own database), in the same run. A
closed-loop load generator keeps ``--window`` requests in flight, counts
Access-Accepts with and without Framed-IP-Address, rejects and timeouts, and
reports the rate of Accepts carrying an address. Loopback only, bounded by
``--count`` and ``--duration``.

``serve`` (internal): radbill's server with the pool hook wired, as the lead
will wire it in radbill.app; e2e starts it in its own process.

Examples:
  .venv/bin/python bench/pool_bench.py alloc --backend sqlite --backend mariadb
  .venv/bin/python bench/pool_bench.py e2e --count 20000 --window 64
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARIADB = "mysql+pymysql://root@127.0.0.1:3306/"
SECRET = b"testing123"
POOL_CIDR = "10.100.0.0/16"
FRESH_CIDR = "10.101.0.0/16"


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- helpers for databases -------------------------------------------------------------------

def fresh_mariadb(database: str) -> str:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.close()
    return MARIADB + database


def migrated_engine(url: str, pool_size: int = 4) -> Any:
    from core.db import schema
    from core.db.engine import make_engine

    engine = make_engine(url, pool_size=pool_size)
    schema.upgrade(engine)
    return engine


# -- alloc: the allocator alone --------------------------------------------------------------

def _handler_reads(conn: Any) -> dict[str, int]:
    rows = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Handler_read%%'").all()
    conn.commit()
    return {str(name): int(value) for name, value in rows}


def _window(times: list[float]) -> dict[str, float]:
    return {"mean_ms": ms(sum(times) / len(times)), "median_ms": ms(percentile(times, 50))}


def bench_alloc(url: str, fill: float) -> dict[str, Any]:
    """Fill the pool one allocation per transaction; time each, and each one's statements."""
    from sqlalchemy.orm import sessionmaker

    from core.db.pool import run_in_session
    from pools.lease import thd_allocate
    from pools.manage import NewPool, thd_add_pool
    from pools.models import PoolKind

    engine = migrated_engine(url)
    mariadb = engine.dialect.name == "mysql"
    conn = engine.connect()  # one connection, so its session status counts our statements only
    factory = sessionmaker(bind=conn, expire_on_commit=False)
    started = time.perf_counter()
    usage = run_in_session(factory, thd_add_pool, NewPool("bench", PoolKind.IPV4,
                                                          ranges=(POOL_CIDR,)))
    add_seconds = time.perf_counter() - started
    # A second, untouched /16 for the paired comparison at the end.
    run_in_session(factory, thd_add_pool, NewPool("fresh", PoolKind.IPV4,
                                                  ranges=(FRESH_CIDR,)))
    count = int(usage.size * fill)
    times: list[float] = []
    paired_fresh: list[float] = []
    inner: dict[str, list[float]] = {"bench": [], "fresh": []}  # statements, without commit

    def timed(session: Any, pool: str, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return thd_allocate(session, pool, *args, **kwargs)
        finally:
            inner[pool].append(time.perf_counter() - t)

    def one(pool: str, i: int) -> float:
        t = time.perf_counter()
        run_in_session(factory, timed, pool, f"{pool}{i:05d}", nas_id=1, offer_seconds=3600)
        return time.perf_counter() - t

    reads: dict[str, dict[str, float]] = {}
    for i in range(count):
        if mariadb and i in (0, count - 1000):
            before = _handler_reads(conn)
        if i < count - 1000:
            times.append(one("bench", i))
        else:
            # The last 1,000 of the full pool, each next to one of the first 1,000 of a
            # fresh pool: whatever else the machine does hits both alike.
            times.append(one("bench", i))
            paired_fresh.append(one("fresh", i))
        if mariadb and i in (999, count - 1):
            after = _handler_reads(conn)
            n = 1000 if i == 999 else 2000  # the last window holds the fresh pool's too
            reads["first_1000" if i == 999 else "last_1000_and_paired"] = {
                k.removeprefix("Handler_read_"): round((after[k] - before[k]) / n, 2)
                for k in after if after[k] != before[k]}
    conn.close()
    engine.dispose()
    first, last = times[:1000], times[-1000:]
    tenth = max(1, count // 10)
    result = {
        "backend": engine.dialect.name.replace("mysql", "mariadb"),
        "pool_size": usage.size, "allocations": count,
        "fill_percent": round(100 * count / usage.size, 1),
        "add_pool_seconds": round(add_seconds, 2),
        "allocations_per_s": round(count / sum(times), 1),
        "p50_ms": ms(percentile(times, 50)), "p99_ms": ms(percentile(times, 99)),
        "max_ms": ms(max(times)),
        "first_1000": _window(first), "last_1000": _window(last),
        "last_over_first": round((sum(last) / len(last)) / (sum(first) / len(first)), 3),
        "statements_only": {
            "first_1000": _window(inner["bench"][:1000]),
            "last_1000": _window(inner["bench"][-1000:]),
            "last_over_first": round(sum(inner["bench"][-1000:]) / sum(inner["bench"][:1000]),
                                     3)},
        "paired": {"fresh_pool_first_1000": _window(paired_fresh),
                   "full_pool_last_1000": _window(last),
                   "last_over_first": round(sum(last) / sum(paired_fresh), 3),
                   "statements_only_last_over_first": round(
                       sum(inner["bench"][-1000:]) / sum(inner["fresh"]), 3)},
        "mean_ms_per_tenth": [ms(sum(times[k:k + tenth]) / len(times[k:k + tenth]))
                              for k in range(0, count, tenth) if times[k:k + tenth]],
    }
    if reads:
        result["handler_reads_per_allocation"] = reads
    return result


def cmd_alloc(args: argparse.Namespace) -> int:
    results = []
    for backend in args.backend:
        if backend == "sqlite":
            tmp = tempfile.mkdtemp(prefix="pool-bench-")
            url = f"sqlite:///{tmp}/bench.sqlite"
        else:
            url = fresh_mariadb(args.mariadb_database)
        print(f"# {backend}: filling {POOL_CIDR} to {args.fill:.0%} ...", file=sys.stderr)
        result = bench_alloc(url, args.fill)
        results.append(result)
        print(json.dumps(result), flush=True)
        if backend == "sqlite":
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r["last_over_first"] <= 1.5 or r["paired"]["last_over_first"] <= 1.5
                    for r in results) else 1


# -- serve: radbill with the pool hook --------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from twisted.internet import reactor

    from aaa.pool_hook import PoolHook
    from core.config import load_config
    from core.logs import setup_logging
    from pools.service import LeaseExpiryService
    from radbill.app import make_service

    config = load_config(args.config)
    setup_logging(config.server.log_level)
    logging.getLogger("aaa.radius").setLevel(logging.ERROR)
    r: Any = reactor
    # As radbill.app will wire it: the hook on the server's own DB pool, expiry beside it.
    hook = PoolHook(None, r, offer_lease_seconds=config.pools.offer_lease_seconds)  # type: ignore[arg-type]
    app = make_service(config, r, access_hooks=[hook])
    hook.dbpool = app.dbpool
    LeaseExpiryService(app.dbpool, r).setServiceParent(app.root)
    r.callWhenRunning(app.root.startService)
    r.addSystemEventTrigger("before", "shutdown", app.root.stopService)
    r.run()
    return 0


# -- e2e: load generator ---------------------------------------------------------------------

def login(i: int) -> str:
    return f"u{i:05d}"


def password(i: int) -> str:
    return f"pw{i:05d}"


def _attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def chap_request(ident: int, i: int) -> bytes:
    """A PPPoE-style CHAP Access-Request of subscriber i, on its own NAS-Port and MAC."""
    auth = os.urandom(16)
    chap_id = i & 0xFF
    chap = bytes((chap_id,)) + hashlib.md5(  # noqa: S324 - CHAP (RFC 1994) is MD5
        bytes((chap_id,)) + password(i).encode() + auth).digest()
    mac = "02:00:" + ":".join(f"{b:02x}" for b in i.to_bytes(4, "big"))
    attrs = b"".join((
        _attr(1, login(i).encode()),
        _attr(3, chap),
        _attr(4, socket.inet_aton("127.0.0.1")),
        _attr(5, struct.pack("!I", i)),  # NAS-Port: sqlippool's default pool_key
        _attr(6, struct.pack("!I", 2)),
        _attr(7, struct.pack("!I", 1)),
        _attr(31, mac.encode()),
        _attr(61, struct.pack("!I", 15)),
    ))
    ma_zero = _attr(80, b"\x00" * 16)
    header = struct.pack("!BBH", 1, ident, 20 + len(ma_zero) + len(attrs)) + auth
    digest = hmac.digest(SECRET, header + ma_zero + attrs, "md5")
    return header + _attr(80, digest) + attrs


def framed_ip(reply: bytes) -> str | None:
    pos, end = 20, min(len(reply), struct.unpack("!H", reply[2:4])[0])
    while pos + 2 <= end:
        code, length = reply[pos], reply[pos + 1]
        if length < 2:
            return None
        if code == 8 and length == 6:
            return socket.inet_ntoa(reply[pos + 2:pos + 6])
        pos += length
    return None


def load(port: int, first: int, count: int, window: int, duration: float,
         timeout: float = 3.0) -> dict[str, Any]:
    """Closed loop: ``window`` sockets with one request each in flight, as fast as answered."""
    datagrams = [chap_request(k % 256, first + k) for k in range(count)]
    socks = []
    poller = select.epoll()
    for _ in range(window):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
        socks.append(s)
    by_fd = {s.fileno(): n for n, s in enumerate(socks)}
    current: list[int | None] = [None] * window
    sent_at = [0.0] * window
    next_k = 0
    counts = {"accept_with_address": 0, "accept_without_address": 0, "reject": 0,
              "timeout": 0, "other": 0}
    addresses: dict[str, int] = {}
    latencies: list[float] = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + duration

    def send(n: int) -> None:
        nonlocal next_k
        if next_k >= count or time.perf_counter() > deadline:
            current[n] = None
            return
        current[n] = next_k
        sent_at[n] = time.perf_counter()
        socks[n].send(datagrams[next_k])
        next_k += 1

    for n in range(window):
        send(n)
    while any(c is not None for c in current):
        for fd, _ in poller.poll(0.05):
            n = by_fd[fd]
            try:
                data = socks[n].recv(4096)
            except BlockingIOError:
                continue
            k = current[n]
            if k is None or len(data) < 20 or data[1] != k % 256:
                continue  # a straggler after a timeout
            latencies.append(time.perf_counter() - sent_at[n])
            if data[0] == 2:
                ip = framed_ip(data)
                if ip is None:
                    counts["accept_without_address"] += 1
                else:
                    counts["accept_with_address"] += 1
                    addresses[ip] = addresses.get(ip, 0) + 1
            elif data[0] == 3:
                counts["reject"] += 1
            else:
                counts["other"] += 1
            send(n)
        now = time.perf_counter()
        for n in range(window):
            if current[n] is not None and now - sent_at[n] > timeout:
                counts["timeout"] += 1
                send(n)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    for s in socks:
        s.close()
    done = sum(counts.values()) - counts["timeout"]
    return {
        "requests": next_k, **counts,
        "addresses_given_twice": sum(1 for v in addresses.values() if v > 1),
        "seconds": round(elapsed, 2),
        "answers_per_s": round(done / elapsed, 1),
        "accepts_with_address_per_s": round(counts["accept_with_address"] / elapsed, 1),
        "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
        "generator_cpu_percent": round(100 * cpu / elapsed, 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc), including its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mariadb_pid() -> int | None:
    try:
        return int(Path("/run/mysqld/mysqld.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def measured_load(proc: subprocess.Popen[bytes], port: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    """The load, plus the CPU the server and MariaDB used per answered request.

    MariaDB's figure includes whatever else the machine sent it meanwhile.
    """
    db = mariadb_pid()
    server0, db0 = cpu_seconds(proc.pid), cpu_seconds(db) if db else 0.0
    result = load(port, 0, args.count, args.window, args.duration)
    server1, db1 = cpu_seconds(proc.pid), cpu_seconds(db) if db else 0.0
    answered = max(1, result["requests"] - result["timeout"])
    result["server_cpu_ms_per_request"] = round(1000 * (server1 - server0) / answered, 3)
    if db:
        result["mariadb_cpu_ms_per_request"] = round(1000 * (db1 - db0) / answered, 3)
    result["load_average"] = os.getloadavg()[0]
    return result


def wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until the server answers a Status-Server (or any reply) on the auth port."""
    ident = 1
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        s.settimeout(0.3)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            auth = os.urandom(16)
            ma_zero = _attr(80, b"\x00" * 16)
            header = struct.pack("!BBH", 12, ident, 20 + len(ma_zero)) + auth
            pkt = header + _attr(80, hmac.digest(SECRET, header + ma_zero, "md5"))
            try:
                s.send(pkt)
                if s.recv(4096):
                    return
            except (TimeoutError, ConnectionRefusedError):
                pass
            ident = (ident + 1) % 256
    raise SystemExit(f"no answer on port {port}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- e2e: radbill -----------------------------------------------------------------------------

def setup_radbill(database: str, users: int) -> str:
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from core.db.base import utcnow
    from core.db.models import Nas, Plan, Subscriber
    from pools.manage import NewPool, thd_add_pool, thd_attach
    from pools.models import PoolKind

    url = fresh_mariadb(database)
    engine = migrated_engine(url)
    now = utcnow()
    with Session(engine) as s, s.begin():
        s.add(Nas(name="bench", address="127.0.0.1", secret=SECRET.decode(),
                  require_message_authenticator=True))
        plan = Plan(name="bench", framed_protocol=None, extra_reply=[])
        s.add(plan)
        s.flush()
        rows = [{"login": login(i), "plan_id": plan.id, "status": "active",
                 "chap_enabled": True, "cleartext_password": password(i),
                 "description": "", "created_at": now, "updated_at": now}
                for i in range(users)]
        for k in range(0, users, 5000):
            s.execute(insert(Subscriber), rows[k:k + 5000])
        thd_add_pool(s, NewPool("bench", PoolKind.IPV4, ranges=(POOL_CIDR,)))
        thd_attach(s, "bench", "bench")
    engine.dispose()
    return url


def run_radbill(url: str, port: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = work / "radbill.toml"
    config.write_text(
        f'[server]\ndata_dir = "{work}"\nlog_level = "warn"\n'
        f'[database]\nurl = "{url}"\npool_size = {args.radbill_db_threads}\n'
        f'[radius]\nlisten = ["127.0.0.1"]\nauth_port = {port}\nacct_port = {free_port()}\n')
    log = (work / "radbill.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve",
                             "--config", str(config)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        return measured_load(proc, port, args)
    finally:
        stop(proc)


# -- e2e: FreeRADIUS with rlm_sql + rlm_sqlippool -----------------------------------------------

FR_RADIUSD = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/log/radacct
name = radiusd
confdir = ${{raddbdir}}
modconfdir = {dir}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {{
    destination = files
    file = ${{logdir}}/radius.log
    auth = no
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}
proxy_requests = no
$INCLUDE clients.conf
thread pool {{
    start_servers = 5
    max_servers = 32
    min_spare_servers = 3
    max_spare_servers = 10
    max_requests_per_server = 0
    auto_limit_acct = no
}}
modules {{
    $INCLUDE mods-enabled/
}}
instantiate {{
}}
policy {{
}}
$INCLUDE sites-enabled/
"""

FR_CLIENTS = """\
client bench {
    ipaddr = 127.0.0.1
    secret = testing123
    require_message_authenticator = yes
    nas_type = other
}
"""

FR_SITE = """\
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        chap
        sql
    }}
    authenticate {{
        Auth-Type CHAP {{
            chap
        }}
    }}
    post-auth {{
        update control {{
            &Pool-Name := "main"
        }}
        sqlippool
    }}
}}
"""

# The stock sql module, pointed at MariaDB (rlm_sql_mysql), connections sized by the thread pool.
FR_SQL = """\
sql {{
    dialect = "mysql"
    driver = "rlm_sql_mysql"
    server = "127.0.0.1"
    port = 3306
    login = "root"
    password = ""
    radius_db = "{database}"
    acct_table1 = "radacct"
    acct_table2 = "radacct"
    postauth_table = "radpostauth"
    authcheck_table = "radcheck"
    groupcheck_table = "radgroupcheck"
    authreply_table = "radreply"
    groupreply_table = "radgroupreply"
    usergroup_table = "radusergroup"
    delete_stale_sessions = yes
    mysql {{
        warnings = auto
    }}
    pool {{
        start = ${{thread[pool].start_servers}}
        min = ${{thread[pool].min_spare_servers}}
        max = ${{thread[pool].max_servers}}
        spare = ${{thread[pool].max_spare_servers}}
        uses = 0
        retry_delay = 30
        lifetime = 0
        idle_timeout = 60
    }}
    client_table = "nas"
    group_attribute = "SQL-Group"
    $INCLUDE ${{modconfdir}}/${{.:name}}/main/${{dialect}}/queries.conf
}}
"""

FR_CONF = Path("/etc/freeradius/3.0")


def write_freeradius(directory: Path, port: int, database: str, skip_locked: bool) -> Path:
    d = directory
    for sub in ("log/radacct", "run", "mods-enabled", "sites-enabled"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    shutil.copytree(FR_CONF / "mods-config", d / "mods-config", dirs_exist_ok=True)
    if skip_locked:  # the one line the stock queries.conf asks MariaDB >= 10.6 users to change
        queries = d / "mods-config/sql/ippool/mysql/queries.conf"
        text = queries.read_text().replace('#skip_locked = "SKIP LOCKED"\nskip_locked = ""',
                                           'skip_locked = "SKIP LOCKED"')
        assert 'skip_locked = "SKIP LOCKED"' in text
        queries.write_text(text)
    (d / "radiusd.conf").write_text(FR_RADIUSD.format(dir=d))
    (d / "clients.conf").write_text(FR_CLIENTS)
    (d / "dictionary").write_text("# the system dictionaries are loaded first\n")
    (d / "sites-enabled" / "default").write_text(FR_SITE.format(port=port))
    (d / "mods-enabled" / "sql").write_text(FR_SQL.format(database=database))
    (d / "mods-enabled" / "chap").write_text("chap {\n}\n")
    (d / "mods-enabled" / "expr").write_text("expr {\n}\n")  # %{tolower:} in queries.conf
    (d / "mods-enabled" / "sqlippool").write_text(
        (FR_CONF / "mods-available" / "sqlippool").read_text())
    return d


def setup_freeradius_db(database: str, users: int) -> None:
    import ipaddress

    import pymysql

    fresh_mariadb(database)
    conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    with conn.cursor() as cur:
        for schema in (FR_CONF / "mods-config/sql/main/mysql/schema.sql",
                       FR_CONF / "mods-config/sql/ippool/mysql/schema.sql"):
            text = "\n".join(line for line in schema.read_text().splitlines()
                             if not line.strip().startswith("#"))
            for statement in text.split(";"):
                if statement.strip():
                    cur.execute(statement)
        rows = [(login(i), "Cleartext-Password", ":=", password(i)) for i in range(users)]
        for k in range(0, users, 5000):
            cur.executemany("INSERT INTO radcheck (username, attribute, op, value) "
                            "VALUES (%s, %s, %s, %s)", rows[k:k + 5000])
        hosts = [str(h) for h in ipaddress.IPv4Network(POOL_CIDR).hosts()]
        for k in range(0, len(hosts), 5000):
            cur.executemany("INSERT INTO radippool (pool_name, framedipaddress, expiry_time) "
                            "VALUES ('main', %s, '2000-01-01 00:00:00')",
                            [(h,) for h in hosts[k:k + 5000]])
    conn.close()


def run_freeradius(database: str, port: int, work: Path, args: argparse.Namespace,
                   skip_locked: bool) -> dict[str, Any]:
    d = write_freeradius(work / ("raddb-skip" if skip_locked else "raddb"), port, database,
                         skip_locked)
    log = (work / "freeradius.log").open("ab")
    proc = subprocess.Popen(["/usr/sbin/freeradius", "-f", "-n", "radiusd", "-d", str(d)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        return measured_load(proc, port, args)
    finally:
        stop(proc)


def cmd_e2e(args: argparse.Namespace) -> int:
    if not 0 < args.count <= 65_000:
        raise SystemExit("--count must be 1..65000 (one address each from a /16)")
    work = Path(tempfile.mkdtemp(prefix="pool-e2e-"))
    results: dict[str, Any] = {"count": args.count, "window": args.window}
    for run in args.runs:
        print(f"# {run}: preparing {args.count} subscribers and {POOL_CIDR} ...",
              file=sys.stderr)
        if run == "radbill":
            url = setup_radbill(args.radbill_database, args.count)
            results[run] = run_radbill(url, free_port(), work, args)
        else:
            setup_freeradius_db(args.freeradius_database, args.count)
            results[run] = run_freeradius(args.freeradius_database, free_port(), work, args,
                                          skip_locked=run == "freeradius-skip-locked")
        print(json.dumps({run: results[run]}), flush=True)
    if "radbill" in results and "freeradius" in results:
        fr = results["freeradius"]["accepts_with_address_per_s"]
        rb = results["radbill"]["accepts_with_address_per_s"]
        results["radbill_over_freeradius"] = round(rb / fr, 2) if fr else None
    print(json.dumps(results, indent=2))
    print(f"# logs in {work}", file=sys.stderr)
    ok = "radbill" not in results or (
        results["radbill"]["accept_without_address"] == 0
        and results["radbill"]["addresses_given_twice"] == 0)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("alloc", help="the allocator alone, /16 from 0% to 99%")
    a.add_argument("--backend", action="append", choices=["sqlite", "mariadb"])
    a.add_argument("--fill", type=float, default=0.99)
    a.add_argument("--mariadb-database", default="radbill_pool_bench")
    a.set_defaults(func=cmd_alloc)
    e = sub.add_parser("e2e", help="radbill vs FreeRADIUS sqlippool, Access-Request to Accept")
    e.add_argument("--count", type=int, default=20_000, help="requests (= subscribers)")
    e.add_argument("--window", type=int, default=64, help="requests in flight")
    e.add_argument("--duration", type=float, default=120, help="seconds at most per server")
    e.add_argument("--run", dest="runs", action="append",
                   choices=["radbill", "freeradius", "freeradius-skip-locked"])
    e.add_argument("--radbill-database", default="radbill_pool_e2e")
    e.add_argument("--radbill-db-threads", type=int, default=8)
    e.add_argument("--freeradius-database", default="radius_pool_bench")
    e.set_defaults(func=cmd_e2e)
    s = sub.add_parser("serve", help="(internal) radbill with the pool hook")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_serve)
    args = p.parse_args(argv)
    if args.command == "alloc" and not args.backend:
        args.backend = ["sqlite", "mariadb"]
    if args.command == "e2e" and not args.runs:
        args.runs = ["radbill", "freeradius"]
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
