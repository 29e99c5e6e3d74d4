"""Database outage mid-load: every acknowledged record ends up in the database, exactly once.

On MariaDB radbill talks to the database through a TCP proxy on 127.0.0.1 that
the test takes down (refusing and cutting connections, as a database host
that goes away) and brings back. On SQLite the driver's own ``disk I/O error``
is raised for every statement while the outage lasts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest_twisted
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor, task

from accounting.commit import Mode
from accounting.spool import SpoolFile
from tests.test_accounting_support import (
    Server,
    TcpProxy,
    UdpClient,
    all_deltas,
    all_sessions,
    make_config,
    seed,
    session_packet,
)

SESSIONS = 40
INTERIMS = 8


class Outage:
    """Takes the database away from one server and gives it back."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.proxy: TcpProxy | None = None
        self.down = False
        self.server_url = db_url
        if db_url.startswith("mysql"):
            url = make_url(db_url)
            self.proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306)
            port = self.proxy.start()
            self.server_url = url.set(host="127.0.0.1", port=port).render_as_string(
                hide_password=False)

    def attach(self, engine: Engine) -> None:
        if self.proxy is None:
            event.listen(engine, "before_cursor_execute", self._fail)

    def _fail(self, *args: Any) -> None:
        if self.down:
            raise sqlite3.OperationalError("disk I/O error")

    def stop(self) -> None:
        self.down = True
        if self.proxy is not None:
            self.proxy.stop()

    def start(self) -> None:
        self.down = False
        if self.proxy is not None:
            self.proxy.start()

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()


def session_script(k: int) -> list[tuple[str, int, int, bytes]]:
    """Start, Interim-Updates and Stop of session k: (kind, session time, octets, packet)."""
    sid = f"out-{k}"
    user = "alice" if k % 2 else "bob"
    out = [("start", 0, 0, session_packet(k, 1, user, sid))]
    for i in range(1, INTERIMS + 1):
        out.append(("interim", 60 * i, 1000 * i * (k + 1),
                    session_packet(k, 3, user, sid, session_time=60 * i,
                                   octets_in=1000 * i * (k + 1), octets_out=7 * i)))
    t = 60 * (INTERIMS + 1)
    total = 1000 * (INTERIMS + 1) * (k + 1)
    out.append(("stop", t, total, session_packet(k, 2, user, sid, session_time=t,
                                                 octets_in=total, octets_out=7 * (INTERIMS + 1))))
    return out


@defer.inlineCallbacks
def run_session(client: UdpClient, k: int, acked: list[tuple[int, str, int, int]],
                on_ack: Callable[[], None]):  # type: ignore[no-untyped-def]
    """Like a NAS: each request resent (same datagram) until answered, then the next one."""
    for kind, seconds, octets, packet in session_script(k):
        for _ in range(60):
            reply = yield client.request(packet, timeout=0.5)
            if reply is not None:
                acked.append((k, kind, seconds, octets))
                on_ack()
                break
        else:
            raise AssertionError(f"session {k}: {kind} never acknowledged")


@defer.inlineCallbacks
def wait_for(condition: Callable[[], bool], seconds: float = 30.0):  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        yield task.deferLater(reactor, 0.05, lambda: None)
    return condition()


def make_server(outage: Outage, tmp_path: Path) -> Server:
    config = make_config(tmp_path, outage.server_url, group_commit_ms=5.0)
    srv = Server(config, reactor, replay_interval=0.1, commit_timeout=2.0)
    outage.attach(srv.dbpool.engine)
    return srv


@pytest_twisted.inlineCallbacks
def test_database_goes_away_mid_load(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Stop the database after a third of the load, bring it back after two thirds: all there."""
    with Session(engine) as s, s.begin():
        seed(s, simultaneous_use=None)
    outage = Outage(db_url)
    srv = make_server(outage, tmp_path)
    yield srv.start()
    client = UdpClient(reactor, srv.acct_port())
    total = SESSIONS * (INTERIMS + 2)
    acked: list[tuple[int, str, int, int]] = []
    modes: set[Mode] = set()

    def on_ack() -> None:
        modes.add(srv.committer.mode)
        if len(acked) == total // 3:
            outage.stop()
        elif len(acked) == 2 * total // 3:
            outage.start()

    try:
        yield defer.gatherResults([run_session(client, k, acked, on_ack)
                                   for k in range(SESSIONS)], consumeErrors=True)
        assert len(acked) == total
        replayed = yield wait_for(lambda: srv.committer.mode is Mode.DATABASE
                                  and srv.committer.spool.appended_seq == 0)
        assert replayed, "spool not replayed after the database came back"
    finally:
        yield client.close()
        yield srv.stop()
        outage.close()
    assert Mode.SPOOL in modes, "the outage never sent anything to the spool"
    assert srv.handler.service is not None and srv.handler.service.replayer.replayed > 0
    verify(engine, acked)


def verify(engine: Engine, acked: list[tuple[int, str, int, int]]) -> None:
    """Each acknowledged request's effect is stored; usage was counted exactly once."""
    with Session(engine) as s:
        rows = {r["session_id"]: r for r in all_sessions(s)}
        deltas = all_deltas(s)
    assert len(rows) == SESSIONS
    for k, kind, seconds, octets in acked:
        row = rows[f"out-{k}"]
        assert row["session_time"] >= seconds and row["input_octets"] >= octets
        if kind == "start":
            assert row["start_seen"]
        if kind == "stop":
            assert row["closed_by"] == "stop"
            assert (row["session_time"], row["input_octets"]) == (seconds, octets)
    for sid, row in rows.items():
        mine = [d for d in deltas if d["source_id"] == row["unique_id"]]
        assert sum(d["octets_in"] for d in mine) == row["input_octets"], sid
        assert sum(d["seconds"] for d in mine) == row["session_time"], sid


@pytest_twisted.inlineCallbacks
def test_spool_survives_a_restart(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Records spooled during an outage, server stopped before replay: the next start replays."""
    with Session(engine) as s, s.begin():
        seed(s, simultaneous_use=None)
    outage = Outage(db_url)
    first = make_server(outage, tmp_path)
    yield first.start()
    outage.stop()
    client = UdpClient(reactor, first.acct_port())
    acked: list[tuple[int, str, int, int]] = []
    try:
        yield defer.gatherResults([run_session(client, k, acked, lambda: None)
                                   for k in range(SESSIONS)], consumeErrors=True)
    finally:
        yield client.close()
        yield first.stop()
    spool = SpoolFile(tmp_path / "accounting.spool")
    spool.open()
    assert spool.last_seq == len(acked) == SESSIONS * (INTERIMS + 2)
    spool.close()
    with Session(engine) as s:
        assert all_sessions(s) == []

    outage.start()
    second = make_server(outage, tmp_path)
    try:
        yield second.start()
        assert second.committer.mode is Mode.SPOOL  # until the old spool is in
        replayed = yield wait_for(lambda: second.committer.mode is Mode.DATABASE
                                  and second.committer.spool.appended_seq == 0)
        assert replayed
    finally:
        yield second.stop()
        outage.close()
    verify(engine, acked)
