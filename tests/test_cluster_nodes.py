"""Two radbill nodes on one database: kill -9 the leader under load.

Both nodes take accounting (the load fails over to the other node when one
does not answer, as a NAS does); the billing loop, lease expiry and the stale
sweep run on one node at a time. The leader is killed with -9 mid-load: the
other node must hold every singleton within two lease periods, and afterwards
every acknowledged record is stored and every second of usage is charged
exactly once (1 cent per second, per-second increments), balances == ledger.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from billing.models import BillingAccount, LedgerEntry
from billing.usage import UsageDeltaRow
from core.cluster.models import ClusterLease
from core.db.models import Subscriber
from tests.billing_support import assert_ledger_consistent
from tests.cluster_support import (
    ServeProcess,
    cli_json,
    exchange,
    free_port,
    seed_nas_and_plan,
    wait_for,
    write_config,
)
from tests.test_accounting_support import session_packet

LEASE = 3.0
SINGLETONS = ("billing", "lease-expiry", "notifications", "stale-sessions")
LOGINS = [f"u{i}" for i in range(6)]


def holders(engine: Engine) -> dict[str, str | None]:
    now = time.time()
    with Session(engine) as s:
        return {lease.name: lease.node for lease in s.scalars(select(ClusterLease))
                if lease.expires_at is not None and lease.expires_at.timestamp() > now}


def send(ports: list[int], first: int, packet: bytes, dead: set[int]) -> bool:
    """To ports[first], failing over to the other node and marking the silent one dead
    (a NAS with two RADIUS servers)."""
    order = sorted((ports[first], ports[1 - first]), key=lambda p: p in dead)
    for port in order:
        if exchange(port, packet, tries=3, timeout=0.3, check_acct=True) is not None:
            dead.discard(port)
            return True
        dead.add(port)
    return False


def test_kill_9_of_the_leader_moves_every_singleton_and_rates_each_second_once(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Takeover within two lease periods; acknowledged usage stored and charged exactly once."""
    seed_nas_and_plan(engine, LOGINS)
    nodes, ports = [], []
    for name in ("a", "b"):
        auth, acct = free_port(), free_port()
        ports.append(acct)
        nodes.append(ServeProcess(write_config(tmp_path / name, db_url, node=name, auth=auth,
                                               acct=acct, lease_seconds=LEASE)))
    from radbill.cli import main

    config_a = nodes[0].config
    assert main(["--config", str(config_a), "plan", "set", "home", "--price-per-second",
                 "0.01", "--increment", "1", "--credit-limit", "100000"]) == 0
    nodes[0].start()
    try:
        wait_for(lambda: holders(engine) == dict.fromkeys(SINGLETONS, "a"), 20, "a leads")
        nodes[1].start()
        acked: dict[str, int] = {}
        dead: set[int] = set()
        killed_at = None
        for step in range(1, 13):
            for k, login in enumerate(LOGINS):
                status = 3 if step < 12 else 2
                packet = session_packet((step * 16 + k) % 256, status, login, f"s-{login}",
                                        session_time=step * 10, octets_in=step, octets_out=step)
                if send(ports, (step + k) % 2, packet, dead):
                    acked[login] = step * 10
            if step == 4:
                nodes[0].kill()
                killed_at = time.monotonic()
                wait_for(lambda: holders(engine) == dict.fromkeys(SINGLETONS, "b"),
                         2 * LEASE + 1, "b takes every singleton", step=0.05)
                took = time.monotonic() - killed_at
                assert took <= 2 * LEASE, took
        assert acked == dict.fromkeys(LOGINS, 120)
        # a is reported dead once its last heartbeat is two lease periods old.
        status = wait_for(lambda: (st := cli_json(nodes[1].config, "cluster", "status"))
                          and {n["node"]: n["alive"] for n in st["nodes"]}
                          == {"a": False, "b": True} and st, 4 * LEASE, "a reported dead")
        assert {s["name"]: s["node"] for s in status["singletons"]} == dict.fromkeys(
            SINGLETONS, "b")

        def all_rated() -> bool:
            with Session(engine) as s:
                return s.scalar(select(func.count()).select_from(UsageDeltaRow)
                                .where(UsageDeltaRow.rated.is_(False))) == 0
        wait_for(all_rated, 30, "every usage delta rated")
        with Session(engine) as s:
            stored = {u: t for u, t in s.execute(select(AcctSession.user_name,
                                                        AcctSession.session_time))}
            assert stored == acked  # nothing acknowledged was lost
            charged = {u: c for u, c in s.execute(
                select(Subscriber.login, -func.sum(LedgerEntry.amount))
                .join(BillingAccount, BillingAccount.subscriber_id == Subscriber.id)
                .join(LedgerEntry, LedgerEntry.account_id == BillingAccount.id)
                .where(LedgerEntry.kind == "charge").group_by(Subscriber.login))}
            assert {k: int(v) for k, v in charged.items()} == acked  # 1 cent a second, once
            assert_ledger_consistent(s)
    finally:
        for node in nodes:
            node.stop()
