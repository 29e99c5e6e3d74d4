"""Several OS processes allocate from one pool as fast as they can: no double holder, none lost.

Each worker process runs radbill's allocator (pools.lease) on its own engine
and connection. Right after each allocation it records the address in a
witness table whose primary key is the address, and deletes the record just
before releasing it; if the allocator ever handed one address to two holders
at once, the second witness insert fails. At the end the addresses the
workers believe they hold must be exactly the offered rows in the database,
and every other address must be free.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from core.db.pool import DBPool
from pools.models import ItemState, PoolKind
from tests.pools_support import add_pool, thd_states

WORKERS = 4
OPS = 600
BUDGET_SECONDS = 60
POOL_SIZE = 200

WORKER = textwrap.dedent('''
    import json, random, sys, time
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import sessionmaker
    from pools.errors import PoolExhausted
    from pools.lease import thd_allocate, thd_lease_on_accounting
    from core.db.engine import make_engine
    from core.db.pool import run_in_session

    url, pool, wid, ops, budget, isolation, start_at, out = sys.argv[1:]
    wid, ops = int(wid), int(ops)
    engine = make_engine(url, pool_size=1)
    if isolation != "default":
        engine = engine.execution_options(isolation_level=isolation)
    factory = sessionmaker(engine)
    rng = random.Random(wid)
    held = {}
    released_logins = []
    stats = {"allocs": 0, "releases": 0, "exhausted": 0, "sticky": 0, "violations": [],
             "lost": [], "errors": []}

    def witness_add(s, value, login):
        s.execute(text("INSERT INTO pool_witness (value, holder) VALUES (:v, :h)"),
                  {"v": value, "h": login})

    def witness_del(s, value):
        s.execute(text("DELETE FROM pool_witness WHERE value = :v"), {"v": value})

    def release():
        value = rng.choice(sorted(held))
        login = held.pop(value)
        run_in_session(factory, witness_del, value)
        update = run_in_session(factory, thd_lease_on_accounting, wid, "Stop", value, None,
                                None, login, None)
        if update.released != 1:
            stats["lost"].append(value)
        stats["releases"] += 1
        released_logins.append((login, value))

    time.sleep(max(0.0, float(start_at) - time.time()))
    deadline = time.monotonic() + float(budget)
    for n in range(ops):
        if time.monotonic() > deadline:
            break
        try:
            if held and rng.random() < 0.4:
                release()
                continue
            login, before = f"w{wid}-{n}", None
            if released_logins and rng.random() < 0.3:
                login, before = released_logins.pop(rng.randrange(len(released_logins)))
            try:
                lease = run_in_session(factory, thd_allocate, pool, login, nas_id=wid,
                                       offer_seconds=3600)
            except PoolExhausted:
                stats["exhausted"] += 1
                if held:
                    release()
                continue
            stats["allocs"] += 1
            stats["sticky"] += lease.value == before
            if lease.value in held:
                stats["violations"].append(lease.value)
            try:
                run_in_session(factory, witness_add, lease.value, login)
            except IntegrityError:
                stats["violations"].append(lease.value)
            held[lease.value] = login
        except Exception as exc:
            stats["errors"].append(repr(exc)[:300])
    stats["held"] = held
    with open(out, "w") as fh:
        json.dump(stats, fh)
''')


def _witness_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS pool_witness "
                          "(value VARCHAR(64) NOT NULL PRIMARY KEY, holder VARCHAR(128))"))
        conn.execute(text("DELETE FROM pool_witness"))


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["default", "REPEATABLE READ", "SERIALIZABLE"])
def test_processes_never_share_or_lose_an_address(engine: Engine, dbpool: DBPool,
                                                   db_url: str, isolation: str,
                                                   tmp_path: Path) -> None:
    """4 processes churn a 200-address pool: no address held twice, none lost, any isolation."""
    if db_url.startswith("sqlite") and isolation != "default":
        pytest.skip("SQLite has a single writer; isolation levels do not apply")
    add_pool(dbpool, "shared", PoolKind.IPV4, f"10.50.0.1-10.50.0.{POOL_SIZE}")
    _witness_table(engine)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = Path(__file__).resolve().parent.parent
    start_at = time.time() + 3
    procs = []
    for wid in range(1, WORKERS + 1):
        out = tmp_path / f"w{wid}.json"
        procs.append((out, subprocess.Popen(
            [sys.executable, str(script), db_url, "shared", str(wid), str(OPS),
             str(BUDGET_SECONDS), isolation, str(start_at), str(out)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    results = []
    outputs: list[str] = []
    for out, proc in procs:
        output, _ = proc.communicate(timeout=BUDGET_SECONDS + 60)
        assert proc.returncode == 0, output
        outputs.append(output)
        results.append(json.loads(out.read_text()))
    try:
        for r in results:
            assert r["violations"] == [], r["violations"]
            assert r["lost"] == []
            assert r["errors"] == [], r["errors"]
            assert r["allocs"] >= 100  # each worker really took part
        assert sum(r["exhausted"] for r in results) > 0  # the pool was fought over when full
        assert sum(r["allocs"] for r in results) > 3 * POOL_SIZE  # addresses were reused
        held: dict[str, str] = {}
        for r in results:
            for value, login in r["held"].items():
                assert value not in held, f"{value} held by {held[value]} and {login}"
                held[value] = login
        states = dbpool.run_sync(thd_states, "shared")
        assert len(states) == POOL_SIZE
        offered = {v: holder for v, (state, holder) in states.items()
                   if state == ItemState.OFFERED.value}
        assert offered == held
        free = [v for v, (state, _) in states.items() if state == ItemState.FREE.value]
        assert len(free) == POOL_SIZE - len(held)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT value, holder FROM pool_witness")).all()
        witnessed = {str(r[0]): str(r[1]) for r in rows}
        assert witnessed == held
        # allocation runs at READ COMMITTED whatever the session's level: no deadlock retries
        retries = sum(o.count("transient database error") for o in outputs)
        backend = db_url.split(":", 1)[0]
        totals = {k: sum(r[k] for r in results)
                  for k in ("allocs", "releases", "exhausted", "sticky")}
        print(f"{backend} {isolation}: {totals}, retries={retries}")
        assert retries == 0, "\n".join(outputs)[-3000:]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE pool_witness"))
