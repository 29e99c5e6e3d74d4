"""Leadership by lease rows: one holder per singleton, takeover after expiry, release on stop."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_twisted
from twisted.application import service
from twisted.internet import defer, reactor, task

from core.cluster.leadership import (
    Identity,
    Leadership,
    new_identity,
    thd_claim,
    thd_heartbeat,
    thd_release,
)
from core.cluster.status import thd_cluster_status
from core.db.pool import DBPool

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
A = Identity("node-a", 0, "node-a/0#1.aa")
B = Identity("node-b", 0, "node-b/0#2.bb")


def test_claim_is_exclusive_until_expiry(dbpool: DBPool) -> None:
    """A holds until its lease lapses; B takes it then (generation +1); A's renewal then fails."""
    names = ["billing", "lease-expiry"]
    got = dbpool.run_sync(thd_claim, names, A, T0, 15.0)
    assert all(v.held and v.member == "node-a/0" and v.generation == 1 for v in got.values())
    got = dbpool.run_sync(thd_claim, names, B, T0 + timedelta(seconds=5), 15.0)
    assert not any(v.held for v in got.values())
    assert got["billing"].node == "node-a"
    # A renews: the expiry moves, the generation does not.
    got = dbpool.run_sync(thd_claim, names, A, T0 + timedelta(seconds=10), 15.0)
    assert got["billing"].held and got["billing"].generation == 1
    assert got["billing"].expires_at == T0 + timedelta(seconds=25)
    # Just before expiry B still cannot; at expiry it can.
    got = dbpool.run_sync(thd_claim, names, B, T0 + timedelta(seconds=24.9), 15.0)
    assert not got["billing"].held
    got = dbpool.run_sync(thd_claim, names, B, T0 + timedelta(seconds=25), 15.0)
    assert got["billing"].held and got["billing"].generation == 2
    assert got["billing"].member == "node-b/0"
    got = dbpool.run_sync(thd_claim, names, A, T0 + timedelta(seconds=26), 15.0)
    assert not got["billing"].held and got["billing"].node == "node-b"


def test_release_lets_the_next_claimer_in_at_once(dbpool: DBPool) -> None:
    """A released lease is free before its expiry; releasing someone else's does nothing."""
    dbpool.run_sync(thd_claim, ["billing"], A, T0, 15.0)
    assert dbpool.run_sync(thd_release, ["billing"], B, T0) == 0
    assert dbpool.run_sync(thd_release, ["billing"], A, T0 + timedelta(seconds=1)) == 1
    got = dbpool.run_sync(thd_claim, ["billing"], B, T0 + timedelta(seconds=2), 15.0)
    assert got["billing"].held and got["billing"].generation == 2


def test_status_lists_nodes_heartbeats_and_holders(dbpool: DBPool) -> None:
    """cluster status: nodes by name with their members, alive by heartbeat age, holders."""
    dbpool.run_sync(thd_heartbeat, A, T0, T0, "1.0")
    dbpool.run_sync(thd_heartbeat, Identity("node-a", 1, "node-a/1#3.cc"), T0, T0, "1.0")
    dbpool.run_sync(thd_heartbeat, B, T0, T0 - timedelta(seconds=100), "1.0")
    dbpool.run_sync(thd_claim, ["billing", "stale-sessions"], A, T0, 15.0)
    st = dbpool.run_sync(thd_cluster_status, T0 + timedelta(seconds=1), 15.0)
    nodes = {n.node: n for n in st.nodes}
    assert [m.member for m in nodes["node-a"].members] == ["node-a/0", "node-a/1"]
    assert nodes["node-a"].alive and not nodes["node-b"].alive
    assert {s.name: s.node for s in st.singletons} == {"billing": "node-a",
                                                       "stale-sessions": "node-a"}
    later = dbpool.run_sync(thd_cluster_status, T0 + timedelta(seconds=16), 15.0)
    assert {s.name: s.node for s in later.singletons} == {"billing": None,
                                                          "stale-sessions": None}


def test_heartbeat_reports_a_second_process_with_the_same_name(dbpool: DBPool) -> None:
    """Two live incarnations of one member name (a duplicated node_name) are reported."""
    assert dbpool.run_sync(thd_heartbeat, A, T0, T0, "1") is None
    twin = Identity("node-a", 0, "node-a/0#9.zz")
    assert dbpool.run_sync(thd_heartbeat, twin, T0, T0 + timedelta(seconds=1), "1") == A.token
    # A restart long after the old one stopped beating is no twin.
    again = new_identity("node-a", 0)
    assert dbpool.run_sync(thd_heartbeat, again, T0, T0 + timedelta(seconds=60), "1") is None


class Probe(service.Service):
    """A singleton that records its starts and stops."""

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    def startService(self) -> None:
        super().startService()
        self.starts += 1

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        self.stops += 1


class WallClock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t


@defer.inlineCallbacks
def settle(leader: Leadership) -> Generator[Any, Any, None]:
    """Let a tick's DB work (in the real thread pool) finish."""
    for _ in range(200):
        if leader._ticking is None:
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("tick did not finish")


@pytest_twisted.inlineCallbacks
def test_one_runs_the_singleton_and_the_other_takes_over(dbpool: DBPool):  # type: ignore[no-untyped-def]
    """A starts it, B does not; A stops renewing (dead): B runs it after expiry, A never again."""
    clock_a, clock_b, wall = task.Clock(), task.Clock(), WallClock()
    pa, pb = Probe(), Probe()
    la = Leadership(dbpool, clock_a, A, lease_seconds=9, now=wall)  # type: ignore[arg-type]
    lb = Leadership(dbpool, clock_b, B, lease_seconds=9, now=wall)  # type: ignore[arg-type]
    la.register("billing", pa)
    lb.register("billing", pb)
    la.startService()
    yield settle(la)
    lb.startService()
    yield settle(lb)
    assert (pa.running, pb.running) == (True, False)
    assert la.holds("billing") and not lb.holds("billing")
    # A is frozen (killed): it renews no more. B keeps trying every 3 s.
    la._loop.stop()
    for step in range(1, 4):
        wall.t = T0 + timedelta(seconds=3 * step)
        clock_b.advance(3)
        yield settle(lb)
        assert pb.running == (step == 3), step  # the lease lapsed at T0 + 9 s
    # A's own deadline timer stopped its copy before the lapse (at 9 - 1.5 s).
    clock_a.advance(7.5)
    assert not pa.running and pa.stops == 1
    yield lb.stopService()
    assert pb.stops == 1
    st = dbpool.run_sync(thd_cluster_status, wall.t, 9)
    assert st.singletons[0].node is None  # released on a clean stop
    yield la.stopService()


@pytest_twisted.inlineCallbacks
def test_a_holder_that_cannot_renew_stops_before_its_lease_lapses(dbpool: DBPool):  # type: ignore[no-untyped-def]
    """Renewals failing (database gone): the singleton stops at lease - interval/2, not later."""
    clock, wall = task.Clock(), WallClock()
    probe = Probe()
    leader = Leadership(dbpool, clock, A, lease_seconds=9, now=wall)  # type: ignore[arg-type]
    leader.register("billing", probe)
    leader.startService()
    yield settle(leader)
    assert probe.running

    class Down:
        def run(self, *args: object, **kwargs: object) -> defer.Deferred[None]:
            return defer.fail(ConnectionError("database down"))

    leader.dbpool = Down()  # type: ignore[assignment]
    clock.advance(3)  # failed renewal
    clock.advance(3)  # failed renewal
    assert probe.running and leader.claims_failed == 2
    clock.advance(1.4)
    assert probe.running
    clock.advance(0.2)  # 7.6 s after the last good claim began: 9 - 1.5 = 7.5
    assert not probe.running
    leader.dbpool = dbpool
    clock.advance(1.4)  # the next tick (9 s) claims again: its own lease, still valid
    yield settle(leader)
    assert probe.running and probe.starts == 2
    yield leader.stopService()


def test_cluster_status_command_text_json_and_xml(dbpool: DBPool, db_url: str, tmp_path: Any,
                                                  capsys: Any) -> None:
    """radbill cluster status names nodes, liveness and holders in every output format."""
    import json

    from core.db.base import utcnow
    from radbill.cli import main

    now = utcnow()
    dbpool.run_sync(thd_heartbeat, A, now, now, "1.0")
    dbpool.run_sync(thd_claim, ["billing"], A, now, 15.0)
    config = tmp_path / "radbill.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    assert main(["--config", str(config), "cluster", "status"]) == 0
    out = capsys.readouterr().out
    assert "node-a" in out and "billing" in out and "node-a/0" in out and "yes" in out
    assert main(["--config", str(config), "cluster", "status", "--out", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["nodes"][0]["node"] == "node-a" and data["nodes"][0]["alive"] is True
    assert data["singletons"] == [{"name": "billing", "node": "node-a", "member": "node-a/0",
                                   "expires_at": data["singletons"][0]["expires_at"],
                                   "generation": 1}]
    assert main(["--config", str(config), "cluster", "status", "--out", "xml"]) == 0
    assert "<node>node-a</node>" in capsys.readouterr().out
