"""Setting radbill up for the auth bench: config file, schema, NAS, plan and subscribers.

Rows go in straight through SQLAlchemy with radbill's own models (bulk
inserts: 10,000 subscribers in about a second), so the bench does not depend
on the CLI's progress.

Password hashes: radbill verifies PAP against argon2id and then remembers the
success (aaa/verifier.py), so only a subscriber's *first* login pays argon2.
At radbill's production cost (t=3, 64 MiB, p=4) one verification takes
about 120 ms on one core of the bench machine: a first pass over 10,000
subscribers would take 20 minutes. The 10,000 measured subscribers therefore
get argon2id hashes of a low cost (t=1, 1 MiB, p=1; radbill's verifier
reads the cost from the hash, like any argon2 verifier), which makes the
warm-up pass take seconds and does not change the warm path at all (it never
calls argon2). The cold path is measured separately, honestly, on a small
set of ``cold`` subscribers whose hash has the production cost.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

from argon2 import PasswordHasher, Type
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import login_for, password_for

SECRET = "testing123"
PLAN_NAME = "bench-10M"
COLD_PREFIX = "cold"
COLD_PASSWORD = "pw-cold-production-cost"
BENCH_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, hash_len=32,
                              salt_len=16, type=Type.ID)

CONFIG = """\
[server]
data_dir = "{data_dir}"
log_level = "info"
workers = {workers}

[database]
url = "{url}"

[radius]
listen = ["127.0.0.1"]
auth_port = {auth_port}
acct_port = {acct_port}
"""


def write_config(path: Path, data_dir: Path, url: str, auth_port: int, acct_port: int,
                 credential_cache_ttl: float | None = None, workers: int = 1) -> Path:
    """A radbill.toml with the defaults except where the bench must choose (ports, database)."""
    text = CONFIG.format(data_dir=data_dir, url=url, auth_port=auth_port, acct_port=acct_port,
                         workers=workers)
    if credential_cache_ttl is not None:
        text += f"credential_cache_ttl = {float(credential_cache_ttl)}\n"
    path.write_text(text)
    return path


def reset_mariadb(url: str) -> None:
    """Drop and re-create the bench's own database (never a shared one)."""
    import pymysql

    u = make_url(url)
    name = u.database
    if not name or not name.startswith("test_bench"):
        raise SystemExit(f"auth_bench: refusing to reset database {name!r}: "
                         "only databases named test_bench* are the bench's own")
    conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306,
                           user=u.username or "root", password=u.password or "")
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()


def _bench_hash(i: int) -> str:
    return BENCH_HASHER.hash(password_for("bench", i))


def bench_hashes(users: int) -> list[str]:
    """Low-cost argon2id hashes of every bench subscriber's own password, on all cores."""
    with multiprocessing.get_context("fork").Pool() as pool:
        return pool.map(_bench_hash, range(users), chunksize=256)


def production_hash() -> str:
    """One hash at radbill's production cost, shared by the cold subscribers."""
    from aaa.pap import hash_password

    return hash_password(COLD_PASSWORD)


def populate(url: str, hashes: list[str], cold_hash: str, cold_users: int,
             vendor: str = "mikrotik") -> None:
    """Migrate the schema and insert the NAS, the plan and every subscriber."""
    from core.db import schema
    from core.db.engine import make_engine
    from core.db.models import Nas, Plan, Subscriber, SubscriberStatus, Vendor

    engine = make_engine(url, pool_size=2)
    try:
        schema.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(insert(Nas), [{
                "name": "bench-nas", "address": "127.0.0.1", "secret": SECRET,
                "vendor": Vendor(vendor), "require_message_authenticator": True}])
            conn.execute(insert(Plan), [{
                "name": PLAN_NAME, "rate_limit": "10M/10M", "session_timeout": 86400,
                "idle_timeout": 600, "interim_interval": 300, "framed_protocol": "PPP",
                "extra_reply": []}])
            plan_id = conn.execute(text("SELECT id FROM plan WHERE name = :n"),
                                   {"n": PLAN_NAME}).scalar_one()
            rows = [{"login": login_for("bench", i), "password_hash": h, "plan_id": plan_id,
                     "status": SubscriberStatus.ACTIVE} for i, h in enumerate(hashes)]
            rows += [{"login": login_for(COLD_PREFIX, i), "password_hash": cold_hash,
                      "plan_id": plan_id, "status": SubscriberStatus.ACTIVE}
                     for i in range(cold_users)]
            for start in range(0, len(rows), 2000):
                conn.execute(insert(Subscriber), rows[start:start + 2000])
    finally:
        engine.dispose()
