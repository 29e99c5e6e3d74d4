"""radbill on a 3-node MariaDB Galera cluster: kill a Galera node and a radbill node under load.

Opt-in: ``RADBILL_TEST_GALERA=1`` (``./scripts/test`` sets it; in CI a missing
galera-4 then fails the test instead of skipping it). The cluster runs on
127.0.0.1 from Debian's galera-4 (tests/galera_support.py). Two radbill nodes
point at different Galera nodes; subscribers log in (PAP, a pool address in
the Accept), start sessions with that address, send Interim-Updates and stop,
alternating between the radbill nodes and failing over as a NAS does. During
the load Galera node 3 and the leading radbill node are killed with -9.
Afterwards, read from a surviving Galera node: every acknowledged record is
stored, none counted twice (1 cent per second, charged exactly once), no
address was given to two subscribers, and every balance equals its ledger.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from billing.models import BillingAccount, LedgerEntry
from billing.usage import UsageDeltaRow
from core.cluster.models import ClusterLease
from core.db import schema
from core.db.engine import make_engine
from core.db.models import Subscriber
from pools.models import ItemState, PoolItem
from tests.billing_support import assert_ledger_consistent
from tests.cluster_support import (
    ServeProcess,
    attributes,
    exchange,
    free_port,
    pap_request,
    seed_nas_and_plan,
    wait_for,
    write_config,
)
from tests.galera_support import GaleraCluster, galera_available
from tests.test_accounting_support import attr, session_packet

ENABLED = os.environ.get("RADBILL_TEST_GALERA", "") == "1"
IN_CI = os.environ.get("CI", "").lower() == "true"
LEASE = 3.0
LOGINS = [f"g{i:02d}" for i in range(16)]
STEPS = 8

pytestmark = pytest.mark.skipif(not ENABLED, reason="set RADBILL_TEST_GALERA=1 to run")


@pytest.fixture
def galera() -> Iterator[GaleraCluster]:
    """A 3-node cluster, all nodes Synced (in a /tmp directory the mysql user can reach)."""
    missing = galera_available()
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    base = Path(tempfile.mkdtemp(prefix="radbill-galera-"))
    cluster = GaleraCluster(base)
    try:
        cluster.start()
        cluster.create_database("radbill")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


class Nas:
    """Sends each request to a preferred server, failing over and remembering a silent one."""

    def __init__(self, servers: list[dict[str, int]]) -> None:
        self.servers = servers
        self.dead: set[int] = set()

    def send(self, kind: str, first: int, packet: bytes) -> bytes | None:
        order = sorted(range(len(self.servers)), key=lambda i: (i in self.dead, i != first))
        for i in order:
            reply = exchange(self.servers[i][kind], packet, tries=4, timeout=0.5,
                             check_acct=kind == "acct")
            if reply is not None:
                self.dead.discard(i)
                return reply
            self.dead.add(i)
        return None


def test_two_nodes_on_galera_survive_a_galera_node_and_a_radbill_node_killed(
        galera: GaleraCluster, tmp_path: Path) -> None:
    """No acknowledged record lost or counted twice, no address given twice, balance == ledger."""
    g1, g2, _g3 = galera.nodes
    engine: Engine = make_engine(g2.url("radbill"), pool_size=2)
    try:
        schema.upgrade(make_engine(g1.url("radbill"), pool_size=1))
        seed_nas_and_plan(engine, LOGINS)
        servers, nodes = [], []
        for name, gnode in (("a", g1), ("b", g2)):
            ports = {"auth": free_port(), "acct": free_port()}
            servers.append(ports)
            nodes.append(ServeProcess(write_config(tmp_path / name, gnode.url("radbill"),
                                                   node=name, auth=ports["auth"],
                                                   acct=ports["acct"], lease_seconds=LEASE)))
        from radbill.cli import main

        config = str(nodes[0].config)
        assert main(["--config", config, "pool", "add", "lan", "--kind", "ipv4",
                     "--range", "100.64.20.0/26"]) == 0
        assert main(["--config", config, "plan", "set", "home", "--pool", "lan"]) == 0
        assert main(["--config", config, "plan", "set", "home", "--price-per-second", "0.01",
                     "--increment", "1", "--credit-limit", "100000"]) == 0
        nodes[0].start()
        wait_for(lambda: leader(engine) == "a", 30, "node a leads")
        nodes[1].start()
        run_load(Nas(servers), nodes, galera, engine)
        assert galera.size(g2) == 2
        wait_for(lambda: leader(engine) == "b", 2 * LEASE + 5, "node b leads")
        wait_for(lambda: unrated(engine) == 0, 60, "every usage delta rated")
        check(engine)
    finally:
        for node in locals().get("nodes", []):
            node.stop()
        engine.dispose()


ACKED: dict[str, int] = {}
ADDRESSES: dict[str, bytes] = {}


def run_load(nas: Nas, nodes: list[ServeProcess], galera: GaleraCluster,
             engine: Engine) -> None:
    ACKED.clear()
    ADDRESSES.clear()
    for k, login in enumerate(LOGINS):
        reply = nas.send("auth", k % 2, pap_request(k, login, "pw"))
        assert reply is not None and reply[0] == 2, (login, reply)
        (address,) = attributes(reply)[8]
        ADDRESSES[login] = address
        start = session_packet(k, 1, login, f"gs-{login}", extra=[attr(8, address)])
        assert nas.send("acct", k % 2, start) is not None, login
    deadline = time.monotonic() + 120
    for step in range(1, STEPS + 1):
        assert time.monotonic() < deadline, "load took too long"
        if step == 3:
            galera.nodes[2].kill()  # a Galera node: the cluster goes on with two
        if step == 4:
            nodes[0].kill()  # the leading radbill node
        for k, login in enumerate(LOGINS):
            status = 2 if step == STEPS else 3
            packet = session_packet((step * 32 + k) % 256, status, login, f"gs-{login}",
                                    session_time=step * 10, octets_in=step, octets_out=step,
                                    extra=[attr(8, ADDRESSES[login])])
            if nas.send("acct", (step + k) % 2, packet) is not None:
                ACKED[login] = step * 10


def leader(engine: Engine) -> str | None:
    now = time.time()
    with Session(engine) as s:
        lease = s.get(ClusterLease, "billing")
        if lease is None or lease.expires_at is None or lease.expires_at.timestamp() <= now:
            return None
        return lease.node


def unrated(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(UsageDeltaRow)
                            .where(UsageDeltaRow.rated.is_(False))) or 0)


def check(engine: Engine) -> None:
    assert ACKED == dict.fromkeys(LOGINS, STEPS * 10)  # the NAS got every answer it needed
    assert len(set(ADDRESSES.values())) == len(LOGINS)  # no address handed to two subscribers
    with Session(engine) as s:
        stored = {u: (t, stop is not None) for u, t, stop in s.execute(
            select(AcctSession.user_name, AcctSession.session_time, AcctSession.stopped_at))}
        assert stored == {login: (STEPS * 10, True) for login in LOGINS}  # none lost, one each
        charged = {u: int(c) for u, c in s.execute(
            select(Subscriber.login, -func.sum(LedgerEntry.amount))
            .join(BillingAccount, BillingAccount.subscriber_id == Subscriber.id)
            .join(LedgerEntry, LedgerEntry.account_id == BillingAccount.id)
            .where(LedgerEntry.kind == "charge").group_by(Subscriber.login))}
        assert charged == dict.fromkeys(LOGINS, STEPS * 10)  # every second once, 1 cent each
        assert_ledger_consistent(s)
        items = s.execute(select(PoolItem.value, PoolItem.holder, PoolItem.state)).all()
    by_holder = {h: socket.inet_aton(v) for v, h, _state in items if h is not None}
    assert by_holder == ADDRESSES  # each subscriber's one address, and nobody else's
    assert all(state == ItemState.FREE for _v, _h, state in items)  # Stops released them
