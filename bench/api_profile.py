#!/usr/bin/env python3
"""Where one API request spends its CPU: cProfile of ``ApiServer.handle`` in one thread.

The DB pool's ``run`` is replaced by the same transaction run inline (``DBPool.run_sync``),
so the reactor side and the database side of each request land in one profile, with no
HTTP client in the process. Needs the database bench/api_bench.py populated (or any
database with subscribers named like bench/loadgen.py's ``bench00000``...).

Usage: .venv/bin/python bench/api_profile.py [--endpoint show_subscriber|add_payment] [-n 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.web.test.requesthelper import DummyRequest  # noqa: E402

from core.config import parse_config  # noqa: E402
from core.db.engine import make_engine  # noqa: E402
from core.db.pool import DBPool  # noqa: E402
from webadmin.api.server import ApiServer  # noqa: E402
from webadmin.roles import cli_caller  # noqa: E402
from webadmin.service import tokens  # noqa: E402


class InlinePool:
    """DBPool.run without the thread hop: the same transaction, in this thread."""

    def __init__(self, pool: DBPool) -> None:
        self.pool, self.engine = pool, pool.engine

    def run(self, fn: Any, *a: Any, **k: Any) -> defer.Deferred[Any]:
        try:
            return defer.succeed(self.pool.run_sync(fn, *a, **k))
        except Exception as exc:
            return defer.fail(exc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306/test_bench_api")
    p.add_argument("--endpoint", default="show_subscriber",
                   choices=("show_subscriber", "add_payment"))
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args()
    cfg = parse_config({"server": {"data_dir": tempfile.gettempdir()}, "database": {"url": a.url},
                        "web": {"enabled": True}}, "api_profile")
    pool = DBPool(make_engine(a.url, pool_size=2), reactor)
    token = pool.run_sync(tokens.thd_add_token, cli_caller("profile"),
                          f"profile{random.randrange(10**9)}", "admin").token
    srv = ApiServer(cfg, InlinePool(pool), reactor)  # type: ignore[arg-type]
    ep = next(e for e in srv.registry.endpoints if e.name == a.endpoint)
    run = random.randrange(10**9)

    def one(i: int) -> bytes:
        req = DummyRequest([b""])
        req.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
        req.args = {}
        login = f"bench{random.randrange(a.subscribers):05d}"
        params: dict[str, str] = {}
        if a.endpoint == "add_payment":
            req.method = b"POST"
            req.requestHeaders.setRawHeaders(b"idempotency-key", [f"p{run}-{i}".encode()])
            req.content = BytesIO(json.dumps({"login": login, "amount": "1.00"}).encode())
        else:
            params = {"login": login}
        out: list[Any] = []
        defer.ensureDeferred(srv.handle(ep, req, params)).addBoth(out.append)
        return out[0]  # type: ignore[no-any-return]

    print(one(0)[:160])
    t = time.process_time()
    for i in range(1, a.n):
        one(i)
    print(f"{a.endpoint}: {1e6 * (time.process_time() - t) / a.n:.0f} µs CPU per request "
          "(reactor side + DB side, one thread)")
    prof = cProfile.Profile()
    prof.enable()
    for i in range(a.n, a.n + min(a.n, 500)):
        one(i)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(a.top)
    pool.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
