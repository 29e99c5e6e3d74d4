"""The admin's subscriber list with N subscribers: HTTP latency percentiles, server CPU.

    .venv/bin/python bench/web_bench.py --subscribers 100000 --requests 200
    .venv/bin/python bench/web_bench.py --url mysql+pymysql://root@127.0.0.1:3306/bench_web

Seeds N subscribers (one bulk Core insert; seeding is not what is measured, and
a fresh SQLite file or the given database, emptied and migrated first, gives
it a database of its own), serves the real admin site (``webadmin.admin``,
through twisted.web on 127.0.0.1 port 0, the DB thread pool, Jinja2) in this
process's reactor, and requests pages from a client thread, one at a time, as
a logged-in admin: the first page, a page deep in the list, and a login-prefix
search. Prints p50/p95/p99 per page and the process CPU per request (server
and client share the process; the client's share is small). Results go to
bench/results/web-*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from core.db import schema
from core.db.engine import make_engine
from core.db.models import Plan, Subscriber
from core.db.pool import DBPool
from webadmin.admin.site import AdminSite, Operator, Settings
from webadmin.pages.render import Renderer
from webadmin.pages.site import Response
from webadmin.roles import Caller

RESULTS = Path(__file__).resolve().parent / "results"


def seed(engine: Any, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Plan), [{"name": f"plan{i}"} for i in range(5)])
        plan_ids = [r[0] for r in conn.execute(text("SELECT id FROM plan ORDER BY id"))]
        batch = 10_000
        for start in range(0, n, batch):
            conn.execute(insert(Subscriber), [
                {"login": f"user{i:07d}", "status": "active", "plan_id": plan_ids[i % 5],
                 "description": f"bench subscriber {i}"}
                for i in range(start, min(n, start + batch))])


def empty(engine: Any) -> None:
    with engine.begin() as conn:
        if engine.dialect.name != "sqlite":
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for (name,) in conn.execute(text("SHOW TABLES")).all():
                conn.execute(text(f"DROP TABLE `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200, help="requests per page")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="web_bench_")
    url = args.url or f"sqlite:///{tmp}/bench.sqlite"
    engine = make_engine(url, pool_size=4)
    empty(engine)
    schema.upgrade(engine)
    t0 = time.monotonic()
    seed(engine, args.subscribers)
    print(f"seeded {args.subscribers} subscribers in {time.monotonic() - t0:.1f} s",
          flush=True)

    from twisted.internet import reactor
    from twisted.web import server

    dbpool = DBPool(engine)
    dbpool.start()
    site = AdminSite(dbpool, Renderer(), Settings("USD", ZoneInfo("UTC")), reactor=reactor)
    caller = Caller(actor="operator:bench", role="admin", operator_id=1)
    session = site.store.new(Response(), principal=Operator("x", caller,
                                                            time.monotonic() + 1e9))
    root = __import__("twisted.web.resource", fromlist=["Resource"]).Resource()
    root.putChild(b"admin", site.resource)
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port.getHost().port}/admin/"
    deep = args.subscribers // site.page_size // 2
    pages = {"first page": "subscribers", f"page {deep}": f"subscribers?page={deep}",
             "prefix search": "subscribers?login=user00123"}
    out: dict[str, Any] = {"subscribers": args.subscribers, "requests": args.requests,
                           "database": engine.dialect.name, "pages": {}}

    def client() -> None:
        try:
            for name, path in pages.items():
                times = []
                cpu0 = time.process_time()
                for i in range(args.requests + 5):
                    req = urllib.request.Request(base + path, headers={  # noqa: S310
                        "Cookie": f"radbill_admin={session.id}"})
                    t = time.perf_counter()
                    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                        body = resp.read()
                        assert resp.status == 200 and b"user" in body, resp.status
                    if i >= 5:  # warm-up
                        times.append((time.perf_counter() - t) * 1000)
                cpu = (time.process_time() - cpu0) / (args.requests + 5) * 1000
                times.sort()
                q = statistics.quantiles(times, n=100)
                out["pages"][name] = {"p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2),
                                      "p99_ms": round(q[98], 2),
                                      "cpu_ms_per_request": round(cpu, 2)}
                print(f"{name:>14}: p50 {q[49]:.1f} ms  p95 {q[94]:.1f} ms  p99 {q[98]:.1f} ms"
                      f"  CPU {cpu:.1f} ms/request", flush=True)
        finally:
            reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    threading.Thread(target=client, daemon=True).start()
    reactor.run()  # type: ignore[attr-defined]
    dbpool.stop()
    RESULTS.mkdir(exist_ok=True)
    name = RESULTS / f"web-{engine.dialect.name}-{args.subscribers}.json"
    name.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {name}")


if __name__ == "__main__":
    main()
