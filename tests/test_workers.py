"""radbill serve --workers 2: real processes sharing the RADIUS ports (SO_REUSEPORT).

The parent supervises (READY=1 once every worker listens, restart after kill -9,
SIGTERM passed on); exactly one process runs each singleton; a retransmission
that lands on the other worker, or arrives after the workers restarted, is
merged like any retransmission (the database rules, not the per-process
duplicate cache, keep it exactly-once); /metrics sums all workers.
"""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from billing.usage import UsageDeltaRow
from core.cluster.models import ClusterLease, ClusterMember
from pools.models import ItemState, PoolItem
from tests.cluster_support import (
    ServeProcess,
    attributes,
    cli_json,
    exchange,
    free_port,
    pap_request,
    seed_nas_and_plan,
    wait_for,
    write_config,
)
from tests.test_accounting_support import session_packet

SINGLETONS = {"billing", "lease-expiry", "notifications", "stale-sessions"}


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[tuple[ServeProcess, dict]]:
    """Two workers on fixed ports, metrics on, one pool of 4 addresses for plan ``home``."""
    seed_nas_and_plan(engine, ["alice", "bob"])
    ports = {"auth": free_port(), "acct": free_port(),
             "metrics": free_port(socket.SOCK_STREAM)}
    config = write_config(tmp_path, db_url, node="n1", auth=ports["auth"], acct=ports["acct"],
                          workers=2, metrics=ports["metrics"])
    from radbill.cli import main

    assert main(["--config", str(config), "pool", "add", "lan", "--kind", "ipv4",
                 "--range", "100.64.9.0/30"]) == 0
    assert main(["--config", str(config), "plan", "set", "home", "--pool", "lan"]) == 0
    proc = ServeProcess(config).start()
    try:
        yield proc, ports
    finally:
        proc.stop()


def _members(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {m.member: m.pid for m in s.scalars(select(ClusterMember))}


def _holders(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as s:
        return {lease.name: lease.member for lease in s.scalars(select(ClusterLease))}


def test_ready_once_all_workers_listen_and_singletons_run_once(
        server: tuple[ServeProcess, dict], engine: Engine) -> None:
    """READY=1 comes from the parent (MAINPID) after both workers; each singleton has one holder."""
    proc, _ = server
    ready = next(m for m in proc.messages if "READY=1" in m.splitlines())
    assert f"MAINPID={proc.pid}" in ready
    workers = proc.children()
    assert len(workers) == 2
    members = wait_for(lambda: (m := _members(engine)) and len(m) == 2 and m, 20, "2 members")
    assert set(members) == {"n1/0", "n1/1"} and set(members.values()) == set(workers)
    holders = wait_for(lambda: (h := _holders(engine)) and set(h) == SINGLETONS
                       and all(h.values()) and h, 20, "every singleton held")
    assert set(holders.values()) <= {"n1/0", "n1/1"}
    status = cli_json(proc.config, "cluster", "status")
    assert [n["node"] for n in status["nodes"]] == ["n1"]
    assert len(status["nodes"][0]["members"]) == 2 and status["nodes"][0]["alive"]
    assert {s["name"]: s["member"] for s in status["singletons"]} == holders


def test_worker_killed_is_restarted_and_sigterm_stops_all(
        server: tuple[ServeProcess, dict]) -> None:
    """kill -9 of a worker: the parent starts a new one that serves; SIGTERM ends everyone, 0."""
    proc, ports = server
    first = proc.children()
    victim = first[0]
    import os
    import signal

    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (c := proc.children()) and len(c) == 2 and victim not in c and c,
                     20, "a replacement worker")
    assert set(after) & set(first) == {first[1]}
    # Both workers answer again: 16 source ports spread over them.
    for k in range(16):
        reply = exchange(ports["acct"], session_packet(k, 1, "alice", f"r-{k}"), check_acct=True)
        assert reply is not None, k
    code = proc.stop()
    assert code == 0
    for pid in after:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text().lower()


def test_retransmit_on_another_worker_or_after_restart_is_merged_once(
        server: tuple[ServeProcess, dict], engine: Engine) -> None:
    """The same Interim from 12 source ports and again after both workers restarted: one
    session, counters as sent, one usage delta; the same Access-Request from 12 ports: one
    address, offered once."""
    proc, ports = server
    acct = ports["acct"]
    assert exchange(acct, session_packet(1, 1, "alice", "S-1"), check_acct=True)
    interim = session_packet(2, 3, "alice", "S-1", session_time=60, octets_in=1000,
                             octets_out=2000)
    # A new socket is a new source port, and the kernel hashes it to either worker: twelve
    # all landing on one worker has odds 2 / 2**12.
    for _ in range(12):
        assert exchange(acct, interim, check_acct=True) is not None
    import os
    import signal

    for pid in proc.children():
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: (c := proc.children()) and len(c) == 2 and p not in c, 20,
                 "a replacement worker")
    wait_for(lambda: exchange(acct, interim, check_acct=True, tries=2), 30, "answers again")
    with Session(engine) as s:
        rows = s.execute(select(AcctSession.session_id, AcctSession.input_octets,
                                AcctSession.output_octets)).all()
        deltas = s.scalars(select(func.count()).select_from(UsageDeltaRow)
                           .where(UsageDeltaRow.seconds > 0)).one()
    assert [tuple(r) for r in rows] == [("S-1", 1000, 2000)]
    assert deltas == 1

    request = pap_request(7, "bob", "pw")
    addresses = set()
    for _ in range(12):
        reply = exchange(ports["auth"], request)
        assert reply is not None and reply[0] == 2, reply
        addresses.update(attributes(reply).get(8, []))
    assert len(addresses) == 1
    with Session(engine) as s:
        held = s.execute(select(PoolItem.value, PoolItem.holder)
                         .where(PoolItem.state != ItemState.FREE)).all()
    assert [tuple(r) for r in held] == [(socket.inet_ntoa(addresses.pop()), "bob")]


def test_metrics_sum_over_workers(server: tuple[ServeProcess, dict]) -> None:
    """Requests answered by either worker all count in one scrape, whichever worker answers it."""
    _, ports = server
    sent = 24
    for k in range(sent):
        assert exchange(ports["acct"], session_packet(k, 1, "alice", f"m-{k}"),
                        check_acct=True) is not None
    url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    for _ in range(3):
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        counted = sum(float(v) for v in re.findall(
            r'^radbill_radius_requests_total\{[^}]*port="acct"[^}]*\} (\S+)$', body, re.M))
        assert counted == sent
        assert "radbill_radius_in_flight" in body


def test_serve_refuses_to_start_over_a_spool_no_worker_would_replay(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture
                                                                   ) -> None:
    """Records in accounting-w2.spool and only 2 workers configured: a clear error, exit 1."""
    from accounting.records import AcctStatus
    from accounting.spool import SpoolFile
    from core.config import parse_config
    from radbill.app import orphan_spools
    from radbill.cli import main
    from tests.test_accounting_support import rec

    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path}"\nworkers = 2\n'
                      '[radius]\nauth_port = 41812\nacct_port = 41813\n')
    cfg = parse_config({"server": {"data_dir": str(tmp_path), "workers": 2},
                        "radius": {"auth_port": 41812, "acct_port": 41813}})
    empty = SpoolFile(tmp_path / "accounting-w3.spool")
    empty.open()
    empty.close()
    assert orphan_spools(cfg, 2) == []  # an empty (replayed) spool is no obstacle
    spool = SpoolFile(tmp_path / "accounting-w2.spool")
    spool.open()
    spool.append([rec(AcctStatus.START, sid="left-behind")])
    spool.close()
    assert orphan_spools(cfg, 2) == [str(tmp_path / "accounting-w2.spool")]
    assert orphan_spools(cfg, 3) == []
    import logging

    handlers, level = list(logging.root.handlers), logging.root.level
    try:
        assert main(["--config", str(config), "serve"]) == 1
    finally:  # serve set up logging to pytest's captured stderr: put it back
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
    err = capsys.readouterr().err
    assert "accounting-w2.spool" in err and "server.workers = 2" in err
